/**
 * The webhook reads Pipelines and PipelineSidecars from its informers, not from the API server.
 * A cache that is behind (a Pipeline or PipelineSidecar created a moment before the run) must not
 * change what a run gets: a miss is read from the server. To make "behind" certain rather than a
 * race, the test stops the operator's shared informer (its cache stays synced but stops following
 * the cluster), then creates the object and the run.
 */
import { ANNOTATIONS, API_VERSION, KIND } from '../../constructs/api/spec';
import { defaultKinds } from '../../constructs/kinds';
import { admitPipelineRun } from '../../src/admission';
import { collectionPath } from '../../src/k8s/resources';
import { Operator } from '../../src/operator';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { createPipeline, createRun, createSidecar, deleteWebhookConfig, ensureCrd, eventually, inProcessOperator } from './helpers';

let ns: string;
let op: Operator;
const exposing = (param: string) => ({
  kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }],
  expose: { params: [{ name: param, value: '$(host):6379' }] },
});
const taskUsing = (param: string) => ({ name: 't', params: [{ name: 'h', value: `$(params.${param})` }], taskSpec: { params: [{ name: 'h' }], steps: [{ name: 's', image: 'busybox', script: 'true' }] } });
const task = taskUsing('cache-host');
const params = (r: any) => Object.fromEntries((r.spec.params ?? []).map((p: any) => [p.name, p.value]));

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('wh-miss');
  op = inProcessOperator(ns, [ns]);
  await op.start();
  await createSidecar(ns, 'cache', exposing('cache-host'));
  await createPipeline(ns, { metadata: { name: 'known', annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { params: [{ name: 'cache-host', type: 'string' }], tasks: [task] } });
  await eventually('the shared caches to hold them', async () => op.shared.pipelines.get(ns, 'known') && op.shared.sidecars.get(ns, 'cache'), 15_000);
  await eventually('the webhook in use', async () => {
    const r = await rawClient().create(collectionPath('tekton.dev/v1', 'PipelineRun', ns),
      { apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { generateName: 'probe-', namespace: ns }, spec: { pipelineRef: { name: 'known' } } }, { dryRun: 'All' });
    return r.metadata.annotations?.[ANNOTATIONS.runId];
  }, 15_000, 200);
});

afterAll(async () => {
  await op?.stop();
  await deleteWebhookConfig(`ps-${ns}`);
});

test('a cached Pipeline and PipelineSidecar: admitted with no read from the API server', async () => {
  const reads = op.admissionLiveReads;
  const r = await createRun(ns, { metadata: { generateName: 'hit-' }, spec: { pipelineRef: { name: 'known' } } });
  expect(r.metadata.annotations[ANNOTATIONS.sidecars]).toBe('cache');
  expect(params(r)['cache-host']).toMatch(/^cache-[a-z0-9]+\..*:6379$/);
  expect(op.admissionLiveReads - reads).toBe(0);
});

test('a Pipeline created a moment before the run (not cached yet) still binds the run\'s sidecars: the miss is read from the server', async () => {
  await op.shared.pipelines.stop(); // from here on the Pipeline cache is behind
  const reads = op.admissionLiveReads;
  await createPipeline(ns, { metadata: { name: 'fresh', annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { params: [{ name: 'cache-host', type: 'string' }], tasks: [task] } });
  const r = await createRun(ns, { metadata: { generateName: 'miss-' }, spec: { pipelineRef: { name: 'fresh' } } });
  expect(op.shared.pipelines.get(ns, 'fresh')).toBeUndefined(); // it really was a miss
  expect(op.admissionLiveReads - reads).toBe(1);
  expect(r.metadata.annotations[ANNOTATIONS.sidecars]).toBe('cache');
  expect(r.metadata.annotations[ANNOTATIONS.runId]).toBeDefined();
  expect(r.spec.status).toBe('PipelineRunPending');
  expect(params(r)['cache-host']).toMatch(/^cache-[a-z0-9]+\..*:6379$/);

  // Negative control: the same admission without the Pipeline (what trusting the miss would give)
  // binds nothing, so the checks above could not pass by accident.
  const blind = admitPipelineRun({ run: { metadata: { name: 'x' }, spec: { pipelineRef: { name: 'fresh' } } }, namespace: ns, sidecars: [op.shared.sidecars.get(ns, 'cache') as any], kinds: defaultKinds() });
  expect(blind.allowed && blind.sidecars).toEqual([]);
});

test('a PipelineSidecar created a moment before the run (not cached yet): the run is admitted with it, not refused', async () => {
  await op.shared.sidecars.stop();
  const reads = op.admissionLiveReads;
  await rawClient().create(collectionPath(API_VERSION, KIND, ns), { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'late', namespace: ns }, spec: exposing('late-host') });
  const r = await createRun(ns, { metadata: { generateName: 'late-', annotations: { [ANNOTATIONS.sidecars]: 'late' } }, spec: { pipelineSpec: { params: [{ name: 'late-host', type: 'string' }], tasks: [taskUsing('late-host')] } } });
  expect(op.shared.sidecars.get(ns, 'late')).toBeUndefined();
  expect(op.admissionLiveReads - reads).toBeGreaterThanOrEqual(1);
  expect(r.metadata.annotations[ANNOTATIONS.sidecars]).toBe('late');
  expect(params(r)['late-host']).toMatch(/^late-[a-z0-9]+\..*:6379$/);

  // Negative control: a name that exists nowhere is still refused (after the server agreed).
  await expect(createRun(ns, { metadata: { generateName: 'nope-', annotations: { [ANNOTATIONS.sidecars]: 'nope' } }, spec: { pipelineSpec: { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] } } }))
    .rejects.toThrow(/"nope" that does not exist/);
});
