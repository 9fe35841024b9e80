import { API_VERSION, KIND, LABELS, PipelineSidecarResource, PipelineSidecarSpec } from '../constructs/api/spec';
import { KindRegistry } from '../constructs/kinds';
import { validateSidecarSpec } from '../constructs/synthesize';
import { trustedRunId } from './bookkeeping';
import { REASONS } from './events';
import type { KubeObject, ObjectCache } from './k8s/object-store';
import type { RawClient } from './k8s/raw';
import { objectPath } from './k8s/resources';
import type { RunSidecar } from './material';
import { MissingSidecars } from './missing-sidecars';
import type { PipelineRun } from './pipelinerun';
import { annotatedSidecars, selectSidecars } from './selection';
import { SPEC_SNAPSHOT } from './sidecar-apply';
import { SIDECAR_USE_LABEL, externalPodInputs } from './sidecar-inputs';

/** A reason to refuse the run's sidecars, with the Event reason to give. */
export class Refusal extends Error {
  constructor(readonly reason: string, message: string) { super(message); }
}

/**
 * The PipelineSidecar spec each sidecar's objects were synthesized from (SPEC_SNAPSHOT), by sidecar
 * name. A mangled snapshot is skipped: the caller falls back to the PipelineSidecar.
 */
export function specSnapshots(objects: readonly KubeObject[]): Map<string, PipelineSidecarSpec> {
  const snapshots = new Map<string, PipelineSidecarSpec>();
  for (const o of objects) {
    const sc = o.metadata.labels?.[LABELS.sidecar];
    const snap = o.metadata.annotations?.[SPEC_SNAPSHOT];
    if (sc && snap && !snapshots.has(sc)) {
      try { snapshots.set(sc, JSON.parse(snap)); } catch { /* mangled */ }
    }
  }
  return snapshots;
}

/** What resolution reads: PipelineSidecars, Pipelines (both cached) and the server for the rest. */
export interface ResolutionSources {
  readonly client: RawClient;
  readonly sidecars: ObjectCache;
  readonly pipelines: ObjectCache;
  readonly kinds: KindRegistry;
}

/**
 * Which sidecars a run gets, with which specs, and whether it may have them: the first step of a
 * reconcile. It decides nothing about the run's state; the Reconciler turns its errors
 * (MissingSidecars, Refusal, SidecarSpecError) into the gate's actions.
 */
export class SidecarResolver {
  constructor(private readonly s: ResolutionSources) {}

  /** The sidecar names a run gets: what the webhook recorded, or (fallback mode) a fresh selection. */
  requested(run: PipelineRun): { names: string[]; unknown: string[] } {
    if (trustedRunId(run.metadata)) return { names: annotatedSidecars(run.metadata.annotations), unknown: [] };
    const ns = run.metadata.namespace;
    const ref = run.spec?.pipelineRef;
    const pipeline = ref?.name && !ref.resolver && !ref.bundle ? this.s.pipelines.get(ns, ref.name) : undefined;
    const crs = this.s.sidecars.list(ns) as unknown as PipelineSidecarResource[];
    return selectSidecars(run as any, pipeline as any, crs);
  }

  /**
   * The sidecars and specs the run gets. A frozen run keeps the spec it was first applied with (the
   * snapshot on its objects, passed as `snapshotFrom`; empty for a run that has not started):
   * editing or deleting its PipelineSidecar changes nothing under it. Throws MissingSidecars for
   * names that exist nowhere, Refusal for an invalid spec.
   */
  async resolve(run: PipelineRun, names: string[], unknown: string[], snapshotFrom: readonly KubeObject[]): Promise<RunSidecar[]> {
    const ns = run.metadata.namespace;
    const snapshots = specSnapshots(snapshotFrom);
    // A name the cache does not know may be a PipelineSidecar created a moment ago: the server decides.
    const fromServer = new Map<string, PipelineSidecarResource>();
    for (const n of [...new Set([...unknown, ...names])]) {
      if (snapshots.has(n) || this.s.sidecars.get(ns, n)) continue;
      const live = await this.s.client.getOrUndefined(objectPath({ apiVersion: API_VERSION, kind: KIND, metadata: { name: n, namespace: ns } }));
      if (live) fromServer.set(n, live);
    }
    const all = [...new Set([...names, ...unknown])].sort();
    const missing = all.filter((n) => !snapshots.has(n) && !fromServer.has(n) && !this.s.sidecars.get(ns, n));
    if (missing.length > 0) throw new MissingSidecars(missing, ns);
    return all.map((n) => {
      const snap = snapshots.get(n);
      if (snap) return { name: n, spec: snap };
      const cr = ((this.s.sidecars.get(ns, n) as unknown as PipelineSidecarResource | undefined) ?? fromServer.get(n))!;
      const problems = validateSidecarSpec(n, cr.spec, this.s.kinds);
      if (problems.length) throw new Refusal(REASONS.refused, `PipelineSidecar "${n}" is not valid: ${problems.map((p) => p.message).join('; ')}`);
      return { name: n, spec: cr.spec };
    });
  }

  /**
   * The Secrets and ConfigMaps the run's pods would read that their owners did not label for
   * sidecar use, as a refusal message (undefined when there are none). Read from the server: they
   * are not the operator's objects and are not cached. A missing one is left to the kubelet (the pod
   * does not start, and the start-up timeout says why).
   */
  async unconsentedInputs(namespace: string, manifests: ReadonlyArray<Record<string, any>>): Promise<string | undefined> {
    const refused: string[] = [];
    for (const input of externalPodInputs(manifests)) {
      const path = `/api/v1/namespaces/${namespace}/${input.kind === 'Secret' ? 'secrets' : 'configmaps'}/${encodeURIComponent(input.name)}`;
      const obj = await this.s.client.getOrUndefined(path);
      if (obj && obj.metadata?.labels?.[SIDECAR_USE_LABEL] !== 'true') refused.push(`${input.kind} ${input.name} (${input.where})`);
    }
    if (refused.length === 0) return undefined;
    return `the sidecar would read ${refused.join(', ')}, which ${refused.length > 1 ? 'are' : 'is'} not labelled for sidecar use: ` +
      `whoever owns ${refused.length > 1 ? 'them' : 'it'} may allow it with \`kubectl label ${refused.length > 1 ? '<kind> <name>' : refused[0].split(' (')[0].toLowerCase()} ${SIDECAR_USE_LABEL}=true\`, or remove the reference from the PipelineSidecar`;
  }
}
