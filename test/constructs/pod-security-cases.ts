import { PodLike } from '../../constructs/pod-security';

/**
 * One pod per Pod Security baseline rule, breaking it (`violations` lists the paths we must name)
 * or using what the rule still allows (`violations: []`). Shared by the unit table and by the test
 * that asks the API server's own Pod Security admission for its verdict on the same pods.
 */
export interface BaselineCase {
  readonly name: string;
  readonly pod: PodLike;
  /** Paths baselineViolations must report, in order. */
  readonly violations: string[];
  /** Why the API server cannot judge this pod (it rejects it as invalid first), if so. */
  readonly notForApiServer?: string;
}

const c = (extra: Record<string, unknown> = {}) => ({ name: 'c', image: 'busybox', ...extra });
const pod = (spec: Record<string, unknown>, annotations?: Record<string, string>): PodLike => ({
  metadata: annotations ? { annotations } : {},
  spec: { containers: [c()], ...spec },
});
const withSc = (sc: Record<string, unknown>) => pod({ containers: [c({ securityContext: sc })] });

export const BASELINE_CASES: BaselineCase[] = [
  { name: 'a plain pod', pod: pod({}), violations: [] },

  // Privileged
  { name: 'privileged: true', pod: withSc({ privileged: true }), violations: ['containers[0].securityContext.privileged'] },
  { name: 'privileged: false', pod: withSc({ privileged: false }), violations: [] },
  { name: 'privileged init container', pod: pod({ initContainers: [c({ name: 'i', securityContext: { privileged: true } })] }), violations: ['initContainers[0].securityContext.privileged'] },
  {
    name: 'privileged ephemeral container',
    pod: pod({ ephemeralContainers: [c({ name: 'e', securityContext: { privileged: true } })] }),
    violations: ['ephemeralContainers[0].securityContext.privileged'],
    notForApiServer: 'ephemeralContainers cannot be set at create',
  },

  // Capabilities
  { name: 'add SYS_ADMIN after an allowed one', pod: withSc({ capabilities: { add: ['CHOWN', 'SYS_ADMIN'] } }), violations: ['containers[0].securityContext.capabilities.add[1]'] },
  { name: 'add ALL', pod: withSc({ capabilities: { add: ['ALL'] } }), violations: ['containers[0].securityContext.capabilities.add[0]'] },
  { name: 'add NET_ADMIN and NET_RAW', pod: withSc({ capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } }), violations: ['containers[0].securityContext.capabilities.add[0]', 'containers[0].securityContext.capabilities.add[1]'] },
  {
    name: 'add every baseline capability, drop ALL',
    pod: withSc({ capabilities: { add: ['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'], drop: ['ALL'] } }),
    violations: [],
  },

  // Host namespaces
  { name: 'hostNetwork', pod: pod({ hostNetwork: true }), violations: ['hostNetwork'] },
  { name: 'hostPID', pod: pod({ hostPID: true }), violations: ['hostPID'] },
  { name: 'hostIPC', pod: pod({ hostIPC: true }), violations: ['hostIPC'] },
  { name: 'host namespaces false', pod: pod({ hostNetwork: false, hostPID: false, hostIPC: false }), violations: [] },

  // HostPath volumes
  {
    name: 'hostPath volume',
    pod: pod({ volumes: [{ name: 'ok', emptyDir: {} }, { name: 'root', hostPath: { path: '/' } }], containers: [c({ volumeMounts: [{ name: 'root', mountPath: '/host' }] })] }),
    violations: ['volumes[1].hostPath'],
  },
  { name: 'emptyDir volume', pod: pod({ volumes: [{ name: 'ok', emptyDir: {} }] }), violations: [] },

  // Host ports
  { name: 'hostPort', pod: pod({ containers: [c({ ports: [{ containerPort: 80 }, { containerPort: 81, hostPort: 8081 }] })] }), violations: ['containers[0].ports[1].hostPort'] },
  { name: 'containerPort only', pod: pod({ containers: [c({ ports: [{ containerPort: 80 }] })] }), violations: [] },

  // /proc mount
  {
    name: 'procMount Unmasked',
    pod: withSc({ procMount: 'Unmasked' }),
    violations: ['containers[0].securityContext.procMount'],
    notForApiServer: 'the API server rejects Unmasked without hostUsers: false as invalid (our check still refuses it: a custom kind may render it)',
  },
  { name: 'procMount Default', pod: withSc({ procMount: 'Default' }), violations: [] },
  { name: 'procMount Unmasked in a user namespace', pod: pod({ hostUsers: false, containers: [c({ securityContext: { procMount: 'Unmasked' } })] }), violations: [] },

  // Seccomp
  { name: 'container seccomp Unconfined', pod: withSc({ seccompProfile: { type: 'Unconfined' } }), violations: ['containers[0].securityContext.seccompProfile.type'] },
  { name: 'pod seccomp Unconfined', pod: pod({ securityContext: { seccompProfile: { type: 'Unconfined' } } }), violations: ['securityContext.seccompProfile.type'] },
  { name: 'seccomp RuntimeDefault', pod: pod({ securityContext: { seccompProfile: { type: 'RuntimeDefault' } } }), violations: [] },
  { name: 'seccomp Localhost', pod: withSc({ seccompProfile: { type: 'Localhost', localhostProfile: 'profiles/audit.json' } }), violations: [] },

  // AppArmor
  { name: 'container AppArmor Unconfined', pod: withSc({ appArmorProfile: { type: 'Unconfined' } }), violations: ['containers[0].securityContext.appArmorProfile.type'] },
  { name: 'pod AppArmor Unconfined', pod: pod({ securityContext: { appArmorProfile: { type: 'Unconfined' } } }), violations: ['securityContext.appArmorProfile.type'] },
  { name: 'AppArmor RuntimeDefault', pod: withSc({ appArmorProfile: { type: 'RuntimeDefault' } }), violations: [] },
  {
    name: 'AppArmor annotation unconfined',
    pod: pod({}, { 'container.apparmor.security.beta.kubernetes.io/c': 'unconfined' }),
    violations: ['metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]'],
  },
  { name: 'AppArmor annotation runtime/default', pod: pod({}, { 'container.apparmor.security.beta.kubernetes.io/c': 'runtime/default' }), violations: [] },

  // SELinux
  { name: 'SELinux type spc_t', pod: withSc({ seLinuxOptions: { type: 'spc_t' } }), violations: ['containers[0].securityContext.seLinuxOptions.type'] },
  { name: 'SELinux user and role', pod: pod({ securityContext: { seLinuxOptions: { user: 'system_u', role: 'system_r' } } }), violations: ['securityContext.seLinuxOptions.user', 'securityContext.seLinuxOptions.role'] },
  { name: 'SELinux type container_t and a level', pod: withSc({ seLinuxOptions: { type: 'container_t', level: 's0:c123,c456' } }), violations: [] },

  // Sysctls
  { name: 'unsafe sysctl', pod: pod({ securityContext: { sysctls: [{ name: 'net.ipv4.tcp_syncookies', value: '1' }, { name: 'kernel.msgmax', value: '65536' }] } }), violations: ['securityContext.sysctls[1].name'] },
  { name: 'safe sysctls', pod: pod({ securityContext: { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }, { name: 'net.ipv4.tcp_keepalive_time', value: '60' }] } }), violations: [] },

  // Probe and lifecycle hosts
  { name: 'probe on another host', pod: pod({ containers: [c({ readinessProbe: { httpGet: { host: '169.254.169.254', path: '/', port: 80 } } })] }), violations: ['containers[0].readinessProbe.httpGet.host'] },
  { name: 'preStop hook on another host', pod: pod({ containers: [c({ lifecycle: { preStop: { httpGet: { host: 'kubernetes.default', path: '/', port: 443 } } } })] }), violations: ['containers[0].lifecycle.preStop.httpGet.host'] },
  { name: 'probe on the pod itself', pod: pod({ containers: [c({ startupProbe: { tcpSocket: { port: 80 } } })] }), violations: [] },

  // Windows HostProcess
  {
    name: 'Windows hostProcess',
    pod: pod({ hostNetwork: true, securityContext: { windowsOptions: { hostProcess: true } } }),
    violations: ['hostNetwork', 'securityContext.windowsOptions.hostProcess'],
    notForApiServer: 'the API server rejects a HostProcess pod on a Linux-only cluster as invalid',
  },

  // Everything at once, in the order reported.
  {
    name: 'several rules in one pod',
    pod: pod({ hostPID: true, containers: [c({ securityContext: { privileged: true, capabilities: { add: ['SYS_ADMIN'] } } })] }),
    violations: ['hostPID', 'containers[0].securityContext.privileged', 'containers[0].securityContext.capabilities.add[0]'],
  },
];
