import { LABELS, MANAGED_BY } from '../constructs/api/spec';
import { RUN_INDEX } from './cache-shapes';
import { EventRecorder, REASONS } from './events';
import type { KubeObject, ObjectCache } from './k8s/object-store';
import { RawClient, isNotFound } from './k8s/raw';
import { collectionPath, objectPath } from './k8s/resources';
import type { Logger } from './log';
import type { PipelineRun } from './pipelinerun';

/** The kinds synthesizeRun emits; the operator watches, sweeps and deletes exactly these. */
export const OWNED_KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = [
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
];

/** How long a run's clean-up stands before the caches' view of its objects is trusted again. */
const CLEANED_TTL_MS = 10_000;

/** Selects every object of every run (the webhook's own Secret carries no run-id and stays out). */
export const OWNED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY},${LABELS.runId}`;

/** Whether an object belongs to the run with this uid: by its uid label, or its ownerReference. */
export function ownedByRun(o: KubeObject, uid: string): boolean {
  const labelled = o.metadata.labels?.[LABELS.runUid];
  if (labelled !== undefined) return labelled === uid;
  return ((o.metadata as any).ownerReferences ?? []).some((r: any) => r.kind === 'PipelineRun' && r.uid === uid);
}

/**
 * Deleting a run's objects, shared by the reconciler (run done, gone, refused) and the periodic
 * sweep. Deletes go by label, kind by kind, so objects the cache has not seen yet go too.
 */
export class RunCleaner {
  constructor(
    private readonly client: RawClient,
    private readonly owned: ReadonlyMap<string, ObjectCache>,
    private readonly events: EventRecorder,
    private readonly log: Logger,
  ) {}

  /** Owned objects in `namespace` (all namespaces when undefined) matching `pred`, from the caches. */
  objects(namespace: string | undefined, pred: (o: KubeObject) => boolean): KubeObject[] {
    const out: KubeObject[] = [];
    for (const inf of this.owned.values()) for (const o of inf.list(namespace)) if (pred(o)) out.push(o);
    return out;
  }

  /** Owned objects filed under `key` in the run index (cache-shapes.ts runIndex): no scan. */
  indexed(key: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const inf of this.owned.values()) out.push(...inf.byIndex(RUN_INDEX, key));
    return out;
  }

  /** The objects of this run (by uid: a run that copied another run's id never matches its objects). */
  ofRun(run: PipelineRun): KubeObject[] {
    return this.indexed(`uid:${run.metadata.namespace}/${run.metadata.uid}`).filter((o) => ownedByRun(o, run.metadata.uid));
  }

  /**
   * Runs whose objects were deleted a moment ago (uid → when): the caches still show the objects
   * until the delete events arrive, and a reconcile in between must not delete (and announce) again.
   * A run's clean-up is final; anything left after CLEANED_TTL_MS is deleted by the next reconcile
   * or the sweep.
   */
  private readonly cleaned = new Map<string, number>();

  /** Deletes the run's objects and says why on the run. */
  async cleanup(run: PipelineRun, why: string): Promise<void> {
    const now = Date.now();
    for (const [uid, at] of this.cleaned) { if (now - at < CLEANED_TTL_MS) break; this.cleaned.delete(uid); }
    if (this.cleaned.has(run.metadata.uid)) return;
    if (this.ofRun(run).length === 0) return;
    await this.deleteBySelector(run.metadata.namespace, `${LABELS.managedBy}=${MANAGED_BY},${LABELS.runUid}=${run.metadata.uid}`);
    this.cleaned.set(run.metadata.uid, now);
    this.log.info('deleted sidecar objects', { run: `${run.metadata.namespace}/${run.metadata.name}`, why });
    await this.events.emit(run, 'Normal', REASONS.deleted, `deleted the sidecars of this run: ${why}`);
  }

  /** Deletes every object of one run uid, or (objects of a run whose uid is unknown) one run id. */
  async deleteRun(namespace: string, by: { uid?: string; runId?: string }): Promise<void> {
    const sel = by.uid ? `${LABELS.runUid}=${by.uid}` : `${LABELS.runId}=${by.runId}`;
    await this.deleteBySelector(namespace, `${LABELS.managedBy}=${MANAGED_BY},${sel}`);
  }

  /**
   * The run is not in the cache: if the server agrees it is gone, delete what it owned (GC would
   * too, eventually). Returns whether the run still exists (the cache is behind).
   */
  async runGone(namespace: string, name: string): Promise<boolean> {
    const orphans = this.indexed(`owner:${namespace}/${name}`);
    if (orphans.length === 0) return false;
    const live = await this.client.getOrUndefined(objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name, namespace } }));
    const uids = new Set<string>();
    for (const o of orphans) {
      const owner = (o.metadata as any).ownerReferences.find((r: any) => r.kind === 'PipelineRun' && r.name === name);
      if (owner.uid !== live?.metadata?.uid) uids.add(owner.uid);
    }
    for (const uid of uids) {
      await this.deleteRun(namespace, { uid });
      this.log.info('deleted objects of a run that no longer exists', { run: `${namespace}/${name}`, uid });
    }
    return !!live;
  }

  private async deleteBySelector(namespace: string, labelSelector: string): Promise<void> {
    await Promise.all(OWNED_KINDS.map((k) => this.client.delete(collectionPath(k.apiVersion, k.kind, namespace), { labelSelector, propagationPolicy: 'Background' })
      .catch((e) => { if (!isNotFound(e)) throw e; })));
  }
}
