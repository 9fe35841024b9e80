const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go-style duration ("90s", "5m", "1h30m", "500ms"); undefined when malformed. */
export function parseDuration(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) { total += parseFloat(m[1]) * UNIT_MS[m[2]]; consumed = re.lastIndex; }
  return consumed === s.length && consumed > 0 ? total : undefined;
}
