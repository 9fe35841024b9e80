import { LABELS } from '../constructs/api/spec';
import { RUN_ID_INDEX } from './cache-shapes';
import type { KubeObject, ObjectCache } from './k8s/object-store';
import type { RawClient } from './k8s/raw';
import { collectionPath } from './k8s/resources';
import type { Logger } from './log';
import { isDone, runIdentity } from './pipelinerun';

/** What the sweep reads and what it may do. */
export interface SweepSources {
  readonly client: RawClient;
  /** The runs cache, indexed by run id. */
  readonly runs: ObjectCache;
  /** Every object the operator owns, from its caches. */
  readonly owned: () => KubeObject[];
  /** Deletes every object of one run id. */
  readonly deleteByRunId: (namespace: string, runId: string) => Promise<void>;
  readonly log: Logger;
}

/**
 * Deletes objects whose run is gone or done: covers a missed event, a restart while a run was
 * deleted or finished, and GC not running. Candidate runs are confirmed on the server first.
 * Returns how many runs' objects it deleted.
 */
export async function sweepFinishedRuns(s: SweepSources): Promise<number> {
  // Group by run id, not by owner: objects orphaned on purpose (delete --cascade=orphan) have lost
  // their ownerReferences, and the run-name label may be truncated; the run id always identifies the
  // run. One pass over the owned objects, then one index lookup per group: linear in what we own.
  const groups = new Map<string, RunGroup>();
  for (const o of s.owned()) {
    const runId = o.metadata.labels?.[LABELS.runId];
    const ns = o.metadata.namespace;
    if (!runId || !ns) continue;
    const g = groups.get(`${ns}/${runId}`) ?? { ns, runId };
    g.owner ??= (o.metadata as any).ownerReferences?.find((r: any) => r.kind === 'PipelineRun')?.name;
    groups.set(`${ns}/${runId}`, g);
  }
  let deleted = 0;
  for (const [key, g] of groups) {
    const cached = s.runs.byIndex(RUN_ID_INDEX, key)[0];
    if (cached && !isDone(cached)) continue;
    // Confirm on the server: the cache may not have seen a run created a moment ago. Only this
    // run is read (by the webhook's label, or by its name from an ownerReference), never a
    // namespace's whole list of runs.
    const live = await liveRunOf(s.client, g);
    if (live && !isDone(live)) continue;
    await s.deleteByRunId(g.ns, g.runId);
    s.log.info('sweep deleted objects of a finished or missing run', { namespace: g.ns, runId: g.runId, run: live?.metadata?.name ?? '(gone)' });
    deleted++;
  }
  return deleted;
}

interface RunGroup { ns: string; runId: string; owner?: string }

/** The run named by a run id, read from the server (undefined: none exists). */
async function liveRunOf(client: RawClient, g: RunGroup): Promise<Record<string, any> | undefined> {
  const path = collectionPath('tekton.dev/v1', 'PipelineRun', g.ns);
  const admitted = (await client.get(path, { labelSelector: `${LABELS.admitted}=${g.runId}` })).items ?? [];
  const byLabel = admitted.find((r: any) => runIdentity(r).runId === g.runId);
  if (byLabel) return byLabel;
  if (!g.owner) {
    // No ownerReference left (orphaned on purpose, or a fallback run's objects stripped by hand):
    // only the namespace's list can tell. Rare; paged like an informer's list.
    let cont: string | undefined;
    do {
      const page = await client.get(path, { limit: 500, continue: cont });
      const hit = (page.items ?? []).find((r: any) => runIdentity(r).runId === g.runId);
      if (hit) return hit;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return undefined;
  }
  const byName = await client.getOrUndefined(`${path}/${encodeURIComponent(g.owner)}`);
  return byName && runIdentity(byName).runId === g.runId ? byName : undefined;
}
