/**
 * Whether a sidecar is up, and when it is not, why — read from its Deployment and pods as the
 * kubelet reported them, in words a pipeline author can act on.
 */

export function deploymentReady(dep: Record<string, any> | undefined): boolean {
  if (!dep) return false;
  const s = dep.status ?? {};
  if ((s.observedGeneration ?? 0) < (dep.metadata?.generation ?? 0)) return false;
  const available = (s.conditions ?? []).some((c: any) => c.type === 'Available' && c.status === 'True');
  return available && (s.readyReplicas ?? 0) >= 1 && (s.availableReplicas ?? 0) >= 1;
}

const PULL = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable']);

/** The most telling reason a sidecar's pods are not Ready. */
export function notReadyCause(dep: Record<string, any> | undefined, pods: Array<Record<string, any>>): string {
  if (!dep) return 'its Deployment does not exist yet (apply did not complete)';
  const failure = (dep.status?.conditions ?? []).find((c: any) => c.type === 'ReplicaFailure' && c.status === 'True');
  if (pods.length === 0) {
    return failure ? `no pod could be created: ${failure.message}` : 'no pod was created yet (check the namespace quota and admission policies)';
  }
  const causes: string[] = [];
  for (const pod of pods) {
    const name = pod.metadata?.name;
    const sched = (pod.status?.conditions ?? []).find((c: any) => c.type === 'PodScheduled');
    if (sched?.status === 'False') { causes.push(`pod ${name} is unschedulable: ${sched.message ?? sched.reason ?? 'no node fits'}`); continue; }
    const statuses: any[] = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
    for (const cs of statuses) {
      const waiting = cs.state?.waiting;
      if (waiting && PULL.has(waiting.reason)) { causes.push(`container ${cs.name} cannot pull image ${cs.image}: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`); continue; }
      if (waiting?.reason === 'CrashLoopBackOff' || cs.lastState?.terminated) {
        const t = cs.lastState?.terminated ?? cs.state?.terminated;
        causes.push(`container ${cs.name} keeps exiting${t ? ` (exit code ${t.exitCode}${t.reason ? `, ${t.reason}` : ''})` : ''}; restarts: ${cs.restartCount ?? 0}`);
        continue;
      }
      if (waiting) { causes.push(`container ${cs.name} is waiting: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`); continue; }
      if (cs.state?.running && !cs.ready) {
        causes.push(`container ${cs.name} (image ${cs.image}) is running but not Ready: its startup or readiness probe keeps failing`);
      }
    }
    if (statuses.length === 0 && pod.status?.phase === 'Pending') causes.push(`pod ${name} is Pending${pod.status?.reason ? `: ${pod.status.reason}` : ''}`);
  }
  return causes.length ? causes.join('; ') : 'its pod is not Ready yet';
}
