import { ANNOTATIONS, PipelineSidecarResource, RunIdentity } from '../constructs/api/spec';
import { SidecarSpecError } from '../constructs/errors';
import { KindRegistry } from '../constructs/kinds';
import { sidecarEndpoints } from '../constructs/endpoints';
import { validateSidecarSpec } from '../constructs/synthesize';
import { mintRunId } from './runid';
import { selectSidecars } from './selection';
import { expandExposeValue, referencedSidecars, SidecarCoordinates, substituteSidecars } from './substitute';

/**
 * What the mutating webhook decides for one PipelineRun CREATE. Pure (no I/O): the server fetches
 * the Pipeline and the namespace's PipelineSidecars and passes them in, so this is unit-testable and
 * the same decision can be replayed by `render`.
 */

export interface AdmissionInput {
  /** The PipelineRun as submitted (name may be empty with generateName). */
  readonly run: Record<string, any>;
  /** The namespace of the request (object.metadata.namespace may be unset at CREATE). */
  readonly namespace: string;
  /** The referenced cluster-local Pipeline, when there is one and it exists. */
  readonly pipeline?: Record<string, any>;
  /** Why the Pipeline could not be read, when spec.pipelineRef names one that could not be. */
  readonly pipelineProblem?: string;
  /** The PipelineSidecars of the namespace. */
  readonly sidecars: PipelineSidecarResource[];
  readonly kinds: KindRegistry;
  /** Fixed run id (tests); minted otherwise. */
  readonly runId?: string;
}

export type AdmissionDecision =
  | { readonly allowed: true; readonly mutated?: Record<string, any>; readonly runId?: string; readonly sidecars: string[]; readonly warnings: string[] }
  | { readonly allowed: false; readonly message: string };

const PENDING = 'PipelineRunPending';

function declared(pipelineSpec: Record<string, any> | undefined): { params?: Set<string>; workspaces?: Set<string> } {
  if (!pipelineSpec) return {};
  return {
    params: new Set<string>((pipelineSpec.params ?? []).map((p: any) => p?.name).filter(Boolean)),
    workspaces: new Set<string>((pipelineSpec.workspaces ?? []).map((w: any) => w?.name).filter(Boolean)),
  };
}

export function admitPipelineRun(input: AdmissionInput): AdmissionDecision {
  const run = input.run;
  const spec: Record<string, any> = run.spec ?? {};
  const byName = new Map(input.sidecars.map((s) => [s.metadata.name, s]));

  // What the run asks for: annotation (run or Pipeline), selectors, and any $(sidecars.X.*) reference.
  const selection = selectSidecars(run as any, input.pipeline as any, input.sidecars);
  const names = new Set<string>(selection.names);
  const unknown = new Set<string>(selection.unknown);
  const refs = referencedSidecars([spec.params ?? [], spec.pipelineSpec ?? {}, input.pipeline?.spec?.params ?? []]);
  for (const r of refs) (byName.has(r) ? names : unknown).add(r);
  if (unknown.size > 0) {
    const list = [...unknown].sort();
    const known = [...byName.keys()].sort();
    return {
      allowed: false,
      message: `PipelineRun asks for PipelineSidecar${list.length > 1 ? 's' : ''} ${list.map((n) => `"${n}"`).join(', ')} ` +
        `that do${list.length > 1 ? '' : 'es'} not exist in namespace "${input.namespace}"` +
        (known.length ? ` (existing: ${known.join(', ')})` : ' (there are none)') +
        `; create ${list.length > 1 ? 'them' : 'it'} first or fix annotation ${ANNOTATIONS.sidecars}`,
    };
  }
  if (names.size === 0) return { allowed: true, sidecars: [], warnings: [] };

  const runId = input.runId ?? mintRunId();
  const identity: RunIdentity = { name: run.metadata?.name || `${run.metadata?.generateName ?? 'run'}pending`, namespace: input.namespace, uid: 'pending', runId, naming: 'runId' };
  const sorted = [...names].sort();
  const coords = new Map<string, SidecarCoordinates & { clientSecretName?: string }>();
  const problems: string[] = [];
  for (const n of sorted) {
    const cr = byName.get(n)!;
    const ps = validateSidecarSpec(n, cr.spec, input.kinds);
    if (ps.length > 0) { problems.push(...ps.map((p) => p.message)); continue; }
    try {
      coords.set(n, sidecarEndpoints(identity, n, cr.spec, input.kinds));
    } catch (e) {
      if (e instanceof SidecarSpecError) problems.push(e.message); else throw e;
    }
  }
  if (problems.length > 0) {
    return { allowed: false, message: `PipelineRun asks for sidecars that are not valid: ${problems.join('; ')} (see the PipelineSidecar status conditions)` };
  }

  const warnings: string[] = [];
  const newSpec: Record<string, any> = substituteSidecars(spec, coords);
  const pipelineSpec: Record<string, any> | undefined = newSpec.pipelineSpec ?? input.pipeline?.spec;
  const decl = declared(pipelineSpec);
  if (!pipelineSpec) {
    // The webhook cannot read a Pipeline that a resolver or bundle will fetch, so it cannot tell
    // what it declares. It binds every exposed param and the certificate workspace anyway: Tekton
    // ignores bindings a Pipeline does not declare, and uses the ones it does.
    const names = sorted.flatMap((n) => [...(byName.get(n)!.spec.expose?.params ?? []).map((p) => `param ${p.name}`), ...(byName.get(n)!.spec.expose?.workspace ? [`workspace ${byName.get(n)!.spec.expose!.workspace}`] : [])]);
    warnings.push(`pipeline-sidecars: ${input.pipelineProblem ?? 'the Pipeline is not cluster-local (resolver or bundle)'}, so the webhook cannot see what it declares; ` +
      `bound anyway: ${names.join(', ') || 'nothing (the sidecars expose nothing)'}; declare them in the Pipeline to use them`);
  }
  const params: Array<Record<string, any>> = [...(newSpec.params ?? [])];
  const hasParam = (n: string) => params.some((p) => p?.name === n);

  // A referenced Pipeline's param default like "$(sidecars.docker-daemon.host):2376" (TEP-0130's
  // own example) cannot be rewritten in the Pipeline; passing the resolved value as a run param does it.
  for (const p of (newSpec.pipelineSpec ? [] : input.pipeline?.spec?.params ?? [])) {
    if (p?.name && p.default !== undefined && !hasParam(p.name) && referencedSidecars(p.default).size > 0) {
      params.push({ name: p.name, value: substituteSidecars(p.default, coords) });
    }
  }
  const workspaces: Array<Record<string, any>> = [...(newSpec.workspaces ?? [])];
  for (const n of sorted) {
    const cr = byName.get(n)!;
    const c = coords.get(n)!;
    for (const ep of cr.spec.expose?.params ?? []) {
      if (hasParam(ep.name)) continue;
      if (!decl.params || decl.params.has(ep.name)) params.push({ name: ep.name, value: expandExposeValue(ep.value, c) });
    }
    const ws = cr.spec.expose?.workspace;
    if (ws && (!decl.workspaces || decl.workspaces.has(ws)) && !workspaces.some((w) => w?.name === ws)) {
      if (c.clientSecretName) workspaces.push({ name: ws, secret: { secretName: c.clientSecretName } });
      else warnings.push(`pipeline-sidecars: sidecar ${n} exposes workspace ${ws} but its kind has no client Secret; not bound`);
    }
  }
  if (params.length > 0) newSpec.params = params;
  if (workspaces.length > 0) newSpec.workspaces = workspaces;

  const annotations: Record<string, string> = { ...(run.metadata?.annotations ?? {}) };
  annotations[ANNOTATIONS.runId] = runId;
  annotations[ANNOTATIONS.sidecars] = sorted.join(',');
  delete annotations[ANNOTATIONS.started];
  if (newSpec.status === undefined || newSpec.status === '') {
    newSpec.status = PENDING;
    annotations[ANNOTATIONS.gated] = 'true';
  } else if (newSpec.status === PENDING) {
    // Pended by someone else (Pipelines-as-Code, a queue, a person): it gets its sidecars, and its
    // owner releases it; the operator never does (it releases only what it pended itself).
    delete annotations[ANNOTATIONS.gated];
    warnings.push('pipeline-sidecars: the run is already PipelineRunPending at creation; its sidecars are provided, and whoever pended it releases it');
  } else {
    // The user asked for Cancelled/StoppedRunFinally at CREATE: nothing to gate, sidecars are pointless.
    delete annotations[ANNOTATIONS.gated];
    warnings.push(`pipeline-sidecars: spec.status is ${newSpec.status} at creation; the run is not gated`);
  }
  return {
    allowed: true,
    runId,
    sidecars: sorted,
    warnings,
    mutated: { ...run, metadata: { ...(run.metadata ?? {}), annotations }, spec: newSpec },
  };
}

/** JSON Patch turning `before` into `after` for the two top-level fields the webhook may change. */
export function admissionPatch(before: Record<string, any>, after: Record<string, any>): Array<Record<string, unknown>> {
  const ops: Array<Record<string, unknown>> = [];
  if (JSON.stringify(before.metadata?.annotations) !== JSON.stringify(after.metadata?.annotations)) {
    ops.push({ op: 'add', path: '/metadata/annotations', value: after.metadata.annotations });
  }
  if (JSON.stringify(before.spec) !== JSON.stringify(after.spec)) ops.push({ op: before.spec ? 'replace' : 'add', path: '/spec', value: after.spec });
  return ops;
}
