/**
 * The operator's PipelineRun cache holds only runs that concern it: those the webhook admitted
 * (label pipeline-sidecars.dev/admitted, cluster-wide) and, for fallback mode, the un-admitted runs
 * of namespaces that hold a PipelineSidecar. A run that has nothing to do with sidecars, in a
 * namespace without PipelineSidecars, is never cached and costs the operator no request: not in
 * the webhook (it reads its caches), not in the controller. Observed from outside the caches too:
 * every request the operator's client sends (none names that namespace) and its
 * `pipeline_sidecars_cached_pipelineruns` metric.
 */
import { ANNOTATIONS, API_VERSION, KIND, LABELS } from '../../constructs/api/spec';
import { collectionPath } from '../../src/k8s/resources';
import { Operator } from '../../src/operator';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { createRun, createSidecar, deleteWebhookConfig, ensureCrd, eventually, getRun, inProcessOperator, sleep } from './helpers';

let withSidecars: string;
let without: string;
let op: Operator;
const sent: string[] = [];
const inline = { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] };
const cacheSpec = { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] };

async function cachedRunsMetric(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${op.healthPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('pipeline_sidecars_cached_pipelineruns '));
  return Number(line?.split(' ')[1] ?? NaN);
}

/** Waits until the operator sent no request for `quietMs`, and returns its request count then. */
async function quietRequests(quietMs = 1500): Promise<number> {
  let last = op.client.requests;
  await eventually('the operator to go quiet', async () => {
    await sleep(quietMs);
    const now = op.client.requests;
    const quiet = now === last;
    last = now;
    return quiet;
  }, 30_000, 0);
  return last;
}

beforeAll(async () => {
  await ensureCrd();
  withSidecars = await createTestNamespace('scope-a');
  without = await createTestNamespace('scope-b');
  op = inProcessOperator(withSidecars, [withSidecars, without], { healthPort: 0, healthBindAddress: '127.0.0.1' });
  // Every request the operator sends, as `METHOD path` (its own client, observed, not replaced).
  const request = op.client.request.bind(op.client);
  (op.client as any).request = (method: string, path: string, opts?: any) => { sent.push(`${method} ${path}`); return request(method, path, opts); };
  await op.start();
  await createSidecar(withSidecars, 'cache', cacheSpec);
  await eventually('the controller synced', async () => op.controller?.synced, 30_000);
  // A new webhook configuration takes a moment to be used: a dry-run create goes through it.
  await eventually('the webhook in use', async () => {
    const r = await rawClient().create(collectionPath('tekton.dev/v1', 'PipelineRun', withSidecars),
      { apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { generateName: 'probe-', namespace: withSidecars, annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { pipelineSpec: inline } }, { dryRun: 'All' });
    return r.metadata.annotations?.[ANNOTATIONS.runId];
  }, 15_000, 200);
});

afterAll(async () => {
  await op?.stop();
  await deleteWebhookConfig(`ps-${withSidecars}`);
});

test('a run unrelated to sidecars, in a namespace without PipelineSidecars: never cached, no request; the runs that concern us are (negative controls)', async () => {
  const before = await quietRequests();
  const sentBefore = sent.length;
  const metricBefore = await cachedRunsMetric();

  const unrelated = await createRun(without, { metadata: { name: 'unrelated' }, spec: { pipelineSpec: inline } });
  expect(unrelated.metadata.labels?.[LABELS.admitted]).toBeUndefined();
  // Tekton runs it meanwhile (status updates: watch events for any informer that would see it).
  await eventually('Tekton to act on the unrelated run', async () => (await getRun(without, 'unrelated')).status?.conditions?.length > 0, 30_000);

  // Negative control 1: a run that asks for a sidecar, created after Tekton acted on the unrelated
  // one, is admitted (labelled), cached and worked on, through the same informers, seen by the same
  // counters. Once it is, the cluster-wide watch of admitted runs has delivered a run newer than
  // Tekton's updates of the unrelated one, and the queue has worked on it: what the operator would
  // have done about the unrelated run, it would have done by now.
  const asks = await createRun(withSidecars, { metadata: { name: 'asks', annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { pipelineSpec: inline } });
  expect(asks.metadata.labels?.[LABELS.admitted]).toBe(asks.metadata.annotations[ANNOTATIONS.runId]);
  await eventually('the admitted run in the cache', async () => op.controller!.caches.runs.get(withSidecars, 'asks'), 10_000);
  await eventually('the operator to work on it', async () => sent.slice(sentBefore).filter((r) => r.includes(`/namespaces/${withSidecars}/`)).length >= 6, 15_000);

  // The unrelated run: not cached, not counted, and nothing sent about it or its namespace (the
  // PipelineSidecar status the sweep keeps may write elsewhere).
  expect(op.controller!.caches.runs.get(without, 'unrelated')).toBeUndefined();
  expect(sent.slice(sentBefore).filter((r) => r.includes(`/namespaces/${without}/`))).toEqual([]);
  expect(op.client.requests - before).toBeLessThanOrEqual(sent.length - sentBefore);
  expect(await cachedRunsMetric()).toBe(metricBefore + 1);

  // Negative control 2: the fallback path. An un-admitted run is cached where a PipelineSidecar
  // exists (it could be a fallback run), and once the other namespace gets a PipelineSidecar the
  // unrelated run there shows up too: it was there all along, only out of scope.
  await createRun(withSidecars, { metadata: { name: 'plain' }, spec: { pipelineSpec: inline } });
  await eventually('the un-admitted run of a namespace with PipelineSidecars in the cache', async () => op.controller!.caches.runs.get(withSidecars, 'plain'), 10_000);
  await rawClient().create(collectionPath(API_VERSION, KIND, without), { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'late', namespace: without }, spec: cacheSpec });
  await eventually('the unrelated run cached once its namespace holds a PipelineSidecar', async () => op.controller!.caches.runs.get(without, 'unrelated'), 15_000);
});

test('cached runs keep only the fields the reconciler reads (the transform)', async () => {
  const run = await createRun(withSidecars, {
    metadata: { name: 'slim', annotations: { [ANNOTATIONS.sidecars]: 'cache', 'example.com/big': 'x'.repeat(10_000) }, labels: { team: 'a' } },
    spec: { pipelineSpec: inline, params: [{ name: 'p', value: 'v' }] },
  });
  const cached = await eventually('the run cached', async () => op.controller!.caches.runs.get(withSidecars, 'slim'), 10_000);
  expect(cached.metadata.uid).toBe(run.metadata.uid);
  // All labels are kept (selectors match on any); Tekton may have added its own since the create.
  expect(cached.metadata.labels).toMatchObject(run.metadata.labels);
  expect(cached.metadata.annotations?.[ANNOTATIONS.sidecars]).toBe('cache');
  expect(cached.metadata.annotations?.['example.com/big']).toBeUndefined();
  expect(cached.spec.pipelineSpec).toBeUndefined();
  expect(cached.spec.params).toBeUndefined();
  expect(JSON.stringify(cached).length).toBeLessThan(JSON.stringify(run).length / 5);
});
