import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlaneState } from './control-plane';
import { writeClientCert } from './client-certs';
import {
  NodeLayout, cniConfig, containerdConfig, containerdSocket, corefile, gatewayOf, kubeProxyConfig, kubeletConfig,
  nodeKubeconfig, registryBlackhole,
} from './node-config';
import { acquireNodeLock, releaseNodeLock } from './node-lock';
import { FIXED_HOST_PATHS, HostRecord, cgroupMounts, mountPoints, recordHost, removeCgroupTree, unmountUnder, writeSysctl } from './node-host';

/**
 * A real kubelet node joined to the harness's control plane: containerd + runc + a CNI bridge,
 * kubelet, kube-proxy (iptables), CoreDNS (cluster zone only) and kube-router's network-policy
 * controller. Everything on the node's network side (bridge, pod veths, kube-proxy's and
 * kube-router's rules, ip_forward) lives in a network namespace the harness creates; the host only
 * gets the host end of a veth pair. Started and stopped by PID, like the control plane, and
 * stoppable from another process (jest's globalTeardown) from its serializable state.
 */

const REPO = path.resolve(__dirname, '..');

/** The taint of a node dedicated to the real-node tests: only pods that tolerate it land there. */
export const REAL_NODE_TAINT = { key: 'pipeline-sidecars.dev/real-node', value: 'true', effect: 'NoSchedule' } as const;
/** The toleration matching REAL_NODE_TAINT. */
export const REAL_NODE_TOLERATION = { key: REAL_NODE_TAINT.key, operator: 'Equal', value: 'true', effect: 'NoSchedule' } as const;

export interface NodeOptions {
  /** Node name (default real-node-XXXX). */
  readonly name?: string;
  /** The API server's --service-cluster-ip-range (default 10.96.0.0/16, the harness's). */
  readonly serviceCidr?: string;
  /**
   * Register the node with REAL_NODE_TAINT so that no other test's pod lands on it (default true).
   * Pass false when the kwok node is cordoned and every pod should run here for real.
   */
  readonly dedicated?: boolean;
  /** Bearer token of the node's daemons (default the control plane's admin token; see the report on the Node authorizer). */
  readonly token?: string;
  /** Queue on the one-node-per-machine lock (default true); false when the caller holds it already. */
  readonly lock?: boolean;
  /** Print progress to stderr. */
  readonly verbose?: boolean;
  /**
   * Route between the control plane and the pods as a cluster does (default false), so that an
   * operator can run as Pods with its in-cluster config and serve its webhook through its Service.
   * All of it lives inside the node's namespace or on its veth, and goes with them:
   * - pods -> API server (whose `kubernetes` Service has no endpoint: the API server, on loopback,
   *   cannot publish one): a forwarder on the node IP (port = the API server's) inside the node's
   *   namespace, to the host end of the veth, and an EndpointSlice of the `kubernetes` Service
   *   naming it; kube-proxy sends 10.96.0.1:443 there. Pods already have a route to the node IP, and
   *   the traffic ends in the node's namespace (INPUT), so the forwarding fence is untouched.
   * - API server -> pod IPs (admission webhooks served by pods, found through the Service's
   *   EndpointSlices with --enable-aggregator-routing): a host route to the pod range via the node
   *   IP, and in the node's namespace TCP from the host end of the veth let onto the bridge, replies
   *   let back, its source rewritten to the bridge gateway (pods have no route to the host). Pods
   *   still cannot open anything towards the host.
   */
  readonly controlPlaneRouting?: boolean;
}

/** A started node, serializable so that another process can stop it. */
export interface NodeState {
  readonly name: string;
  readonly workDir: string;
  readonly cacheDir: string;
  /** Network namespace name (/run/netns/NAME) holding the node's network. */
  readonly netns: string;
  readonly hostVeth: string;
  readonly nodeIp: string;
  readonly hostIp: string;
  readonly podCidr: string;
  readonly serviceCidr: string;
  readonly cgroupRoot: string;
  readonly host: HostRecord;
  readonly api: { readonly server: string; readonly caFile: string; readonly token: string };
  readonly pids: Record<string, number>;
  /** Token of the node lock this node holds (released at stop), if it took one. */
  readonly lockToken?: string;
  /** Milliseconds from start to each milestone. */
  readonly timings: Record<string, number>;
  /** With controlPlaneRouting: the EndpointSlice of the `kubernetes` Service to delete at stop. */
  readonly apiEndpointSlice?: string;
  /** The process that started it: while it lives, `npm run platform:stop` leaves this node alone. */
  readonly ownerPid?: number;
}

export interface NodeHandle {
  readonly state: NodeState;
  /** Stops every process, unmounts, removes cgroups, the namespace and the Node, and puts the host back. */
  stop(opts?: { keepLogs?: boolean }): Promise<string[]>;
}

type Daemon = 'forward' | 'containerd' | 'kubelet' | 'kube-proxy' | 'coredns' | 'kube-router' | 'apiserver-for-pods';

/** Whether this machine can run the real node, and if not why (the caller falls back to kwok). */
export function realNodeSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `the real node needs Linux (this is ${process.platform})` };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'the real node needs root (network namespaces, cgroups, mounts)' };
  for (const tool of ['ip', 'nsenter', 'umount']) {
    try { execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'pipe' }); } catch { return { ok: false, reason: `the real node needs '${tool}' on PATH (iproute2 / util-linux)` }; }
  }
  if (cgroupMounts().length === 0) return { ok: false, reason: 'no cgroup file system is mounted' };
  return { ok: true };
}

/** Builds (or reuses) the node cache with scripts/node.sh and returns its directory. */
export function ensureNodeBinaries(verbose = true): string {
  const out = execFileSync('bash', [path.join(REPO, 'scripts', 'node.sh')], { stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'pipe'], encoding: 'utf8' });
  return out.trim().split('\n').pop()!;
}

/** The images of the node cache (name and archive), as built by scripts/images/build-images.sh. */
export function nodeImages(cacheDir: string): { name: string; file: string }[] {
  return fs.readFileSync(path.join(cacheDir, 'images', 'images.txt'), 'utf8').split('\n').filter(Boolean)
    .map((l) => { const [name, file] = l.split(' '); return { name, file }; });
}

/** Starts a node against a running control plane and waits until it is Ready and its DNS answers. */
export async function startNode(cp: ControlPlaneState, opts: NodeOptions = {}): Promise<NodeHandle> {
  const support = realNodeSupport();
  if (!support.ok) throw new Error(support.reason);
  const t0 = Date.now();
  const verbose = opts.verbose ?? false;
  const log = (m: string): void => { if (verbose) process.stderr.write(`[node] ${m}\n`); };
  const cacheDir = ensureNodeBinaries(verbose);
  const timings: Record<string, number> = { binaries: Date.now() - t0 };
  const lockToken = opts.lock === false ? undefined : await acquireNodeLock();
  timings.lock = Date.now() - t0;
  const suffix = crypto.randomBytes(2).toString('hex');
  const octet = freeOctet();
  const name = opts.name ?? `real-node-${suffix}`;
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-sidecars-node-'));
  const apiPort = Number(new URL(cp.server).port);
  const hostIp = `10.233.${octet}.1`;
  const nodeIp = `10.233.${octet}.2`;
  const state: NodeState = {
    name, workDir, cacheDir, netns: `ps-node-${suffix}`, hostVeth: `psh${suffix}`, nodeIp, hostIp,
    podCidr: `10.234.${octet}.0/24`, serviceCidr: opts.serviceCidr ?? '10.96.0.0/16', cgroupRoot: `pipeline-sidecars-${name}`,
    host: recordHost(), api: { server: cp.server, caFile: cp.caFile, token: opts.token ?? cp.adminToken }, pids: {}, timings, lockToken,
    apiEndpointSlice: opts.controlPlaneRouting ? `kubernetes-${name}` : undefined, ownerPid: process.pid,
  };
  const layout: NodeLayout = {
    name, workDir, cacheDir, nodeIp, hostIp, podCidr: state.podCidr, serviceCidr: state.serviceCidr, cgroupRoot: state.cgroupRoot,
    pauseImage: nodeImages(cacheDir).find((i) => i.name.includes('/pause:'))!.name, bridge: 'psbr0',
    taints: opts.dedicated === false ? [] : [REAL_NODE_TAINT],
  };
  const saveState = (): void => fs.writeFileSync(path.join(workDir, 'node-state.json'), JSON.stringify(state, null, 2));
  saveState();
  const procs = new Map<Daemon, ChildProcess>();
  const exitHook = (): void => { for (const pid of Object.values(state.pids)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } } };
  process.on('exit', exitHook);
  const netnsPath = `/run/netns/${state.netns}`;
  const inNs = (args: string[]): string => execFileSync('nsenter', [`--net=${netnsPath}`, '--', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: nodeEnv(cacheDir) });
  const launch = (d: Daemon, argv: string[], netns = true): void => {
    const out = fs.openSync(path.join(workDir, 'logs', `${d}.log`), 'a');
    const [cmd, ...args] = netns ? ['nsenter', `--net=${netnsPath}`, '--', ...argv] : argv;
    const child = spawn(cmd, args, { stdio: ['ignore', out, out], detached: true, env: nodeEnv(cacheDir) });
    fs.closeSync(out);
    child.unref();
    procs.set(d, child);
    state.pids[d] = child.pid!;
    saveState();
    log(`${d} started (pid ${child.pid})`);
  };
  const alive = (d: Daemon): void => {
    const p = procs.get(d);
    if (p && p.exitCode !== null) throw new Error(`${d} exited with code ${p.exitCode}; see ${path.join(workDir, 'logs', `${d}.log`)}`);
  };
  const mark = (what: string): void => { timings[what] = Date.now() - t0; saveState(); log(`${what} at ${timings[what]} ms`); };

  try {
    for (const d of ['logs', 'cni/net.d', 'containerd/certs.d/_default', 'kubelet', 'pod-logs']) fs.mkdirSync(path.join(workDir, d), { recursive: true });
    // --- network: a namespace with lo, the node end of a veth pair, forwarding fenced to the bridge.
    execFileSync('ip', ['netns', 'add', state.netns], { stdio: 'pipe' });
    execFileSync('ip', ['link', 'add', state.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', state.netns], { stdio: 'pipe' });
    execFileSync('ip', ['addr', 'add', `${hostIp}/30`, 'dev', state.hostVeth], { stdio: 'pipe' });
    execFileSync('ip', ['link', 'set', state.hostVeth, 'up'], { stdio: 'pipe' });
    inNs(['ip', 'link', 'set', 'lo', 'up']);
    inNs(['ip', 'addr', 'add', `${nodeIp}/30`, 'dev', 'eth0']);
    inNs(['ip', 'link', 'set', 'eth0', 'up']);
    // Pod -> ClusterIP needs forwarding (per namespace, so the host's stays off). Only traffic between
    // the bridge's own ports may be forwarded; mangle runs before the filter chains kube-proxy and
    // kube-router own, so their ACCEPTs cannot widen this.
    inNs(['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']);
    inNs([path.join(cacheDir, 'sbin', 'iptables'), '-w', '-t', 'mangle', '-A', 'FORWARD', '!', '-i', layout.bridge, '-j', 'DROP']);
    inNs([path.join(cacheDir, 'sbin', 'iptables'), '-w', '-t', 'mangle', '-A', 'FORWARD', '!', '-o', layout.bridge, '-j', 'DROP']);
    if (opts.controlPlaneRouting) {
      // API server -> pods (NodeOptions.controlPlaneRouting): ahead of the fence, host-initiated TCP only.
      const ipt = (...a: string[]): string => inNs([path.join(cacheDir, 'sbin', 'iptables'), '-w', ...a]);
      ipt('-t', 'mangle', '-I', 'FORWARD', '1', '-i', 'eth0', '-o', layout.bridge, '-s', hostIp, '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'NEW,ESTABLISHED', '-j', 'ACCEPT');
      ipt('-t', 'mangle', '-I', 'FORWARD', '2', '-i', layout.bridge, '-o', 'eth0', '-d', hostIp, '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'ESTABLISHED', '-j', 'ACCEPT');
      ipt('-t', 'nat', '-A', 'POSTROUTING', '-s', hostIp, '-o', layout.bridge, '-j', 'SNAT', '--to-source', gatewayOf(state.podCidr));
      execFileSync('ip', ['route', 'add', state.podCidr, 'via', nodeIp, 'dev', state.hostVeth], { stdio: 'pipe' });
    }
    mark('network');
    // --- cgroups: a parent of our own in every hierarchy, so teardown knows exactly what to remove.
    for (const m of cgroupMounts()) {
      const dir = path.join(m, state.cgroupRoot);
      fs.mkdirSync(dir, { recursive: true });
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        if (fs.existsSync(path.join(m, f))) fs.writeFileSync(path.join(dir, f), fs.readFileSync(path.join(m, f), 'utf8').trim() || '0');
      }
    }
    // --- configuration files.
    // Each daemon as the identity a real cluster gives it: the kubelet as system:node:<name> (the
    // Node authorizer and NodeRestriction apply), kube-proxy as system:kube-proxy (bound to
    // system:node-proxier by the API server's bootstrap policy); CoreDNS and kube-router, test-rig
    // components with no bootstrap role, keep the harness's token.
    const apiUrl = `https://${hostIp}:${apiPort}`;
    const pki = path.join(workDir, 'pki');
    fs.mkdirSync(pki, { recursive: true });
    const kubeletCert = await writeClientCert(cp.clientCa, path.join(pki, 'kubelet'), `system:node:${name}`, ['system:nodes']);
    const proxyCert = await writeClientCert(cp.clientCa, path.join(pki, 'kube-proxy'), 'system:kube-proxy', []);
    const kubeletKubeconfig = path.join(workDir, 'kubelet.kubeconfig');
    fs.writeFileSync(kubeletKubeconfig, nodeKubeconfig(apiUrl, cp.caFile, kubeletCert, '127.0.0.1'));
    const proxyKubeconfig = path.join(workDir, 'kube-proxy.kubeconfig');
    fs.writeFileSync(proxyKubeconfig, nodeKubeconfig(apiUrl, cp.caFile, proxyCert, '127.0.0.1'));
    const kubeconfig = path.join(workDir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, nodeKubeconfig(apiUrl, cp.caFile, { token: state.api.token }, '127.0.0.1'));
    fs.writeFileSync(path.join(workDir, 'containerd', 'config.toml'), containerdConfig(layout));
    fs.writeFileSync(path.join(workDir, 'containerd', 'certs.d', '_default', 'hosts.toml'), registryBlackhole());
    fs.writeFileSync(path.join(workDir, 'cni', 'net.d', '10-pipeline-sidecars.conflist'), cniConfig(layout));
    fs.writeFileSync(path.join(workDir, 'kubelet', 'config.yaml'), kubeletConfig(layout, cp.clientCa.certFile));
    fs.writeFileSync(path.join(workDir, 'kube-proxy.yaml'), kubeProxyConfig(layout, proxyKubeconfig));
    fs.writeFileSync(path.join(workDir, 'Corefile'), corefile(kubeconfig));

    // --- the API server, reachable from the namespace at hostIp:apiPort.
    launch('forward', [process.execPath, path.join(__dirname, 'node-forward.js'), hostIp, String(apiPort), '127.0.0.1', String(apiPort)], false);
    await until('the API forwarder', 10_000, async () => { alive('forward'); return canConnect(hostIp, apiPort); });
    if (state.apiEndpointSlice) {
      // Pods -> API server (NodeOptions.controlPlaneRouting): the node IP forwards to the host end of the veth.
      launch('apiserver-for-pods', [process.execPath, path.join(__dirname, 'node-forward.js'), nodeIp, String(apiPort), hostIp, String(apiPort)]);
      await until('the API forwarder for pods', 10_000, async () => { alive('apiserver-for-pods'); return canConnect(nodeIp, apiPort); });
      const slice = {
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
        metadata: { name: state.apiEndpointSlice, namespace: 'default', labels: { 'kubernetes.io/service-name': 'kubernetes', 'endpointslice.kubernetes.io/managed-by': 'pipeline-sidecars-test-harness' } },
        addressType: 'IPv4', endpoints: [{ addresses: [nodeIp], conditions: { ready: true } }],
        ports: [{ name: 'https', port: apiPort, protocol: 'TCP' }],
      };
      const r = await apiRequest(state, 'POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', slice);
      if (r.status !== 201) throw new Error(`creating the kubernetes Service's EndpointSlice for pods: HTTP ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
    }

    // --- containerd, then the images (nothing is ever pulled).
    launch('containerd', [path.join(cacheDir, 'bin', 'containerd'), '--config', path.join(workDir, 'containerd', 'config.toml'), '--log-level', 'warn']);
    await until('containerd', 30_000, async () => {
      alive('containerd');
      try { ctr(state, ['version']); return true; } catch { return false; }
    });
    mark('containerd');
    await Promise.all(nodeImages(cacheDir).map((img) => ctrAsync(state, ['images', 'import', img.file])));
    mark('images');

    // --- kubelet, then the Node Ready.
    launch('kubelet', [
      path.join(cacheDir, 'bin', 'kubelet'), `--config=${path.join(workDir, 'kubelet', 'config.yaml')}`, `--kubeconfig=${kubeletKubeconfig}`,
      `--hostname-override=${name}`, `--node-ip=${nodeIp}`, `--root-dir=${path.join(workDir, 'kubelet')}`,
      `--cert-dir=${path.join(workDir, 'kubelet', 'pki')}`, '--v=1',
    ]);
    const startedKubelet = Date.now();
    await until(`node ${name} Ready`, 60_000, async () => {
      alive('containerd'); alive('kubelet');
      const r = await apiRequest(state, 'GET', `/api/v1/nodes/${name}`);
      return r.json?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
    });
    timings.kubeletToReady = Date.now() - startedKubelet;
    // The not-ready taint is added at registration and normally lifted by KCM's node lifecycle
    // controller; lift it here too so that the node works whether or not that controller runs.
    await liftNotReadyTaint(state);
    mark('nodeReady');

    // --- kube-proxy, CoreDNS, kube-router (network-policy controller only).
    launch('kube-proxy', [path.join(cacheDir, 'bin', 'kube-proxy'), `--config=${path.join(workDir, 'kube-proxy.yaml')}`, '--v=1']);
    launch('coredns', [path.join(cacheDir, 'bin', 'coredns'), '-conf', path.join(workDir, 'Corefile')]);
    launch('kube-router', [
      path.join(cacheDir, 'bin', 'kube-router'), `--kubeconfig=${kubeconfig}`, `--hostname-override=${name}`,
      '--run-firewall=true', '--run-router=false', '--run-service-proxy=false', '--run-loadbalancer=false',
      '--enable-ipv4=true', '--enable-ipv6=false', `--service-cluster-ip-range=${state.serviceCidr}`,
      '--health-port=20244', '--metrics-port=0', '--iptables-sync-period=30s', '--ipvs-sync-period=30s', '--v=1',
    ]);
    await until('cluster DNS (kubernetes.default.svc.cluster.local on the node IP)', 30_000, async () => {
      alive('coredns'); alive('kube-proxy');
      return (await resolveA(nodeIp, 'kubernetes.default.svc.cluster.local')).length > 0;
    });
    mark('dns');
    await until('kube-router healthy', 60_000, async () => {
      alive('kube-router');
      return httpOk(`http://${nodeIp}:20244/healthz`);
    });
    mark('ready');
  } catch (e) {
    const errors = await stopNode(state, { keepLogs: true });
    process.off('exit', exitHook);
    throw new Error(`real node failed to start: ${(e as Error).message}\n  logs kept in ${path.join(workDir, 'logs')}${errors.length ? `\n  teardown: ${errors.join('; ')}` : ''}`);
  }
  return {
    state,
    stop: async (o = {}) => { process.off('exit', exitHook); return stopNode(state, o); },
  };
}

/** Environment of the node's daemons: the cache's binaries (iptables wrappers, runc, shim) first. */
function nodeEnv(cacheDir: string): NodeJS.ProcessEnv {
  return {
    PATH: `${path.join(cacheDir, 'sbin')}:${path.join(cacheDir, 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: process.env.HOME ?? '/root',
  };
}

/** A third octet for 10.233.X.0/30 and 10.234.X.0/24 that no host address uses yet. */
function freeOctet(): number {
  const used = execFileSync('ip', ['-o', 'addr', 'show'], { encoding: 'utf8' });
  for (let i = 0; i < 50; i++) {
    const o = 1 + crypto.randomInt(250);
    if (!used.includes(`10.233.${o}.`) && !used.includes(`10.234.${o}.`)) return o;
  }
  throw new Error('no free 10.233.X.0/30 range for the node link');
}

/** ctr against the node's containerd, in the k8s.io namespace the CRI uses. */
export function ctr(state: NodeState, args: string[]): string {
  return execFileSync(path.join(state.cacheDir, 'bin', 'ctr'), ['--address', containerdSocket(layoutOf(state)), '--namespace', 'k8s.io', ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ctrAsync(state: NodeState, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(state.cacheDir, 'bin', 'ctr'), ['--address', containerdSocket(layoutOf(state)), '--namespace', 'k8s.io', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { out += c; });
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ctr ${args.join(' ')}: exit ${code}: ${out.slice(-500)}`))));
  });
}

function layoutOf(state: NodeState): { workDir: string } & NodeLayout {
  return { workDir: state.workDir } as NodeLayout;
}

/** The kubelet's client certificate and key (system:node:<name>), as its kubeconfig names them. */
export function kubeletCredentials(state: NodeState): { certFile: string; keyFile: string } {
  return { certFile: path.join(state.workDir, 'pki', 'kubelet.crt'), keyFile: path.join(state.workDir, 'pki', 'kubelet.key') };
}

/**
 * An authenticated request to the API server with the node's token, or, given `as`, with that
 * client certificate instead (e.g. the kubelet's, to see what the Node authorizer lets it do).
 */
export function apiRequest(state: NodeState, method: string, apiPath: string, body?: unknown, contentType = 'application/json',
  as?: { certFile: string; keyFile: string }): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const auth = as ? { cert: fs.readFileSync(as.certFile), key: fs.readFileSync(as.keyFile) } : {};
    const req = https.request(`${state.api.server}${apiPath}`, {
      method, ca: fs.readFileSync(state.api.caFile), ...auth,
      headers: { ...(as ? {} : { 'Authorization': `Bearer ${state.api.token}` }), 'Content-Type': contentType, 'Accept': 'application/json' },
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => { let json: any; try { json = JSON.parse(text); } catch { json = text; } resolve({ status: res.statusCode ?? 0, json }); });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

async function liftNotReadyTaint(state: NodeState): Promise<void> {
  const r = await apiRequest(state, 'GET', `/api/v1/nodes/${state.name}`);
  const taints: any[] = r.json?.spec?.taints ?? [];
  const kept = taints.filter((t) => t.key !== 'node.kubernetes.io/not-ready');
  if (kept.length === taints.length) return;
  const p = await apiRequest(state, 'PATCH', `/api/v1/nodes/${state.name}`, { spec: { taints: kept } }, 'application/merge-patch+json');
  if (p.status !== 200) throw new Error(`lifting the not-ready taint of ${state.name}: HTTP ${p.status} ${JSON.stringify(p.json).slice(0, 300)}`);
}

/** A-records of `host` asked of the DNS server at `server` (no search list, no system resolver). */
export async function resolveA(server: string, host: string): Promise<string[]> {
  const r = new dns.promises.Resolver({ timeout: 1000, tries: 1 });
  r.setServers([server]);
  try { return await r.resolve4(host); } catch { return []; }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = require('node:net').connect(port, host);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function httpOk(url: string): Promise<boolean> {
  try { return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok; } catch { return false; }
}

async function until(what: string, timeoutMs: number, fn: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try { if (await fn()) return; } catch (e) { last = e; if (/exited with code/.test((e as Error).message)) throw e; }
    await sleep(100);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
}

/** Whether a process runs (a zombie does not). */
function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); } catch { return false; }
  try { return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z'); } catch { return false; }
}

async function terminate(all: number[], graceMs: number): Promise<void> {
  const pids = all.filter((p) => Number.isInteger(p) && p > 1 && p !== process.pid);
  for (const pid of pids) { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(isAlive)) await sleep(50);
  for (const pid of pids.filter(isAlive)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  const hard = Date.now() + 5_000;
  while (Date.now() < hard && pids.some(isAlive)) await sleep(50);
}

/**
 * PIDs of the node's containerd and its shims: processes whose program is containerd or the runc
 * shim and whose arguments name the node's work dir (its config or socket). Nothing else is matched:
 * a test runner whose arguments mention the work dir must never be hit.
 */
function nodeRuntimePids(workDir: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (/(^|\/)(containerd|containerd-shim-runc-v2)$/.test(argv[0]) && argv.slice(1).some((a) => a.includes(workDir))) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

/** PIDs in the node's cgroup tree (its pods' containers), read from every hierarchy. */
function pidsInCgroups(cgroupRoot: string): number[] {
  const pids = new Set<number>();
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
    try { for (const l of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (l) pids.add(Number(l)); } catch { /* no procs file */ }
    for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name));
  };
  for (const m of cgroupMounts()) walk(path.join(m, cgroupRoot));
  // Never this process, its parent, init, or a process group (0 would signal our own group).
  return [...pids].filter((p) => Number.isInteger(p) && p > 1 && p !== process.pid && p !== process.ppid);
}

/**
 * Stops a node from its state (possibly in another process than the one that started it) and puts
 * the host back. Returns what could not be undone (empty when everything was); never throws.
 */
export async function stopNode(state: NodeState, opts: { keepLogs?: boolean } = {}): Promise<string[]> {
  const errors: string[] = [];
  const step = async (what: string, fn: () => unknown): Promise<void> => {
    try { await fn(); } catch (e) { errors.push(`${what}: ${(e as Error).message.split('\n')[0]}`); }
  };
  // Daemons that watch the API first (no restarts behind our back), then the pods, then containerd.
  await step('stop daemons', () => terminate(['kubelet', 'kube-router', 'kube-proxy', 'coredns'].map((d) => state.pids[d]).filter(Boolean), 5_000));
  await step('stop pods', async () => {
    for (let i = 0; i < 3; i++) {
      const pids = pidsInCgroups(state.cgroupRoot);
      if (pids.length === 0) break;
      for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      await sleep(200);
    }
  });
  await step('stop containerd', () => terminate([state.pids.containerd, state.pids.forward, state.pids['apiserver-for-pods']].filter(Boolean), 5_000));
  await step('stop shims', () => terminate(nodeRuntimePids(state.workDir), 2_000));
  errors.push(...unmountUnder(state.workDir));
  errors.push(...removeCgroupTree(state.cgroupRoot));
  await step('delete the network namespace', () => {
    if (fs.existsSync(`/run/netns/${state.netns}`)) execFileSync('ip', ['netns', 'del', state.netns], { stdio: 'pipe' });
    // Deleting the namespace destroys the veth pair; make sure of it.
    try { execFileSync('ip', ['link', 'del', state.hostVeth], { stdio: 'pipe' }); } catch { /* already gone */ }
  });
  await step('/run/netns', () => {
    if (!state.host.netnsDirMounted && mountPoints().includes('/run/netns') && fs.readdirSync('/run/netns').length === 0) {
      execFileSync('umount', ['/run/netns'], { stdio: 'pipe' });
      fs.rmdirSync('/run/netns');
    }
  });
  for (const [k, v] of Object.entries(state.host.sysctls)) { const e = writeSysctl(k, v); if (e) errors.push(`sysctl ${e}`); }
  for (const p of FIXED_HOST_PATHS) {
    if (state.host.existing.includes(p)) continue;
    await step(`remove ${p}`, () => fs.rmSync(p, { recursive: true, force: true }));
  }
  if (state.apiEndpointSlice) {
    await step('delete the kubernetes EndpointSlice for pods', async () => {
      const r = await apiRequest(state, 'DELETE', `/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/${state.apiEndpointSlice}`);
      if (r.status !== 200 && r.status !== 404) throw new Error(`HTTP ${r.status}`);
    });
  }
  await step('delete the Node object', async () => {
    const r = await apiRequest(state, 'DELETE', `/api/v1/nodes/${state.name}`);
    if (r.status !== 200 && r.status !== 404) throw new Error(`HTTP ${r.status}`);
  });
  if (!opts.keepLogs) await step('remove the work dir', () => fs.rmSync(state.workDir, { recursive: true, force: true }));
  if (state.lockToken) releaseNodeLock(state.lockToken);
  return errors;
}

/** The log of one container of a pod on this node, read from the kubelet's pod log dir (no API round trip). */
/** A container's raw CRI log lines ("<time> <stream> <P|F> <text>"), oldest first; [] before it logs. */
function criLogLines(state: NodeState, namespace: string, pod: string, container: string): string[] {
  const dir = path.join(state.workDir, 'pod-logs');
  const podDir = fs.readdirSync(dir).find((d) => d.startsWith(`${namespace}_${pod}_`));
  if (!podDir) return [];
  const cdir = path.join(dir, podDir, container);
  if (!fs.existsSync(cdir)) return [];
  return fs.readdirSync(cdir).sort().map((f) => fs.readFileSync(path.join(cdir, f), 'utf8')).join('').split('\n').filter(Boolean);
}

export function podLog(state: NodeState, namespace: string, pod: string, container: string): string {
  // P is a partial line continued by the next.
  return criLogLines(state, namespace, pod, container)
    .map((l) => { const m = /^\S+ \S+ ([PF]) (.*)$/.exec(l); return m ? (m[1] === 'F' ? `${m[2]}\n` : m[2]) : `${l}\n`; }).join('');
}

/**
 * A container's log lines with the time containerd read each one (epoch ms; the node shares this
 * machine's clock), for timing what a process says it did: the first line is its start.
 */
export function podLogTimed(state: NodeState, namespace: string, pod: string, container: string): Array<{ readonly at: number; readonly text: string }> {
  return criLogLines(state, namespace, pod, container).flatMap((l) => {
    const m = /^(\S+) \S+ [PF] (.*)$/.exec(l);
    const at = m ? Date.parse(m[1]) : NaN;
    return m && Number.isFinite(at) ? [{ at, text: m[2] }] : [];
  });
}

export { gatewayOf };
