import { ANNOTATIONS } from '../../constructs/api/spec';
import { Operator } from '../../src/operator';
import { RELEASE_ANNOTATION, RELEASE_WHEN_READY } from '../../src/pipelinerun';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { behaviourLabels, releaseTasks, taskRunsOf, waitRunDone } from '../../platform/runs';
import { createRun, createSidecar, ensureCrd, eventsFor, eventually, getRun, inProcessOperator, managedObjects, reconciledNow } from './helpers';

let ns: string;
let op: Operator;

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('fallback');
  op = inProcessOperator(ns, [ns], { webhook: false });
  await op.start();
  await createSidecar(ns, 'cache', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
});

afterAll(async () => {
  await op?.stop();
});

const inline = { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'redis:7', script: 'redis-cli -h $(context.pipelineRun.name)-cache ping' }] } }] };

const release = { [RELEASE_ANNOTATION]: RELEASE_WHEN_READY };

test('only-unpend-ours: without the webhook, a pending run whose author allowed release gets <run>-<sidecar> objects and is started once they are Ready', async () => {
  const run = await createRun(ns, { metadata: { name: 'nightly-42', annotations: { [ANNOTATIONS.sidecars]: 'cache', ...release } }, spec: { status: 'PipelineRunPending', pipelineSpec: inline } });
  expect(run.metadata.annotations[ANNOTATIONS.runId]).toBeUndefined();
  const started = await eventually('the run to start', async () => { const r = await getRun(ns, 'nightly-42'); return r.spec.status === undefined ? r : undefined; }, 20_000);
  expect(started.metadata.annotations[ANNOTATIONS.started]).toBeDefined();
  const names = (await managedObjects(ns)).map((o) => `${o.kind}/${o.metadata.name}`).sort();
  expect(names).toEqual(['Deployment/nightly-42-cache', 'NetworkPolicy/nightly-42-cache-isolation', 'Service/nightly-42-cache', 'ServiceAccount/nightly-42-cache']);
  await waitRunDone(ns, 'nightly-42');
  await eventually('cleanup', async () => (await managedObjects(ns)).length === 0, 5_000);
});

test('without the webhook: a run name too long for <run>-<sidecar> is refused with an Event that says how to fix it', async () => {
  const name = `a-pipeline-run-with-a-name-that-is-much-too-long-for-hosts-${'x'.repeat(4)}`;
  await createRun(ns, { metadata: { name, annotations: { [ANNOTATIONS.sidecars]: 'cache', ...release } }, spec: { status: 'PipelineRunPending', pipelineSpec: inline } });
  const ev = await eventually('a refusal event', async () => (await eventsFor(ns, name)).find((e) => e.reason === 'SidecarRefused'), 10_000);
  expect(ev.message).toContain('over the 63-character limit');
  expect(ev.message).toContain('shorten the PipelineRun name');
  // The Event is written just before the cancel patch it announces.
  await eventually('the run to be cancelled', async () => (await getRun(ns, name)).spec.status === 'Cancelled', 5_000);
});

test('a selected run admitted without the webhook and not pending: Warning Event, sidecars still provided', async () => {
  await createSidecar(ns, 'sel', { kind: 'Container', selector: { matchLabels: { team: 'web' } }, template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
  await createRun(ns, { metadata: { name: 'ungated', labels: { team: 'web' } }, spec: { pipelineSpec: inline } });
  const ev = await eventually('a SidecarsNotGated event', async () => (await eventsFor(ns, 'ungated')).find((e) => e.reason === 'SidecarsNotGated'), 10_000);
  expect(ev.type).toBe('Warning');
  expect(ev.message).toContain('admitted without the pipeline-sidecars webhook');
  await eventually('its sidecar', async () => (await managedObjects(ns)).some((o) => o.kind === 'Deployment' && o.metadata.name === 'ungated-sel'), 10_000);
});

test('only-unpend-ours: without the webhook, a run pended by someone else gets its sidecars, is never started by the operator, and keeps them while its owner runs it', async () => {
  // Pended by, say, Pipelines-as-Code: no release annotation. Its task holds once started.
  await createRun(ns, { metadata: { name: 'queued-7', labels: behaviourLabels({ hold: true }), annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { status: 'PipelineRunPending', pipelineSpec: inline } });
  await eventually('its sidecar Deployment Ready', async () => (await managedObjects(ns)).some((o) => o.kind === 'Deployment' && o.metadata.name === 'queued-7-cache' && o.status?.readyReplicas === 1), 20_000);
  // Negative control for "never": once the operator's cache has the Deployment Ready (the moment it
  // starts a run it may release) and it has reconciled the run since, it is still pending, with no
  // start annotation.
  await eventually('the operator to see the sidecar Ready', async () => op.controller?.caches.owned.get('apps/v1/Deployment')?.get(ns, 'queued-7-cache')?.status?.readyReplicas === 1, 10_000);
  await reconciledNow(op, ns, 'queued-7');
  const still = await getRun(ns, 'queued-7');
  expect(still.spec.status).toBe('PipelineRunPending');
  expect(still.metadata.annotations[ANNOTATIONS.started]).toBeUndefined();
  expect(await taskRunsOf(ns, 'queued-7')).toHaveLength(0);
  // Its owner releases it; Tekton starts it (status.startTime) and its task runs with the sidecar there.
  await rawClient().jsonPatch(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/queued-7`, [{ op: 'remove', path: '/spec/status' }]);
  await eventually('its task to run', async () => (await taskRunsOf(ns, 'queued-7')).length === 1, 20_000);
  await eventually('Tekton to record that it started the run', async () => (await getRun(ns, 'queued-7')).status?.startTime, 10_000);
  expect((await managedObjects(ns)).some((o) => o.kind === 'Deployment' && o.metadata.name === 'queued-7-cache')).toBe(true);
  await eventually('the held pod', async () => (await releaseTasks(ns, 'queued-7')) === 1, 20_000);
  await waitRunDone(ns, 'queued-7');
  await eventually('cleanup', async () => !(await managedObjects(ns)).some((o) => o.metadata.name.startsWith('queued-7-')), 5_000);
});
