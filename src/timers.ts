/**
 * The longest delay setTimeout honours: 2^31-1 ms, about 24.8 days. Node runs a longer timer after
 * 1 ms instead (with a TimeoutOverflowWarning), so a caller asking for 30 days would spin.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay setTimeout can take as meant: NaN and negatives are 0, fractions round up, anything longer is MAX_TIMER_MS. */
export function timerDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(Math.ceil(ms), MAX_TIMER_MS);
}

/**
 * setTimeout for any delay, however long: a delay beyond MAX_TIMER_MS is waited in parts. Returns a
 * cancel function. The timer does not keep the process alive.
 */
export function longTimeout(fn: () => void, ms: number): () => void {
  const at = Date.now() + (ms > 0 ? ms : 0);
  let t: NodeJS.Timeout;
  const arm = () => {
    const left = at - Date.now();
    t = setTimeout(() => (at - Date.now() > 0 ? arm() : fn()), timerDelay(left));
    t.unref?.();
  };
  arm();
  return () => clearTimeout(t);
}
