import { PIPELINE_SIDECAR_SPEC_SCHEMA } from './api/crd';
import { PipelineSidecarSpec, SidecarContainer, SidecarPort } from './api/spec';
import { SidecarSpecError } from './errors';
import { validateSidecarReferences } from './references';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Tekton's rule for param names (they may hold dots, referenced as $(params["a.b"])). */
const TEKTON_PARAM_NAME = /^[_a-zA-Z][_a-zA-Z0-9.-]*$/;
/** `$(host)`-style placeholders of an expose.params value: a bare word, no dots. */
const PLACEHOLDER = /\$\(([A-Za-z0-9_-]*)\)/g;
const EXPOSE_PLACEHOLDERS = ['host', 'port', 'address'];
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

/**
 * The option block `key` of a spec as an object (absent → empty); throws when it is not an object
 * or has a field outside `known` (a typo must not be silently ignored).
 */
export function optionBlock(spec: PipelineSidecarSpec, key: string, sidecar: string, known: readonly string[]): Record<string, unknown> {
  const v = spec[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new SidecarSpecError(`spec.${key}`, 'must be an object', sidecar);
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) {
      const hint = known.length === 1 ? `the only field is ${known[0]}` : `known fields are ${known.join(', ')}`;
      throw new SidecarSpecError(`spec.${key}.${k}`, `unknown field; ${hint}`, sidecar);
    }
  }
  return v as Record<string, unknown>;
}

/** An optional non-empty string field of an option block. */
export function optString(block: Record<string, unknown>, key: string, field: string, sidecar: string, pattern?: RegExp): string | undefined {
  const v = block[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw new SidecarSpecError(`${field}.${key}`, 'must be a non-empty string', sidecar);
  if (pattern && !pattern.test(v)) throw new SidecarSpecError(`${field}.${key}`, `"${v}" does not match ${pattern}`, sidecar);
  return v;
}

/** An optional boolean field of an option block. */
export function optBool(block: Record<string, unknown>, key: string, field: string, sidecar: string): boolean | undefined {
  const v = block[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new SidecarSpecError(`${field}.${key}`, 'must be true or false', sidecar);
  return v;
}

/** An optional list of non-empty strings. */
export function optStringList(block: Record<string, unknown>, key: string, field: string, sidecar: string, pattern?: RegExp): string[] {
  const v = block[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new SidecarSpecError(`${field}.${key}`, 'must be a list of strings', sidecar);
  v.forEach((s, i) => {
    if (typeof s !== 'string' || s.length === 0) throw new SidecarSpecError(`${field}.${key}[${i}]`, 'must be a non-empty string', sidecar);
    if (pattern && !pattern.test(s)) throw new SidecarSpecError(`${field}.${key}[${i}]`, `"${s}" does not match ${pattern}`, sidecar);
  });
  return v as string[];
}

/** A Kubernetes quantity such as 20Gi. */
export function optQuantity(block: Record<string, unknown>, key: string, field: string, sidecar: string): string | undefined {
  return optString(block, key, field, sidecar, QUANTITY);
}

/** Problems with a list of Service ports (names are IANA service names; numbers 1-65535; both unique). */
export function portProblems(ports: unknown, sidecar: string, field = 'spec.ports'): SidecarSpecError[] {
  if (!Array.isArray(ports)) return [new SidecarSpecError(field, 'must be a list of {name, port}', sidecar)];
  if (ports.length === 0) return [new SidecarSpecError(field, 'is empty: list the ports the sidecar serves, or leave ports out to use the kind\'s defaults', sidecar)];
  const out: SidecarSpecError[] = [];
  const names = new Set<string>();
  const numbers = new Set<string>();
  ports.forEach((p: Partial<SidecarPort>, i) => {
    const f = `${field}[${i}]`;
    if (typeof p?.name !== 'string' || p.name.length > 15 || !IANA_SVC_NAME.test(p.name) || !/[a-z]/.test(p.name)) {
      out.push(new SidecarSpecError(`${f}.name`, `"${p?.name}" must be a lowercase IANA service name of at most 15 characters with a letter (e.g. docker)`, sidecar));
    } else if (names.has(p.name)) {
      out.push(new SidecarSpecError(`${f}.name`, `duplicate port name "${p.name}"`, sidecar));
    } else names.add(p.name);
    if (typeof p?.port !== 'number' || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      out.push(new SidecarSpecError(`${f}.port`, `${JSON.stringify(p?.port)} must be an integer from 1 to 65535`, sidecar));
    }
    const proto = p?.protocol ?? 'TCP';
    if (proto !== 'TCP' && proto !== 'UDP') out.push(new SidecarSpecError(`${f}.protocol`, `"${proto}" must be TCP or UDP`, sidecar));
    const key = `${p?.port}/${proto}`;
    if (numbers.has(key)) out.push(new SidecarSpecError(`${f}.port`, `port ${key} is listed twice`, sidecar));
    numbers.add(key);
  });
  return out;
}

/** Problems with the containers of a Container-kind template. */
export function containerProblems(containers: unknown, sidecar: string, field = 'spec.template.containers'): SidecarSpecError[] {
  if (!Array.isArray(containers) || containers.length === 0) {
    return [new SidecarSpecError(field, 'kind Container needs at least one container with a name and an image', sidecar)];
  }
  const out: SidecarSpecError[] = [];
  const names = new Set<string>();
  containers.forEach((c: Partial<SidecarContainer>, i) => {
    const f = `${field}[${i}]`;
    if (typeof c?.name !== 'string' || c.name.length > 63 || !DNS1123_LABEL.test(c.name)) {
      out.push(new SidecarSpecError(`${f}.name`, `"${c?.name}" must be a DNS-1123 label (lowercase letters, digits, "-")`, sidecar));
    } else if (names.has(c.name)) {
      out.push(new SidecarSpecError(`${f}.name`, `duplicate container name "${c.name}"`, sidecar));
    } else names.add(c.name);
    if (typeof c?.image !== 'string' || c.image.trim().length === 0) {
      out.push(new SidecarSpecError(`${f}.image`, 'is missing: set the container image, e.g. redis:7', sidecar));
    }
    (c?.ports ?? []).forEach((p, j) => {
      if (!Number.isInteger(p?.containerPort) || p.containerPort < 1 || p.containerPort > 65535) {
        out.push(new SidecarSpecError(`${f}.ports[${j}].containerPort`, `${JSON.stringify(p?.containerPort)} must be an integer from 1 to 65535`, sidecar));
      }
    });
  });
  return out;
}

/**
 * Problems with spec.expose: param names as Tekton accepts them, each name once, values that are
 * strings whose `$(…)` placeholders are known, and a workspace name that is a DNS-1123 label (Tekton
 * validates Pipeline workspace names so).
 */
export function exposeProblems(expose: unknown, sidecar: string, field = 'spec.expose'): SidecarSpecError[] {
  if (expose === undefined) return [];
  if (!expose || typeof expose !== 'object' || Array.isArray(expose)) return [new SidecarSpecError(field, 'must be an object with params and/or workspace', sidecar)];
  const out: SidecarSpecError[] = [];
  const { params, workspace } = expose as Record<string, unknown>;
  if (params !== undefined) {
    if (!Array.isArray(params)) out.push(new SidecarSpecError(`${field}.params`, 'must be a list of {name, value}', sidecar));
    else {
      const seen = new Set<string>();
      params.forEach((p: any, i) => {
        const f = `${field}.params[${i}]`;
        if (typeof p?.name !== 'string' || !TEKTON_PARAM_NAME.test(p.name)) {
          out.push(new SidecarSpecError(`${f}.name`, `${JSON.stringify(p?.name)} is not a Tekton param name: letters, digits, "_", "-" and ".", starting with a letter or "_" (e.g. docker-host)`, sidecar));
        } else if (seen.has(p.name)) {
          out.push(new SidecarSpecError(`${f}.name`, `param "${p.name}" is listed twice`, sidecar));
        } else seen.add(p.name);
        if (typeof p?.value !== 'string') {
          out.push(new SidecarSpecError(`${f}.value`, 'must be a string, e.g. "$(address)" or "tcp://$(host):$(port)"', sidecar));
          return;
        }
        for (const m of p.value.matchAll(PLACEHOLDER)) {
          if (!EXPOSE_PLACEHOLDERS.includes(m[1])) {
            out.push(new SidecarSpecError(`${f}.value`, `unknown placeholder ${m[0]}: a value can use $(host), $(port) and $(address)`, sidecar));
          }
        }
        for (const r of validateSidecarReferences(p.value)) out.push(new SidecarSpecError(`${f}.value`, `${r.reference} ${r.problem}`, sidecar));
      });
    }
  }
  if (workspace !== undefined && (typeof workspace !== 'string' || workspace.length > 63 || !DNS1123_LABEL.test(workspace))) {
    out.push(new SidecarSpecError(`${field}.workspace`, `${JSON.stringify(workspace)} must be a Pipeline workspace name: a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters), e.g. docker-tls`, sidecar));
  }
  return out;
}

/**
 * Every field of `spec` that the CRD's schema does not know, except the option block of the spec's
 * own kind (`ownKey`; custom kinds parse theirs). The API server keeps such fields (see
 * keepUnknownFields in api/crd.ts) precisely so that they are reported here instead of vanishing.
 */
export function unknownFieldProblems(spec: unknown, sidecar: string, ownKey?: string): SidecarSpecError[] {
  const out: SidecarSpecError[] = [];
  const walk = (schema: Record<string, any> | undefined, value: unknown, path: string) => {
    if (!schema || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      if (schema.items) value.forEach((v, i) => walk(schema.items, v, `${path}[${i}]`));
      return;
    }
    const props: Record<string, any> | undefined = schema.properties;
    if (!props) return; // a free-form object (securityContext, probes, egress rules) or a string map
    const atRoot = path === 'spec';
    for (const [k, v] of Object.entries(value)) {
      if (atRoot && k in props && !COMMON_SPEC_FIELDS.includes(k) && k !== ownKey) {
        out.push(new SidecarSpecError(`${path}.${k}`, `is the option block of another kind; this kind reads ${ownKey ? `spec.${ownKey}` : 'no option block'}`, sidecar));
      } else if (k in props) walk(props[k], v, `${path}.${k}`);
      else if (!(atRoot && k === ownKey)) {
        const known = atRoot ? [...COMMON_SPEC_FIELDS, ...(ownKey ? [ownKey] : [])] : Object.keys(props);
        out.push(new SidecarSpecError(`${path}.${k}`,
          `unknown field; ${known.length === 1 ? `the only field is ${known[0]}` : `known fields are ${known.join(', ')}`} ` +
          '(fix its spelling or remove it: nothing reads it)', sidecar));
      }
    }
  };
  walk(PIPELINE_SIDECAR_SPEC_SCHEMA, spec, 'spec');
  return out;
}

/**
 * The largest spec, as compact JSON in UTF-8, that a run can be given. The operator keeps the spec a
 * run got on each of that run's sidecar objects, in one annotation, so that a started run keeps
 * what it got when the PipelineSidecar is edited or deleted; Kubernetes allows 262,144 bytes of
 * annotations per object in all. 16 KiB of that is left for the object's other annotations (ours
 * and other tools').
 */
export const MAX_SPEC_BYTES = 262_144 - 16 * 1024;

/** The spec's size against MAX_SPEC_BYTES, as a problem naming what the user can change. */
export function specSizeProblems(spec: unknown, sidecar: string): SidecarSpecError[] {
  const bytes = Buffer.byteLength(JSON.stringify(spec) ?? '', 'utf8');
  if (bytes <= MAX_SPEC_BYTES) return [];
  return [new SidecarSpecError('spec',
    `is ${bytes.toLocaleString('en-US')} bytes as JSON, over the limit of ${MAX_SPEC_BYTES.toLocaleString('en-US')}: the operator keeps a copy of the spec ` +
    'on each sidecar object in an annotation, and Kubernetes allows 262,144 bytes of annotations per object. ' +
    'Move large values out of the spec: an env value into a Secret or ConfigMap labelled pipeline-sidecars.dev/sidecar-use=true and read with valueFrom, ' +
    'a file into a ConfigMap mounted as a volume', sidecar)];
}

/** Fields of spec every kind has (the option blocks are per kind). */
const COMMON_SPEC_FIELDS = ['selector', 'kind', 'ports', 'expose', 'isolation', 'lifecycle'];

/** Throws the first problem, if any. */
export function throwFirst(problems: SidecarSpecError[]): void {
  if (problems.length > 0) throw problems[0];
}
