import { stringify } from 'yaml';

/**
 * The node's configuration files, as pure functions of its layout so that they can be read and
 * tested without starting anything. Every path is the node's own: nothing defaults to /var/lib or /etc.
 */

/** Where one node's addresses and files are. */
export interface NodeLayout {
  /** Node name (also the kubelet's --hostname-override). */
  readonly name: string;
  /** The node's work directory: roots, state, sockets, logs, configs. */
  readonly workDir: string;
  /** The node cache (scripts/node.sh): bin/, cni/bin/, sbin/, images/. */
  readonly cacheDir: string;
  /** The node IP, inside the node's network namespace (veth end); also the cluster DNS address. */
  readonly nodeIp: string;
  /** The host end of the veth pair, where the node reaches the API server. */
  readonly hostIp: string;
  /** Pod range of this node, e.g. 10.234.7.0/24; its .1 is the bridge. */
  readonly podCidr: string;
  /** The API server's --service-cluster-ip-range. */
  readonly serviceCidr: string;
  /** Cgroup parent of every pod, relative to each hierarchy's root. */
  readonly cgroupRoot: string;
  /** The pause image containerd pins as the sandbox image. */
  readonly pauseImage: string;
  /** Bridge inside the node's network namespace. */
  readonly bridge: string;
  /** Taints the kubelet registers the node with. */
  readonly taints: readonly { key: string; value: string; effect: string }[];
}

/** The first usable address (the bridge gateway) of an IPv4 /24 .. /30 range. */
export function gatewayOf(cidr: string): string {
  const [ip] = cidr.split('/');
  const o = ip.split('.').map(Number);
  return `${o[0]}.${o[1]}.${o[2]}.${o[3] + 1}`;
}

export const containerdSocket = (l: NodeLayout): string => `${l.workDir}/containerd/containerd.sock`;

/** containerd 2.x (config version 3): own root, state and socket; never pulls; no host-wide plugins. */
export function containerdConfig(l: NodeLayout): string {
  const c = `${l.workDir}/containerd`;
  return `version = 3
root = '${c}/root'
state = '${c}/state'
# NRI would open /var/run/nri; the opt plugin would create /opt/containerd; tracing and the other snapshotters are unused.
disabled_plugins = ['io.containerd.nri.v1.nri', 'io.containerd.internal.v1.opt', 'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper', 'io.containerd.snapshotter.v1.zfs', 'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.erofs', 'io.containerd.tracing.processor.v1.otlp', 'io.containerd.internal.v1.tracing']
[grpc]
  address = '${containerdSocket(l)}'
[ttrpc]
  address = '${c}/containerd.sock.ttrpc'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '${l.pauseImage}'
  # Every registry resolves to a closed loopback port: an image that was not imported fails at once,
  # and no pull can ever leave the machine.
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '${c}/certs.d'
[plugins.'io.containerd.cri.v1.runtime']
  # Root here cannot lower oom_score_adj: without this every sandbox fails with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  # Pod network namespaces are bind-mounted under containerd's own state dir, not /var/run/netns.
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = '${l.cacheDir}/bin/runc'
      Root = '${c}/runc'
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['${l.cacheDir}/cni/bin']
    conf_dir = '${l.workDir}/cni/net.d'
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
[plugins.'io.containerd.transfer.v1.local']
  config_path = '${c}/certs.d'
`;
}

/** hosts.toml for every registry (the _default directory): a closed loopback port. */
export function registryBlackhole(): string {
  return `# No registry: every pull fails locally (port 9, nothing listens there in the node's namespace).
server = 'http://127.0.0.1:9'
[host.'http://127.0.0.1:9']
  capabilities = ['pull', 'resolve']
`;
}

/**
 * The pod network: a bridge with host-local IPAM. Pods get routes to the pod range (on link), the
 * service range and the node IP only: no default route, no masquerade, so nothing a pod sends can
 * leave the node's network namespace.
 */
export function cniConfig(l: NodeLayout): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: `pipeline-sidecars-${l.name}`,
    plugins: [{
      type: 'bridge', bridge: l.bridge, isGateway: true, isDefaultGateway: false, ipMasq: false, hairpinMode: true,
      ipam: {
        type: 'host-local',
        dataDir: `${l.workDir}/cni/ipam`,
        ranges: [[{ subnet: l.podCidr, gateway: gatewayOf(l.podCidr) }]],
        routes: [{ dst: l.serviceCidr }, { dst: `${l.nodeIp}/32` }],
      },
    }],
  }, null, 2);
}

/** The kubelet's KubeletConfiguration: what real-node.md found necessary on this machine kind, plus own paths. */
export function kubeletConfig(l: NodeLayout, clientCaFile: string): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    // 1.36 refuses cgroup v1 hierarchies unless told; this machine kind has them.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${l.cgroupRoot}`,
    failSwapOn: false,
    // Pods must not get the machine's resolver: cluster DNS only.
    resolvConf: '',
    clusterDNS: [l.nodeIp],
    clusterDomain: 'cluster.local',
    address: l.nodeIp,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    containerRuntimeEndpoint: `unix://${containerdSocket(l)}`,
    podLogsDir: `${l.workDir}/pod-logs`,
    staticPodPath: '',
    // The API server (logs, exec) comes with a client certificate of the control plane's client CA.
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: clientCaFile } },
    authorization: { mode: 'Webhook' },
    registerWithTaints: l.taints,
    // Imported images are never garbage-collected and pods are not evicted for a full-ish disk.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '50Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    protectKernelDefaults: false,
    serializeImagePulls: false,
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
    rotateCertificates: false,
    serverTLSBootstrap: false,
    maxPods: 110,
  });
}

/** kube-proxy in iptables mode, inside the node's namespace; it leaves global conntrack sysctls alone. */
export function kubeProxyConfig(l: NodeLayout, kubeconfig: string): string {
  return stringify({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig },
    hostnameOverride: l.name,
    bindAddress: l.nodeIp,
    clusterCIDR: l.podCidr,
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    // nf_conntrack_max is global, not per namespace: 0 leaves it (and the TCP timeouts) as they are.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    iptables: { localhostNodePorts: false, masqueradeAll: false, syncPeriod: '30s', minSyncPeriod: '0s' },
    nodePortAddresses: [`${l.nodeIp}/32`],
  });
}

/**
 * CoreDNS: the cluster zone from the API server (its kubernetes plugin), a local NXDOMAIN for every
 * other name (template), no forward: no query ever leaves the machine.
 */
export function corefile(kubeconfig: string): string {
  return `.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig ${kubeconfig} local
        pods disabled
        ttl 5
    }
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`;
}

/** How a node daemon authenticates: a bearer token, or a client certificate and key. */
export type NodeCredentials = { readonly token: string } | { readonly certFile: string; readonly keyFile: string };

/** A kubeconfig for the node's daemons: the API server through the host end of the veth pair. */
export function nodeKubeconfig(server: string, caFile: string, creds: NodeCredentials, tlsServerName: string): string {
  const user = 'token' in creds ? { token: creds.token } : { 'client-certificate': creds.certFile, 'client-key': creds.keyFile };
  return stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: 'local', cluster: { 'server': server, 'certificate-authority': caFile, 'tls-server-name': tlsServerName } }],
    users: [{ name: 'node', user }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: 'node' } }],
    'current-context': 'local',
  });
}
