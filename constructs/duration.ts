/**
 * Go-style durations ("90s", "5m", "1h30m", "500ms"), as PipelineSidecars write them, and the bounds
 * that keep them usable as timers.
 */

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The longest delay a Node.js timer can wait: setTimeout fires after 1 ms for anything longer
 * (with a TimeoutOverflowWarning), which turned a startupTimeout of 25 days into a hot loop.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Milliseconds of a Go-style duration; undefined when malformed. No bounds: see durationProblem. */
export function parseGoDuration(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) { total += parseFloat(m[1]) * UNIT_MS[m[2]]; consumed = re.lastIndex; }
  return consumed === s.length && consumed > 0 ? total : undefined;
}

/** Inclusive bounds of a duration field, in milliseconds. */
export interface DurationBounds {
  readonly minMs: number;
  readonly maxMs: number;
}

/**
 * spec.lifecycle.startupTimeout: at least 1s (a sidecar cannot start faster than its pod is
 * scheduled), at most 24h (a run held pending for longer than a day is a mistake, and the bound stays
 * far below MAX_TIMER_MS). The CRD says the same in CEL.
 */
export const STARTUP_TIMEOUT_BOUNDS: DurationBounds = { minMs: 1000, maxMs: 24 * 3_600_000 };

/** `ms` as the shortest Go-style text among h, m, s and ms (86400000 → 24h). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) { parts.push(`${n}${unit}`); rest -= n * size; }
  }
  return parts.join('') || `${ms}ms`;
}

/** What is wrong with `value` as a duration within `bounds`, or undefined when it is fine. */
export function durationProblem(value: unknown, bounds: DurationBounds): string | undefined {
  const range = `between ${formatDuration(bounds.minMs)} and ${formatDuration(bounds.maxMs)}`;
  const ms = typeof value === 'string' ? parseGoDuration(value) : undefined;
  if (ms === undefined) return `${JSON.stringify(value)} must be a duration such as 90s, 5m or 1h, ${range}`;
  if (ms < bounds.minMs || ms > bounds.maxMs) return `"${value}" is ${ms < bounds.minMs ? 'shorter' : 'longer'} than allowed: use a duration ${range}`;
  return undefined;
}
