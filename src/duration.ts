import { MAX_TIMER_MS, parseGoDuration } from '../constructs/duration';

export { MAX_TIMER_MS };

/**
 * Milliseconds of a Go-style duration ("90s", "5m", "1h30m", "500ms"); undefined when malformed or
 * longer than a timer can wait (MAX_TIMER_MS, about 24.8 days): setTimeout fires at once beyond it,
 * which made a long startupTimeout spin the reconcile loop.
 */
export function parseDuration(s: string | undefined): number | undefined {
  const ms = parseGoDuration(s);
  return ms !== undefined && ms <= MAX_TIMER_MS ? ms : undefined;
}
