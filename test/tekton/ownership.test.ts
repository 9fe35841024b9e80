import { ANNOTATIONS } from '../../constructs/api/spec';
import { Operator } from '../../src/operator';
import { rawClient } from '../../platform/cluster';
import { succeededCondition } from '../../src/pipelinerun';
import { behaviourLabels, inlineTask, readRun, releaseTasks, taskPodsOf, taskRunsOf, waitRunDone } from '../../platform/runs';
import {
  createRun, createSidecar, deleteWebhookConfig, ensureCrd, eventsFor, eventually, inProcessOperator, objectsOfRun, reconciledNow,
} from '../operator/helpers';
import { createTestNamespace } from '../../platform/cluster';

/**
 * On the real Tekton: the operator releases only runs it pended itself; "has the run
 * started?" is Tekton's status.startTime; and the start-up timeout counts from when the cluster first
 * recorded the sidecar objects, so an operator outage does not cancel the runs created meanwhile.
 */

let ns: string;
let op: Operator;
const lease = 'ps-ownership-leader';

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('owner');
  op = inProcessOperator(ns, [ns], { leaderElection: { leaseName: lease, leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 300 } });
  await op.start();
  await createSidecar(ns, 'cache', {
    kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }],
    lifecycle: { startupTimeout: '3s' },
  });
}, 120_000);

afterAll(async () => {
  await op?.stop();
  await deleteWebhookConfig(`ps-${ns}`);
});

const runPath = (name: string) => `/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`;

test('only-unpend-ours (webhook mode): a run that arrives already pending gets its sidecars and run id, is never started by the operator, and keeps its sidecars through its finally task after its owner releases and stops it', async () => {
  const created = await createRun(ns, {
    metadata: { generateName: 'pac-', labels: behaviourLabels({ hold: true }), annotations: { [ANNOTATIONS.sidecars]: 'cache' } },
    spec: { status: 'PipelineRunPending', pipelineSpec: { tasks: [inlineTask('work')], finally: [inlineTask('report')] } },
  });
  const name = created.metadata.name;
  const runId = created.metadata.annotations[ANNOTATIONS.runId];
  expect(runId).toBeDefined();
  expect(created.metadata.annotations[ANNOTATIONS.gated]).toBeUndefined();
  await eventually('its sidecar Ready', async () => (await rawClient().get(`/apis/apps/v1/namespaces/${ns}/deployments/cache-${runId}`)).status?.readyReplicas === 1, 20_000);
  // Negative control for "never": the operator's cache has the Deployment Ready (the moment it starts
  // a run it gated), and it has reconciled the run since.
  await eventually('the operator to see the sidecar Ready', async () => op.controller?.caches.owned.get('apps/v1/Deployment')?.get(ns, `cache-${runId}`)?.status?.readyReplicas === 1, 10_000);
  await reconciledNow(op, ns, name);
  const still = await readRun(ns, name);
  expect(still.spec.status).toBe('PipelineRunPending');
  expect(still.metadata.annotations[ANNOTATIONS.started]).toBeUndefined();
  expect(await taskRunsOf(ns, name)).toHaveLength(0);

  // The owner releases it, then stops it gracefully while its task runs: Tekton's startTime says it
  // started (the operator never did), so the sidecars stay for the finally task.
  await rawClient().jsonPatch(runPath(name), [{ op: 'remove', path: '/spec/status' }]);
  await eventually('its task to run', async () => (await taskPodsOf(ns, name)).some((p) => p.status?.phase === 'Running'), 20_000);
  await rawClient().mergePatch(runPath(name), { spec: { status: 'CancelledRunFinally' } });
  await eventually('the finally task to run', async () => (await taskPodsOf(ns, name)).some((p) => p.metadata.labels['tekton.dev/pipelineTask'] === 'report' && p.status?.phase === 'Running'), 20_000);
  await reconciledNow(op, ns, name);
  expect((await objectsOfRun(ns, runId)).length).toBeGreaterThan(0);
  await releaseTasks(ns, name);
  expect(succeededCondition(await waitRunDone(ns, name)).status).toBe('False');
  await eventually('its sidecars to go', async () => (await objectsOfRun(ns, runId)).length === 0, 5_000);
});

test('an operator outage longer than startupTimeout does not cancel the runs created meanwhile: the timeout counts from the first apply', async () => {
  // The controller is out: another holder has the Lease (the webhook, on every replica, still gates).
  const now = new Date().toISOString().replace(/\.(\d{3})\d*Z$/, '.$1000Z');
  await rawClient().apply(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${lease}`, {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: lease, namespace: ns },
    spec: { holderIdentity: 'a-replica-that-crashed', leaseDurationSeconds: 3600, acquireTime: now, renewTime: now },
  }, 'test', { force: true });
  await eventually('our replica to lose the Lease and stop its controller', async () => !op.isLeader && op.controller === undefined, 15_000, 50);
  const run = await createRun(ns, { metadata: { generateName: 'outage-', annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { pipelineSpec: { tasks: [inlineTask('t')] } } });
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  expect(run.spec.status).toBe('PipelineRunPending');
  // The outage itself: it must outlast the 3 s start-up timeout (creationTimestamp has second
  // precision, hence the second on top). Nobody reconciles meanwhile: no controller runs.
  await eventually('the outage to outlast the start-up timeout', async () => Date.now() - Date.parse(run.metadata.creationTimestamp) > 3000 + 1000, 10_000, 100);
  expect({ leader: op.isLeader, controller: op.controller }).toEqual({ leader: false, controller: undefined });
  expect(await objectsOfRun(ns, runId)).toEqual([]);
  // The outage ends: the Lease is free again, our replica leads, provisions, and starts the run.
  await rawClient().delete(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${lease}`);
  const done = await waitRunDone(ns, run.metadata.name, 60_000);
  expect(succeededCondition(done)).toMatchObject({ status: 'True' });
  expect((await eventsFor(ns, run.metadata.name)).map((e) => e.reason)).not.toContain('SidecarStartupFailed');
});
