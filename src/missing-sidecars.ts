import type { PipelineSidecarSpec } from '../constructs/api/spec';

/**
 * PipelineSidecars the run asks for that do not exist (yet, or any more). A GitOps sync that deletes
 * and re-creates one, or applies it a moment after the Pipeline, must not cost the runs in between:
 * a run that has not started waits for them (missingWait), then is refused.
 */
export class MissingSidecars extends Error {
  constructor(readonly names: string[], namespace: string) {
    super(`PipelineSidecar ${names.map((n) => `"${n}"`).join(', ')} does not exist in namespace ${namespace}`);
  }
}

/** How long a run waits for missing PipelineSidecars, and whose timeout that is (for the Event). */
export interface MissingWait {
  readonly timeoutMs: number;
  readonly whose: string;
}

/**
 * The wait for `missing`: the longest of their own startupTimeouts, as the run's objects recorded
 * them when applied (`snapshots`, by sidecar name). A sidecar the run never got objects of left no
 * record, and its spec is gone: the operator's default applies to it.
 */
export function missingWait(
  missing: readonly string[],
  snapshots: ReadonlyMap<string, PipelineSidecarSpec>,
  timeoutOf: (spec: PipelineSidecarSpec) => number,
  defaultMs: number,
): MissingWait {
  const waits = missing.map((n): MissingWait => {
    const snap = snapshots.get(n);
    return snap ? { timeoutMs: timeoutOf(snap), whose: `the startupTimeout "${n}" had` } : { timeoutMs: defaultMs, whose: 'the operator\'s default startupTimeout' };
  });
  return waits.reduce((a, b) => (b.timeoutMs > a.timeoutMs ? b : a), { timeoutMs: 0, whose: 'no timeout' });
}
