/**
 * The gate: whether a pending run may start, must be cancelled, or waits. A pure function of what
 * the reconciler observed, so every case is a row in a table test (test/operator/gate.unit.test.ts).
 */

/** What the reconciler saw of one sidecar of the run. */
export interface SidecarObservation {
  readonly name: string;
  readonly ready: boolean;
  /**
   * When the operator last gave this sidecar's Deployment a new desire (its applied-at annotation:
   * created, or changed while the run had not started, so a new pod rolls out), else the
   * Deployment's creationTimestamp, or when the API first refused the objects (the failure Event);
   * undefined when none of that happened yet. The start-up timeout counts from here, not from the
   * run's creation, so a run that waited behind an operator outage or another queue is not
   * cancelled the moment we come back, nor while a change we just applied rolls out.
   */
  readonly since?: number;
  readonly startupTimeoutMs: number;
  readonly onSidecarFailure: 'Cancel' | 'Ignore';
}

export interface GateInput {
  /** spec.status is PipelineRunPending. */
  readonly pending: boolean;
  /** Our webhook pended the run itself, or its author allowed us to release it (fallback mode). */
  readonly releasable: boolean;
  readonly sidecars: readonly SidecarObservation[];
  readonly now: number;
  /**
   * On a run we gate, once its sidecars have not been Ready for this long (counted from the
   * earliest `since`), a `wait` says so once, naming them (`slow`): the SidecarsApplied Event.
   * Sidecars Ready sooner are reported by SidecarsReady alone, so a run costs one Event.
   * Absent: never.
   */
  readonly slowAfterMs?: number;
  /** The slow report went out already for this run. */
  readonly slowReported?: boolean;
}

export type GateDecision =
  /** Every sidecar is Ready: take the run out of pending. */
  | { readonly kind: 'start' }
  /** A sidecar missed its start-up timeout and says Cancel. */
  | { readonly kind: 'cancel'; readonly expired: readonly string[] }
  /** Sidecars missed their timeout, all with onSidecarFailure: Ignore: start anyway, with a Warning. */
  | { readonly kind: 'start-anyway'; readonly expired: readonly string[] }
  /** Somebody else pended the run: they release or cancel it; we only report a missed timeout. */
  | { readonly kind: 'report'; readonly expired: readonly string[] }
  /**
   * Not Ready yet: look again at `until` (undefined: when something changes). `slow` names the
   * sidecars to report as taken a while (see slowAfterMs), when it is time to.
   */
  | { readonly kind: 'wait'; readonly until?: number; readonly slow?: readonly string[] }
  /** Not pending: nothing for the gate to do. */
  | { readonly kind: 'none' };

export function decide(input: GateInput): GateDecision {
  if (!input.pending) return { kind: 'none' };
  const notReady = input.sidecars.filter((s) => !s.ready);
  if (notReady.length === 0) return input.releasable ? { kind: 'start' } : { kind: 'wait' };
  const expired: SidecarObservation[] = [];
  let until: number | undefined;
  for (const s of notReady) {
    if (s.since === undefined) continue;
    const deadline = s.since + s.startupTimeoutMs;
    if (input.now >= deadline) expired.push(s);
    else until = until === undefined ? deadline : Math.min(until, deadline);
  }
  if (expired.length === 0) return slowWait(input, notReady, until);
  const names = expired.map((s) => s.name);
  if (!input.releasable) return { kind: 'report', expired: names };
  return expired.some((s) => s.onSidecarFailure === 'Cancel') ? { kind: 'cancel', expired: names } : { kind: 'start-anyway', expired: names };
}

/** A `wait` on sidecars not Ready, with the slow report folded in (see GateInput.slowAfterMs). */
function slowWait(input: GateInput, notReady: readonly SidecarObservation[], until: number | undefined): GateDecision {
  const waiting = notReady.filter((s) => s.since !== undefined);
  if (!input.releasable || input.slowAfterMs === undefined || input.slowReported || waiting.length === 0) return { kind: 'wait', until };
  const slowAt = Math.min(...waiting.map((s) => s.since!)) + input.slowAfterMs;
  if (input.now < slowAt) return { kind: 'wait', until: until === undefined ? slowAt : Math.min(until, slowAt) };
  return { kind: 'wait', until, slow: waiting.map((s) => s.name) };
}
