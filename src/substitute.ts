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
