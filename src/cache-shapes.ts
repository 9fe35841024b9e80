/**
 * What the operator keeps of the objects it caches (informer transforms, like client-go's
 * SetTransform) and how it finds them (indexers). A cached PipelineRun, Pod or Pipeline holds only
 * the fields the reconciler and the webhook read; everything else (a run's params and resolved
 * pipelineSpec, Tekton's childReferences and provenance, a pod's spec, a Pipeline's tasks) is
 * dropped on arrival, so a cluster that keeps thousands of finished runs costs little memory.
 *
 * Adding a reader of a field that is dropped here is a bug that tests catch only if they look: keep
 * this file and the readers (pipelinerun.ts, selection.ts, readiness.ts, admission.ts) in step.
 */
import { LABELS, RESERVED_PREFIX } from '../constructs/api/spec';
import type { IndexFunc, KubeObject } from './k8s/object-store';
import { runIdentity } from './pipelinerun';

type Meta = KubeObject['metadata'];

function pick<T extends Record<string, any>>(o: T | undefined, keys: readonly string[]): Partial<T> | undefined {
  if (!o) return undefined;
  const out: Record<string, any> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out as Partial<T>;
}

/** Our own annotations only: the run's `sidecars`, `release`, run id, gated, started, cancelled. */
function ourAnnotations(a: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!a) return undefined;
  let out: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(a)) if (k.startsWith(RESERVED_PREFIX)) (out ??= {})[k] = v;
  return out;
}

function slimMeta(m: Meta, annotations: 'ours' | 'all'): Meta {
  return {
    name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion,
    ...(m.generation !== undefined ? { generation: m.generation } : {}),
    ...(m.creationTimestamp ? { creationTimestamp: m.creationTimestamp } : {}),
    ...(m.deletionTimestamp ? { deletionTimestamp: m.deletionTimestamp } : {}),
    // All labels: PipelineSidecar selectors (matchLabels) match on any of them.
    ...(m.labels ? { labels: m.labels } : {}),
    ...(annotations === 'all' ? (m.annotations ? { annotations: m.annotations } : {}) : (ourAnnotations(m.annotations) ? { annotations: ourAnnotations(m.annotations) } : {})),
    ...(m.ownerReferences ? { ownerReferences: m.ownerReferences } : {}),
  };
}

/**
 * A PipelineRun as src/pipelinerun.ts's PipelineRun type reads it: identity, our annotations, all
 * labels, spec.status and spec.pipelineRef, status.startTime/completionTime and the Succeeded
 * condition.
 */
export function slimPipelineRun(run: KubeObject): KubeObject {
  const spec = run.spec ?? {};
  const status = run.status ?? {};
  const succeeded = (status.conditions ?? []).filter((c: any) => c?.type === 'Succeeded');
  return {
    apiVersion: run.apiVersion, kind: run.kind,
    metadata: slimMeta(run.metadata, 'ours'),
    spec: {
      ...(spec.status !== undefined ? { status: spec.status } : {}),
      ...(spec.pipelineRef ? { pipelineRef: pick(spec.pipelineRef, ['name', 'resolver', 'bundle']) } : {}),
    },
    status: {
      ...(status.startTime ? { startTime: status.startTime } : {}),
      ...(status.completionTime ? { completionTime: status.completionTime } : {}),
      ...(succeeded.length ? { conditions: succeeded.map((c: any) => pick(c, ['type', 'status', 'reason', 'message'])) } : {}),
    },
  };
}

/** A Pod as notReadyCause (readiness.ts) reads it: name, labels and status; no spec. */
export function slimPod(pod: KubeObject): KubeObject {
  const s = pod.status ?? {};
  const cs = (l: any[] | undefined) => l?.map((c) => pick(c, ['name', 'image', 'imageID', 'ready', 'restartCount', 'state', 'lastState']));
  return {
    apiVersion: pod.apiVersion, kind: pod.kind,
    metadata: slimMeta(pod.metadata, 'ours'),
    status: {
      ...(s.phase ? { phase: s.phase } : {}), ...(s.reason ? { reason: s.reason } : {}),
      ...(s.conditions ? { conditions: s.conditions.map((c: any) => pick(c, ['type', 'status', 'reason', 'message'])) } : {}),
      ...(s.initContainerStatuses ? { initContainerStatuses: cs(s.initContainerStatuses) } : {}),
      ...(s.containerStatuses ? { containerStatuses: cs(s.containerStatuses) } : {}),
    },
  };
}

/**
 * A Pipeline as the webhook (admission.ts: declared params and workspaces, param defaults that
 * reference sidecars) and selection (its annotations) read it; its tasks are dropped.
 */
export function slimPipeline(p: KubeObject): KubeObject {
  const spec = p.spec ?? {};
  return {
    apiVersion: p.apiVersion, kind: p.kind,
    metadata: slimMeta(p.metadata, 'all'),
    spec: {
      ...(spec.params ? { params: spec.params } : {}),
      ...(spec.workspaces ? { workspaces: spec.workspaces.map((w: any) => pick(w, ['name', 'optional'])) } : {}),
    },
  };
}

/** Index of runs by the run id their objects are named by (the sweep matches objects to runs with it). */
export const RUN_ID_INDEX = 'runId';
export const runIdIndex: IndexFunc = (run) => [`${run.metadata.namespace}/${runIdentity(run).runId}`];

/**
 * Index of owned objects (and sidecar pods) by the run they belong to, under three kinds of key:
 * `uid:<ns>/<run uid>` (the run-uid label, else the PipelineRun ownerReference: ownedByRun),
 * `id:<ns>/<run id>` (the sweep groups by it) and `owner:<ns>/<run name>` (a run gone from the cache).
 */
export const RUN_INDEX = 'run';
export const runIndex: IndexFunc = (o) => {
  const ns = o.metadata.namespace ?? '';
  const keys: string[] = [];
  const labels = o.metadata.labels ?? {};
  const owners: any[] = ((o.metadata as any).ownerReferences ?? []).filter((r: any) => r?.kind === 'PipelineRun');
  const uid = labels[LABELS.runUid] ?? owners.find((r) => r.uid)?.uid;
  if (uid) keys.push(`uid:${ns}/${uid}`);
  if (labels[LABELS.runId]) keys.push(`id:${ns}/${labels[LABELS.runId]}`);
  for (const r of owners) if (r.name) keys.push(`owner:${ns}/${r.name}`);
  return keys;
};

/** Index of sidecar Deployments by their PipelineSidecar (`<ns>/<name>`): its status counts them. */
export const SIDECAR_INDEX = 'sidecar';
export const sidecarIndex: IndexFunc = (o) => {
  const sc = o.metadata.labels?.[LABELS.sidecar];
  return sc ? [`${o.metadata.namespace}/${sc}`] : [];
};
