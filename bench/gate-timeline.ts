/**
 * One gated run's path on the real node, as moments (ms from just before its CREATE) and as the
 * consecutive parts between them. Kept apart from bench/gate-node.ts's I/O so the arithmetic is
 * tested as a table.
 */

/** The moments the bench stamps, in the order they happen on a run's path. */
export interface GateMoments {
  /** The CREATE returned, pending: the webhook's answer. */
  readonly gated: number;
  /** The daemon's Deployment seen by a watch: the operator's first reconcile applied it. */
  readonly deployment?: number;
  /** The daemon's pod seen: the Deployment and ReplicaSet controllers made it. */
  readonly podCreated?: number;
  /** The pod bound to the node. */
  readonly scheduled?: number;
  /** dockerd's first log line, as containerd read it: the container's process started. */
  readonly processStarted?: number;
  /** dockerd logged that its API listens on the unix socket: `docker version` answers from here. */
  readonly daemonServing?: number;
  /** The kubelet reported the container running. */
  readonly running?: number;
  /** The pod's Ready condition True: the probe passed and the kubelet reported it. */
  readonly podReady?: number;
  /** The Deployment's Available condition True. */
  readonly available?: number;
  /** spec.status no longer pending: the operator released the run. */
  readonly unpended?: number;
  /** Tekton's first task pod seen. */
  readonly taskPodCreated?: number;
  /** The first task pod's containers running, as the kubelet reported them. */
  readonly taskPodRunning?: number;
  /** The run Succeeded (or failed). */
  readonly done?: number;
}

/** The parts of created → unpended, then of unpended → first task pod running; each from one moment to the next. */
export const GATE_PARTS: ReadonlyArray<{ readonly part: string; readonly from: keyof GateMoments | 'created'; readonly to: keyof GateMoments; readonly owner: string }> = [
  { part: 'webhook (CREATE answered, pending)', from: 'created', to: 'gated', owner: 'ours' },
  { part: 'first reconcile: mint, synth, apply', from: 'gated', to: 'deployment', owner: 'ours' },
  { part: 'Deployment → pod (controllers)', from: 'deployment', to: 'podCreated', owner: 'kube-controller-manager' },
  { part: 'scheduling', from: 'podCreated', to: 'scheduled', owner: 'kube-scheduler' },
  { part: 'sandbox, image, container start', from: 'scheduled', to: 'processStarted', owner: 'kubelet, containerd' },
  { part: "dockerd's own start", from: 'processStarted', to: 'daemonServing', owner: 'dockerd' },
  { part: 'probe period, exec, kubelet report', from: 'daemonServing', to: 'podReady', owner: 'kubelet (probe timing is ours)' },
  { part: 'pod Ready → Deployment Available', from: 'podReady', to: 'available', owner: 'kube-controller-manager' },
  { part: 'Available → unpended (watch, unpend)', from: 'available', to: 'unpended', owner: 'ours' },
  { part: 'unpended → first task pod created', from: 'unpended', to: 'taskPodCreated', owner: 'Tekton' },
  { part: 'task pod created → running', from: 'taskPodCreated', to: 'taskPodRunning', owner: 'scheduler, kubelet' },
];

/** The totals the bench's JSON summary names. */
export const GATE_TOTALS: ReadonlyArray<{ readonly row: string; readonly to: keyof GateMoments }> = [
  { row: 'created -> unpended', to: 'unpended' },
  { row: 'created -> first task pod running', to: 'taskPodRunning' },
  { row: 'created -> Succeeded', to: 'done' },
];

/**
 * Each part's duration for one run. A part whose ends were not both seen is NaN (left out of the
 * percentiles), and so is a negative one: two moments seen out of order by different streams (a
 * watch event against a log line's timestamp) say nothing about the part between them.
 */
export function gateParts(m: GateMoments): Record<string, number> {
  const at = (k: keyof GateMoments | 'created') => (k === 'created' ? 0 : m[k] ?? NaN);
  const out: Record<string, number> = {};
  for (const p of GATE_PARTS) {
    const d = at(p.to) - at(p.from);
    out[p.part] = d >= 0 ? d : NaN;
  }
  return out;
}
