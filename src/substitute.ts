/**
 * TEP-0130's `$(sidecars.NAME.host|port|address)` references, found and replaced in any JSON value
 * (param values, an inline pipelineSpec, Pipeline param defaults).
 */

const REF = /\$\(sidecars\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(host|port|address)\)/g;

export interface SidecarCoordinates { readonly host: string; readonly port: number; readonly address: string }

/** Sidecar names referenced anywhere inside `value`. */
export function referencedSidecars(value: unknown, out = new Set<string>()): Set<string> {
  if (typeof value === 'string') for (const m of value.matchAll(REF)) out.add(m[1]);
  else if (Array.isArray(value)) value.forEach((v) => referencedSidecars(v, out));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => referencedSidecars(v, out));
  return out;
}

/** A deep copy of `value` with every reference to a sidecar in `coords` replaced. */
export function substituteSidecars<T>(value: T, coords: ReadonlyMap<string, SidecarCoordinates>): T {
  if (typeof value === 'string') {
    return value.replace(REF, (whole, name: string, _x, field: 'host' | 'port' | 'address') => {
      const c = coords.get(name);
      return c ? String(c[field]) : whole;
    }) as unknown as T;
  }
  if (Array.isArray(value)) return value.map((v) => substituteSidecars(v, coords)) as unknown as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = substituteSidecars(v, coords);
    return out as T;
  }
  return value;
}

/** `$(host)`, `$(port)` and `$(address)` in an expose.params value. */
export function expandExposeValue(value: string, c: SidecarCoordinates): string {
  return value.replace(/\$\((host|port|address)\)/g, (_w, f: 'host' | 'port' | 'address') => String(c[f]));
}

/** One `$(sidecars...)` that is not `$(sidecars.NAME.host|port|address)`, and where it is. */
export interface InvalidSidecarReference {
  /** The reference as written, e.g. `$(sidecars.docker.hostname)`. */
  readonly reference: string;
  /** Where, as a JSON path from the value given, e.g. `spec.params[0].value`. */
  readonly path: string;
  /** What is wrong and the fix. */
  readonly problem: string;
}

const FIELDS = ['host', 'port', 'address'];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Everything that starts like a sidecar reference, up to its closing parenthesis (or the end). */
const ANY_REF = /\$\(sidecars\.([^)]*)(\))?/g;

/** Why a reference body `NAME.FIELD` (what is between `$(sidecars.` and `)`) is wrong, or undefined. */
function referenceProblem(body: string, closed: boolean): string | undefined {
  if (!closed) return 'has no closing parenthesis; write $(sidecars.NAME.host), $(sidecars.NAME.port) or $(sidecars.NAME.address)';
  const parts = body.split('.');
  if (parts.length !== 2) return 'must be $(sidecars.NAME.FIELD) with FIELD host, port or address';
  const [name, field] = parts;
  if (!DNS_LABEL.test(name)) return `"${name}" is not a PipelineSidecar name (lower-case letters, digits and '-')`;
  if (!FIELDS.includes(field)) return `unknown field "${field}"; use host, port or address`;
  return undefined;
}

/**
 * Every malformed `$(sidecars...)` reference inside `value` (strings, arrays and objects, walked
 * with their JSON paths): an unknown FIELD, a bad NAME, or a missing `)`. The webhook refuses a run
 * with any at CREATE: Tekton would leave them in the run as literal text.
 */
export function invalidSidecarReferences(value: unknown, path = ''): InvalidSidecarReference[] {
  const out: InvalidSidecarReference[] = [];
  const walk = (v: unknown, p: string) => {
    if (typeof v === 'string') {
      if (!v.includes('$(sidecars.')) return;
      for (const m of v.matchAll(ANY_REF)) {
        const problem = referenceProblem(m[1], m[2] === ')');
        if (problem) out.push({ reference: m[0], path: p, problem });
      }
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${p}[${i}]`));
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? (p ? `${p}.${k}` : k) : `${p}[${JSON.stringify(k)}]`);
    }
  };
  walk(value, path);
  return out;
}
