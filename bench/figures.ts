/**
 * The bench's derived figures, pure so they can be tested apart from a cluster: ratios of two
 * medians and a sustained completion rate.
 */

/** a / b, or undefined when either is missing or b is not a positive number (no ratio to speak of). */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) return undefined;
  return a / b;
}

/**
 * Sustained throughput in completions per second: (n - 1) completions between the first and the
 * last one, over the time between them. Unlike n / (last completion - first start), it does not
 * count one run's latency as lost throughput: a system that keeps up with the offered rate
 * completes at that rate whatever its latency, and one that does not completes at its own pace.
 * Undefined below two completions or when all completed at the same millisecond.
 */
export function completionRatePerS(completedAt: Array<number | undefined>): number | undefined {
  const t = completedAt.filter((x): x is number => x !== undefined && Number.isFinite(x));
  if (t.length < 2) return undefined;
  const span = Math.max(...t) - Math.min(...t);
  return span > 0 ? (t.length - 1) / (span / 1000) : undefined;
}

/** calls / runs, undefined without runs. */
export function perRun(calls: number, runs: number): number | undefined {
  return runs > 0 ? calls / runs : undefined;
}
