import { ANNOTATIONS } from '../../constructs/api/spec';
import { Informer } from '../../src/k8s/informer';
import { collectionPath, objectPath } from '../../src/k8s/resources';
import { createTestNamespace, rawClient, testKubeConfig } from '../../platform/cluster';
import { NEVER_READY_IMAGE } from '../../platform/control-plane';
import { behaviourLabels, releaseTasks, taskRunsOf, waitRunDone } from '../../platform/runs';
import { OperatorProcess } from '../../platform/operator-process';
import { createRun, createSidecar, deleteWebhookConfig, ensureCrd, eventsFor, eventually, getRun, managedObjects, objectsOfRun, sleep } from './helpers';

let ns: string;
const procs: OperatorProcess[] = [];

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('restart');
});

afterAll(async () => {
  for (const p of procs) await p.kill();
  await deleteWebhookConfig(`ps-${ns}`);
});

const inline = { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] };

function snapshot(objs: Array<Record<string, any>>): Record<string, { uid: string; data?: unknown }> {
  return Object.fromEntries(objs.map((o) => [`${o.kind}/${o.metadata.name}`, { uid: o.metadata.uid, data: o.data }]));
}

test('SIGKILL after apply and before unpend: the restarted operator starts the run exactly once, nothing duplicated or re-minted', async () => {
  // A sidecar whose pod stays not-Ready (kwok) until the test swaps its image: the window to kill in.
  await createSidecar(ns, 'db', {
    kind: 'Postgres', postgres: { image: NEVER_READY_IMAGE }, lifecycle: { startupTimeout: '120s' },
  });
  const first = new OperatorProcess({ name: `${ns}-1`, namespace: ns, startupTimeout: '60s', sweepInterval: '2s', logLevel: 'debug' });
  procs.push(first);
  await first.start();

  // Record every spec.status the run ever has, from a watch of our own.
  const seen: Array<string | undefined> = [];
  const watcher = new Informer(testKubeConfig(), rawClient(), { name: 'test-runs', path: collectionPath('tekton.dev/v1', 'PipelineRun', ns) });
  watcher.on((_t, r) => { if (r.metadata.name === runName && seen[seen.length - 1] !== (r.spec?.status ?? 'started')) seen.push(r.spec?.status ?? 'started'); });
  let runName = '';
  // Its task holds (kwok keeps the pod running) until the checks below are done.
  const run = await createRun(ns, { metadata: { generateName: 'crash-', labels: behaviourLabels({ hold: true }), annotations: { [ANNOTATIONS.sidecars]: 'db' } }, spec: { pipelineSpec: inline } });
  runName = run.metadata.name;
  await watcher.start();
  const runId = run.metadata.annotations[ANNOTATIONS.runId];

  await eventually('all objects applied', async () => (await eventsFor(ns, runName)).some((e) => e.reason === 'SidecarsApplied'), 20_000);
  const pod = await eventually('the sidecar pod', async () => (await rawClient().get(collectionPath('v1', 'Pod', ns), { labelSelector: `pipeline-sidecars.dev/run-id=${runId}` })).items[0], 20_000);
  expect(pod.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')).not.toBe(true);
  const before = snapshot(await managedObjects(ns));
  expect(Object.keys(before).sort()).toEqual((await objectsOfRun(ns, runId)));

  expect(await first.kill()).toBe(null); // killed by the signal, no exit code

  // While no operator runs, the sidecar becomes Ready: the run must stay pending.
  await rawClient().jsonPatch(objectPath({ apiVersion: 'v1', kind: 'Pod', metadata: pod.metadata }), [{ op: 'replace', path: '/spec/containers/0/image', value: 'postgres:16' }]);
  await eventually('the sidecar Deployment to become available', async () => {
    const d = await rawClient().get(`${collectionPath('apps/v1', 'Deployment', ns)}/db-${runId}`);
    return (d.status?.availableReplicas ?? 0) >= 1;
  }, 30_000);
  await sleep(500);
  expect((await getRun(ns, runName)).spec.status).toBe('PipelineRunPending');

  const second = new OperatorProcess({ name: `${ns}-2`, namespace: ns, startupTimeout: '60s', sweepInterval: '2s', logLevel: 'debug' });
  procs.push(second);
  const tRestart = Date.now();
  await second.start();
  const started = await eventually('the run to be started after restart', async () => {
    const r = await getRun(ns, runName);
    return r.spec.status === undefined ? r : undefined;
  }, 30_000, 50);
  process.stderr.write(`[restart] run started ${Date.now() - tRestart} ms after the restarted operator was launched\n`);
  expect(started.metadata.annotations[ANNOTATIONS.started]).toBeDefined();
  await eventually('Tekton to run it', async () => (await taskRunsOf(ns, runName)).length > 0, 20_000);
  await sleep(1000); // give a wrongly double-acting operator the chance to show it

  // Same objects (same uids: nothing deleted and recreated), same credentials (never re-minted), nothing extra.
  const after = snapshot(await managedObjects(ns));
  expect(after).toEqual(before);
  expect(seen).toEqual(['PipelineRunPending', 'started']);
  const ready = (await eventually('SidecarsReady', async () => {
    const evs = (await eventsFor(ns, runName)).filter((e) => e.reason === 'SidecarsReady');
    return evs.length ? evs : undefined;
  }, 5_000));
  expect(ready).toHaveLength(1);
  expect(ready[0].count).toBe(1);
  await watcher.stop();
  await releaseTasks(ns, runName);
  await waitRunDone(ns, runName);
  await eventually('cleanup', async () => (await objectsOfRun(ns, runId)).length === 0, 5_000);
  // `second` stays up for the next test (a process start is the slow part of these tests).
});

test('a run deleted while the operator is down leaves no objects after the restart; SIGTERM shuts down cleanly', async () => {
  await createSidecar(ns, 'cache', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
  const third = procs[procs.length - 1]; // the restarted operator of the previous test, still running
  const run = await createRun(ns, { metadata: { generateName: 'gone-', annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { pipelineSpec: inline } });
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  await eventually('objects applied', async () => (await objectsOfRun(ns, runId)).length === 4, 20_000);
  await third.kill();

  // Orphan the objects on purpose, so garbage collection cannot be what removes them: drop their
  // ownerReferences (what `kubectl delete --cascade=orphan` ends with), then delete the run.
  for (const o of await managedObjects(ns)) {
    if (o.metadata.labels?.['pipeline-sidecars.dev/run-id'] !== runId) continue;
    await rawClient().mergePatch(objectPath(o as any), { metadata: { ownerReferences: null } });
  }
  await rawClient().delete(objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: run.metadata }));
  await eventually('the run to be gone', async () => (await rawClient().getOrUndefined(objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: run.metadata }))) === undefined, 10_000);
  await sleep(1000); // a garbage collector, were it to act on these, would have by now
  expect((await objectsOfRun(ns, runId)).length).toBe(4);

  const fourth = new OperatorProcess({ name: `${ns}-3`, namespace: ns, startupTimeout: '60s', sweepInterval: '2s', logLevel: 'debug' });
  procs.push(fourth);
  await fourth.start();
  const t = Date.now();
  await eventually('objects of the deleted run removed', async () => (await objectsOfRun(ns, runId)).length === 0, 15_000, 50);
  process.stderr.write(`[restart] orphans removed ${Date.now() - t} ms after the restarted controller started\n`);

  // Graceful stop: exit code 0.
  expect(await fourth.stop()).toBe(0);
});
