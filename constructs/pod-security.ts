/**
 * The Kubernetes Pod Security Standards "baseline" profile, as a pure check of a rendered pod
 * (https://kubernetes.io/docs/concepts/security/pod-security-standards/#baseline, as of v1.36).
 *
 * Why our own copy instead of trusting the API server's Pod Security admission: a namespace may
 * enforce nothing at all, and the operator's own opt-in (the allow-privileged label) must mean the
 * same thing whatever the cluster enforces. Checking the pod that will run — not what a kind says
 * about itself — makes custom kinds, option blocks and hand-written containers equal before it.
 * test/constructs/pod-security-psa.test.ts checks that this agrees with the real admission plugin.
 */
import { LABELS } from './api/spec';
import { SidecarSpecError } from './errors';

/** Capabilities the baseline profile lets a container add. */
export const BASELINE_CAPABILITIES: readonly string[] = [
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE',
  'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
];

/** Sysctls the baseline profile allows: namespaced and isolated from other pods on the node. */
export const BASELINE_SYSCTLS: readonly string[] = [
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes', 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem',
];

/** SELinux types the baseline profile allows (besides none). */
export const BASELINE_SELINUX_TYPES: readonly string[] = ['container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t'];

const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/';
const SECCOMP_POD_ANNOTATION = 'seccomp.security.alpha.kubernetes.io/pod';
const SECCOMP_CONTAINER_ANNOTATION = 'container.seccomp.security.alpha.kubernetes.io/';

/** One field of a pod that the baseline profile forbids. */
export interface PodSecurityViolation {
  /** Path in the pod, e.g. `containers[0].securityContext.capabilities.add[1]`. */
  readonly path: string;
  /** The offending value, as JSON-ish text (e.g. `SYS_ADMIN`, `true`). */
  readonly value: string;
  /** Which baseline rule it breaks and what is allowed instead. */
  readonly rule: string;
}

/** The parts of a pod (or pod template) the check reads. */
export interface PodLike {
  readonly metadata?: { readonly annotations?: Record<string, string> };
  readonly spec?: Record<string, any>;
}

const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Problems of one securityContext (pod- or container-level) shared by both levels. */
function securityContextViolations(sc: Record<string, any> | undefined, at: string, out: PodSecurityViolation[]): void {
  if (!sc || typeof sc !== 'object') return;
  const p = `${at}securityContext`;
  if (sc.seccompProfile?.type === 'Unconfined') {
    out.push({ path: `${p}.seccompProfile.type`, value: 'Unconfined', rule: 'seccomp may not be disabled; use RuntimeDefault or Localhost' });
  }
  if (sc.appArmorProfile?.type === 'Unconfined') {
    out.push({ path: `${p}.appArmorProfile.type`, value: 'Unconfined', rule: 'AppArmor may not be disabled; use RuntimeDefault or Localhost' });
  }
  const se = sc.seLinuxOptions;
  if (se && typeof se === 'object') {
    if (se.type && !BASELINE_SELINUX_TYPES.includes(se.type)) {
      out.push({ path: `${p}.seLinuxOptions.type`, value: show(se.type), rule: `SELinux type must be one of ${BASELINE_SELINUX_TYPES.join(', ')}` });
    }
    if (se.user) out.push({ path: `${p}.seLinuxOptions.user`, value: show(se.user), rule: 'a custom SELinux user may not be set' });
    if (se.role) out.push({ path: `${p}.seLinuxOptions.role`, value: show(se.role), rule: 'a custom SELinux role may not be set' });
  }
  if (sc.windowsOptions?.hostProcess === true) {
    out.push({ path: `${p}.windowsOptions.hostProcess`, value: 'true', rule: 'Windows HostProcess containers are host access' });
  }
}

function hostFieldViolations(handler: Record<string, any> | undefined, at: string, out: PodSecurityViolation[]): void {
  if (!handler || typeof handler !== 'object') return;
  for (const kind of ['httpGet', 'tcpSocket'] as const) {
    const host = handler[kind]?.host;
    if (host) out.push({ path: `${at}.${kind}.host`, value: show(host), rule: 'probes and lifecycle hooks may not target another host' });
  }
}

function containerViolations(c: Record<string, any>, at: string, userNamespaced: boolean, out: PodSecurityViolation[]): void {
  if (!c || typeof c !== 'object') return;
  const sc = c.securityContext;
  if (sc && typeof sc === 'object') {
    if (sc.privileged === true) out.push({ path: `${at}securityContext.privileged`, value: 'true', rule: 'privileged containers are not allowed' });
    const add = sc.capabilities?.add;
    if (Array.isArray(add)) {
      add.forEach((cap: unknown, i: number) => {
        if (typeof cap !== 'string' || !BASELINE_CAPABILITIES.includes(cap)) {
          out.push({ path: `${at}securityContext.capabilities.add[${i}]`, value: show(cap), rule: `only ${BASELINE_CAPABILITIES.join(', ')} may be added` });
        }
      });
    }
    // In a user namespace (hostUsers: false) the masks protect nothing on the host: baseline allows any procMount.
    if (sc.procMount !== undefined && sc.procMount !== null && sc.procMount !== 'Default' && !userNamespaced) {
      out.push({ path: `${at}securityContext.procMount`, value: show(sc.procMount), rule: '/proc must keep its default masks (procMount Default)' });
    }
    securityContextViolations(sc, at, out);
  }
  if (Array.isArray(c.ports)) {
    c.ports.forEach((port: Record<string, any>, i: number) => {
      if (port?.hostPort) out.push({ path: `${at}ports[${i}].hostPort`, value: show(port.hostPort), rule: 'host ports are not allowed' });
    });
  }
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe']) hostFieldViolations(c[probe], `${at}${probe}`, out);
  for (const hook of ['postStart', 'preStop']) hostFieldViolations(c.lifecycle?.[hook], `${at}lifecycle.${hook}`, out);
}

/**
 * Every field of `pod` (a Pod, or a workload's pod template: metadata + spec) that the Pod Security
 * baseline profile forbids, in a stable order; empty when the pod meets the profile.
 * Paths are relative to the pod (`hostNetwork`, `containers[0].securityContext.privileged`,
 * `metadata.annotations[...]`).
 */
export function baselineViolations(pod: PodLike): PodSecurityViolation[] {
  const out: PodSecurityViolation[] = [];
  const spec = pod.spec ?? {};
  for (const ns of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (spec[ns] === true) out.push({ path: ns, value: 'true', rule: 'host namespaces are not allowed' });
  }
  const psc = spec.securityContext;
  securityContextViolations(psc, '', out);
  if (Array.isArray(psc?.sysctls)) {
    psc.sysctls.forEach((s: Record<string, any>, i: number) => {
      if (!BASELINE_SYSCTLS.includes(s?.name)) {
        out.push({ path: `securityContext.sysctls[${i}].name`, value: show(s?.name), rule: `only the safe sysctls ${BASELINE_SYSCTLS.join(', ')} are allowed` });
      }
    });
  }
  if (Array.isArray(spec.volumes)) {
    spec.volumes.forEach((v: Record<string, any>, i: number) => {
      if (v?.hostPath) out.push({ path: `volumes[${i}].hostPath`, value: show(v.hostPath.path ?? v.hostPath), rule: 'hostPath volumes are not allowed; use an emptyDir' });
    });
  }
  const userNamespaced = spec.hostUsers === false;
  for (const list of CONTAINER_LISTS) {
    const cs = spec[list];
    if (Array.isArray(cs)) cs.forEach((c: Record<string, any>, i: number) => containerViolations(c, `${list}[${i}].`, userNamespaced, out));
  }
  for (const [k, v] of Object.entries(pod.metadata?.annotations ?? {})) {
    const path = `metadata.annotations[${k}]`;
    if (k.startsWith(APPARMOR_ANNOTATION) && v && v !== 'runtime/default' && !v.startsWith('localhost/')) {
      out.push({ path, value: v, rule: 'AppArmor profile must be runtime/default or localhost/<profile>' });
    }
    if ((k === SECCOMP_POD_ANNOTATION || k.startsWith(SECCOMP_CONTAINER_ANNOTATION)) && v === 'unconfined') {
      out.push({ path, value: v, rule: 'seccomp may not be disabled' });
    }
  }
  return out;
}

/**
 * The pod template of a synthesized object, or undefined when it has none: a Pod itself,
 * `spec.template` of a Deployment, ReplicaSet, StatefulSet, DaemonSet or Job, and
 * `spec.jobTemplate.spec.template` of a CronJob.
 */
export function podTemplateOf(manifest: Record<string, any>): PodLike | undefined {
  switch (manifest?.kind) {
    case 'Pod': return { metadata: manifest.metadata, spec: manifest.spec };
    case 'Deployment': case 'ReplicaSet': case 'StatefulSet': case 'DaemonSet': case 'Job': case 'ReplicationController':
      return manifest.spec?.template;
    case 'CronJob': return manifest.spec?.jobTemplate?.spec?.template;
    default: return undefined;
  }
}

/** `path=value (rule)` for each violation, joined for one message. */
export function describeViolations(violations: readonly PodSecurityViolation[]): string {
  return violations.map(v => `${v.path}=${v.value} (${v.rule})`).join('; ');
}

/** A sidecar's pod breaks the baseline profile in a namespace that has not opted in to more. */
export class PodSecurityError extends SidecarSpecError {
  constructor(
    /** What the baseline profile forbids in the pod, field by field. */
    readonly violations: readonly PodSecurityViolation[],
    namespace: string,
    sidecar?: string,
  ) {
    super('pod template',
      `the sidecar's pod breaks the Pod Security "baseline" profile, which applies in namespace "${namespace}" ` +
      `because it is neither labelled ${LABELS.allowPrivileged}=true nor a privileged namespace of the install: ${describeViolations(violations)}. ` +
      `To run it, add the namespace to the install's privileged namespaces (synth --privileged-namespace ${namespace}), ` +
      `or label it (kubectl label namespace ${namespace} ${LABELS.allowPrivileged}=true); otherwise remove these fields from the PipelineSidecar ` +
      '(built-in DockerDaemon and BuildKitDaemon always need them)', sidecar);
    this.name = 'PodSecurityError';
  }
}

/** Throws PodSecurityError when `pod` breaks the baseline profile. */
export function assertBaseline(pod: PodLike, namespace: string, sidecar?: string): void {
  const violations = baselineViolations(pod);
  if (violations.length > 0) throw new PodSecurityError(violations, namespace, sidecar);
}
