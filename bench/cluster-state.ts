/**
 * The cluster states the bench measures in, and the waits between phases: the finished runs a
 * cluster keeps until a pruner removes them, the baseline's namespace cleared before an operator
 * that serves every namespace starts, and "settled, then idle for a fixed time" before each timed
 * phase, so that the bare client and the operator meet the same control plane.
 */
import type { ControlPlane } from '../platform/control-plane';
import { RawClient } from '../src/k8s/raw';
import { collectionPath } from '../src/k8s/resources';
import { succeededCondition } from '../src/pipelinerun';
import { cpuSnapshot, createRetrying, sleep } from './lib';

/** Deletes a baseline namespace's runs, objects and PipelineSidecar (the operator serves every namespace and would adopt them). */
export async function clearBaseline(client: RawClient, ns: string, say: (s: string) => void): Promise<void> {
  const sel = `app.kubernetes.io/managed-by=pipeline-sidecars`;
  for (const [apiVersion, kind, labelSelector] of [
    ['tekton.dev/v1', 'PipelineRun', undefined], ['pipeline-sidecars.dev/v1alpha1', 'PipelineSidecar', undefined],
    ['apps/v1', 'Deployment', sel], ['v1', 'Service', sel], ['v1', 'Secret', sel], ['v1', 'ServiceAccount', sel], ['networking.k8s.io/v1', 'NetworkPolicy', sel],
  ] as Array<[string, string, string | undefined]>) {
    // Best effort: a control plane slowed down by thousands of runs may time a collection delete out.
    await client.delete(collectionPath(apiVersion, kind, ns), { labelSelector, propagationPolicy: 'Background' })
      .catch((e) => say(`clearing the baseline namespace: ${(e as Error).message} (continuing)`));
  }
  for (let i = 0; i < 600; i++) {
    const left = (await client.get(collectionPath('tekton.dev/v1', 'PipelineRun', ns), { limit: 1 })).items?.length ?? 0;
    if (left === 0) return;
    await sleep(100);
  }
  say('baseline runs still there after 60 s');
}

/**
 * F finished PipelineRuns in M namespaces, as a cluster keeps them until a pruner removes them.
 * Created with spec.status PipelineRunPending (Tekton never starts them: no TaskRun, no pod), then
 * marked done through the status subresource (Succeeded True and a completion time; no startTime,
 * which Tekton's validation refuses next to a pending spec), which is all that "finished" means to a
 * reader of the run. They ask for no sidecars: the common case.
 */
export async function createFinishedRuns(client: RawClient, total: number, namespaces: number, say: (s: string) => void): Promise<{ ms: number; finished: number }> {
  const t0 = Date.now();
  const nss = Array.from({ length: namespaces }, (_, i) => `finished-${String(i).padStart(2, '0')}`);
  for (const ns of nss) await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }).catch(() => undefined);
  let next = 0;
  let done = 0;
  let patchError: string | undefined;
  const spec = { tasks: [{ name: 'build', taskSpec: { steps: [{ name: 'build', image: 'docker.io/library/docker:27', script: 'docker build .' }] } }] };
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const ns = nss[i % namespaces];
      const name = `old-${String(i).padStart(5, '0')}`;
      const run = await createRetrying(client, collectionPath('tekton.dev/v1', 'PipelineRun', ns), {
        apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name, namespace: ns, labels: { app: 'finished-bench', 'tekton.dev/pipeline': 'build' } },
        spec: { status: 'PipelineRunPending', pipelineSpec: spec, params: [{ name: 'revision', value: 'x'.repeat(40) }] },
      });
      void run;
      const end = new Date(Date.now() - 300_000).toISOString();
      for (let attempt = 0; attempt < 10; attempt++) {
        try {
          await client.mergePatch(`${collectionPath('tekton.dev/v1', 'PipelineRun', ns)}/${name}/status`, {
            // No startTime: Tekton's validation refuses a started run whose spec still says pending.
            status: { completionTime: end, conditions: [{ type: 'Succeeded', status: 'True', reason: 'Succeeded', message: 'Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0', lastTransitionTime: end }] },
          });
          break;
        } catch (e) {
          if (!patchError) { patchError = (e as Error).message; say(`  marking a run finished failed (retrying): ${patchError}`); }
          await sleep(100);
        }
      }
      if (++done % 1000 === 0) say(`  ${done} finished runs`);
    }
  };
  await Promise.all(Array.from({ length: 24 }, worker));
  // Tekton's first reconcile of a pending run writes its own status over the whole status (knative
  // re-reads the run and replaces status), so some of ours are lost in that race: mend them, a few
  // rounds, once Tekton has digested the burst.
  let finished = 0;
  for (let round = 0; round < 4; round++) {
    finished = 0;
    const unfinished: Array<[string, string]> = [];
    for (const ns of nss) {
      let cont: string | undefined;
      do {
        const page = await client.get(collectionPath('tekton.dev/v1', 'PipelineRun', ns), { limit: 500, continue: cont });
        for (const r of page.items ?? []) {
          const ok = succeededCondition(r).status === 'True';
          if (ok) finished++; else unfinished.push([ns, r.metadata.name]);
        }
        cont = page.metadata?.continue || undefined;
      } while (cont);
    }
    if (unfinished.length === 0) break;
    say(`  ${unfinished.length} runs lost their finished status to Tekton's first reconcile: marking them again`);
    await sleep(5000);
    const end = new Date(Date.now() - 300_000).toISOString();
    let i = 0;
    await Promise.all(Array.from({ length: 24 }, async () => {
      for (;;) {
        const item = unfinished[i++];
        if (!item) return;
        await client.mergePatch(`${collectionPath('tekton.dev/v1', 'PipelineRun', item[0])}/${item[1]}/status`, {
          status: { completionTime: end, conditions: [{ type: 'Succeeded', status: 'True', reason: 'Succeeded', message: 'Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0', lastTransitionTime: end }] },
        }).catch(() => undefined);
      }
    }));
  }
  return { ms: Date.now() - t0, finished };
}

/** Waits until the control plane's processes use less than `maxCores` over 3 s (Tekton done digesting a burst); returns how long that took. */
export async function settle(cp: ControlPlane, say: (s: string) => void, maxCores = 0.3, timeoutMs = 300_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const a = cpuSnapshot(cp.state.pids);
    await sleep(3000);
    const b = cpuSnapshot(cp.state.pids);
    const used = Object.keys(b).filter((k) => !k.startsWith('(')).reduce((n, k) => n + (b[k] - (a[k] ?? 0)), 0) / 3;
    if (used < maxCores) return Date.now() - t0;
  }
  say('control plane still busy after the settle timeout');
  return Date.now() - t0;
}

export interface QuietWait {
  /** Until the control plane was below the settle threshold. */
  settleMs: number;
  /** The fixed idle wait after it. */
  idleMs: number;
  /** Cores the control plane's processes used during the idle wait, by process (what stays busy). */
  idleCores: Record<string, number>;
}

/**
 * settle, then a fixed idle wait, the same before every timed phase; the control plane's CPU during
 * the idle wait says whether anything keeps working after a burst (a state that stays slower).
 */
export async function quiet(cp: ControlPlane, idleMs: number, say: (s: string) => void): Promise<QuietWait> {
  const settleMs = await settle(cp, say);
  const a = cpuSnapshot(cp.state.pids);
  await sleep(idleMs);
  const b = cpuSnapshot(cp.state.pids);
  const idleCores = Object.fromEntries(Object.keys(b).filter((k) => !k.startsWith('(')).map((k) => [k, (b[k] - (a[k] ?? 0)) / (idleMs / 1000)]));
  return { settleMs, idleMs, idleCores };
}

