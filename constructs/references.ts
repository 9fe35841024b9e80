/**
 * TEP-0130's `$(sidecars.NAME.FIELD)` references, checked before anything is substituted: an unknown
 * FIELD (or a malformed reference) would otherwise stay in the run as literal text, and tasks would
 * get `$(sidecars.db.hots)` as a host name.
 */
import { ANNOTATIONS } from './api/spec';

/** The fields a reference may name, in the order the error lists them. */
export const SIDECAR_REFERENCE_FIELDS = ['host', 'port', 'address'] as const;
export type SidecarReferenceField = typeof SIDECAR_REFERENCE_FIELDS[number];

/** Every `$(sidecars.…)` in a string, well-formed or not. */
const ANY_REFERENCE = /\$\(sidecars\.([^()\s]*)\)/g;
// NAME as src/substitute.ts matches it; PipelineSidecar names are DNS-1035 labels, a subset.
const WELL_FORMED = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([A-Za-z0-9_-]+)$/;

/** One `$(sidecars.…)` found in a text. */
export interface SidecarReference {
  /** The whole reference as written, e.g. `$(sidecars.db.host)`. */
  readonly text: string;
  /** Offset of the reference in the text. */
  readonly index: number;
  /** The sidecar name, when the reference has the NAME.FIELD shape. */
  readonly name?: string;
  /** The field, when the reference has the NAME.FIELD shape (known or not). */
  readonly field?: string;
}

/** Every `$(sidecars.…)` reference in `text`, in order. */
export function findSidecarReferences(text: string): SidecarReference[] {
  const out: SidecarReference[] = [];
  for (const m of text.matchAll(ANY_REFERENCE)) {
    const shape = WELL_FORMED.exec(m[1]);
    out.push(shape ? { text: m[0], index: m.index!, name: shape[1], field: shape[3] } : { text: m[0], index: m.index! });
  }
  return out;
}

/** A reference that cannot be substituted, with where it is and what to write instead. */
export interface SidecarReferenceProblem {
  /** Where in the checked value, e.g. `spec.params[2].value`. */
  readonly path: string;
  /** The reference as written. */
  readonly reference: string;
  /** What is wrong and the fix. */
  readonly problem: string;
}

/** Options of validateSidecarReferences. */
export interface ReferenceCheckOptions {
  /** Path of the checked value, prefixed to every problem's path (default `''`). */
  readonly path?: string;
  /** Sidecars the run has; when given, a reference to any other is a problem too. */
  readonly sidecars?: Iterable<string>;
}

const KNOWN = SIDECAR_REFERENCE_FIELDS.join(', ');

/**
 * Problems with every `$(sidecars.NAME.FIELD)` reference anywhere in `value` (a string, or any JSON
 * value: param lists, an inline pipelineSpec). For the webhook to refuse at CREATE.
 */
export function validateSidecarReferences(value: unknown, options: ReferenceCheckOptions = {}): SidecarReferenceProblem[] {
  const out: SidecarReferenceProblem[] = [];
  const have = options.sidecars ? new Set(options.sidecars) : undefined;
  const walk = (v: unknown, path: string) => {
    if (typeof v === 'string') {
      for (const r of findSidecarReferences(v)) {
        if (r.name === undefined || r.field === undefined) {
          out.push({ path, reference: r.text, problem: `is not a sidecar reference: write $(sidecars.NAME.FIELD) with NAME a PipelineSidecar name and FIELD one of ${KNOWN}` });
        } else if (!(SIDECAR_REFERENCE_FIELDS as readonly string[]).includes(r.field)) {
          out.push({ path, reference: r.text, problem: `unknown field "${r.field}": a sidecar reference can name ${KNOWN}` });
        } else if (have && !have.has(r.name)) {
          const list = [...have].sort();
          out.push({ path, reference: r.text, problem: `this run has no sidecar "${r.name}"${list.length ? ` (it has ${list.join(', ')})` : ''}: ask for it (annotation ${ANNOTATIONS.sidecars} or a selector) or fix the name` });
        }
      }
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`));
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    }
  };
  walk(value, options.path ?? '');
  return out;
}
