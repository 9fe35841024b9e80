import { ANNOTATIONS } from '../../constructs/api/spec';
import { NEVER_READY_IMAGE } from '../../platform/control-plane';
import { rawClient } from '../../platform/cluster';
import { succeededCondition } from '../../src/pipelinerun';
import { inlineTask, readRun, releaseTasks, taskPodsOf, taskRunsOf, waitRunDone } from '../../platform/runs';
import {
  createRun, createSidecar, eventually, objectsOfRun, reconciledNow, ServedOperator, sleep, startServedOperator, stopServedOperator,
} from '../operator/helpers';

/**
 * What the real Tekton does to a run (finally tasks, the three ways to stop it,
 * timeouts, failing tasks, deletion) and that the run's sidecars are there exactly as long as some
 * task of it may still need them.
 */

let fx: ServedOperator;
let ns: string;

beforeAll(async () => {
  fx = await startServedOperator('life');
  ({ ns } = fx);
  await createSidecar(ns, 'cache', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
  // Never Ready on kwok: its runs stay gated (the start-up timeout is far away).
  await createSidecar(ns, 'slow', {
    kind: 'Container', template: { containers: [{ name: 'web', image: NEVER_READY_IMAGE, readinessProbe: { httpGet: { path: '/', port: 8080 } } }] },
    ports: [{ name: 'http', port: 8080 }], lifecycle: { startupTimeout: '10m' },
  });
}, 120_000);

afterAll(() => stopServedOperator(fx));

const runPath = (name: string) => `/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`;

async function create(prefix: string, sidecar: string, pipelineSpec: Record<string, any>, extra: Record<string, any> = {}): Promise<{ name: string; runId: string }> {
  const run = await createRun(ns, { metadata: { generateName: `${prefix}-`, annotations: { [ANNOTATIONS.sidecars]: sidecar } }, spec: { pipelineSpec, ...extra } });
  return { name: run.metadata.name, runId: run.metadata.annotations[ANNOTATIONS.runId] };
}

const hasSidecars = async (runId: string) => (await objectsOfRun(ns, runId)).length > 0;
const goneWithin = (runId: string, ms = 5_000) => eventually(`the sidecars of ${runId} to go`, async () => !(await hasSidecars(runId)), ms, 25);

/** Waits until the named task of the run has a (held) pod. */
async function taskRunning(name: string, task: string): Promise<void> {
  await eventually(`task ${task} of ${name} to run`, async () => (await taskPodsOf(ns, name)).some((p) => p.metadata.labels['tekton.dev/pipelineTask'] === task && p.status?.phase === 'Running'), 30_000);
}

test('finally tasks keep their sidecars until they are done', async () => {
  const r = await create('fin', 'cache', { tasks: [inlineTask('build')], finally: [inlineTask('report', { hold: true })] });
  await taskRunning(r.name, 'report');
  // build is done, the run is not: the finally task may still use the sidecar.
  expect(succeededCondition(await readRun(ns, r.name)).status).toBe('Unknown');
  await reconciledNow(fx.op, ns, r.name);
  expect(await hasSidecars(r.runId)).toBe(true);
  await releaseTasks(ns, r.name);
  expect(succeededCondition(await waitRunDone(ns, r.name))).toMatchObject({ status: 'True' });
  await goneWithin(r.runId);
});

describe('stopping a running run', () => {
  const spec = { tasks: [inlineTask('work', { hold: true })], finally: [inlineTask('cleanup', { hold: true })] };

  test('Cancelled: Tekton cancels its TaskRuns, no finally task runs, the sidecars go when it is done', async () => {
    const r = await create('cxl', 'cache', spec);
    await taskRunning(r.name, 'work');
    await rawClient().mergePatch(runPath(r.name), { spec: { status: 'Cancelled' } });
    const done = await waitRunDone(ns, r.name);
    expect(succeededCondition(done)).toMatchObject({ status: 'False', reason: 'Cancelled' });
    expect((await taskRunsOf(ns, r.name)).map((t) => t.metadata.labels['tekton.dev/pipelineTask'])).toEqual(['work']);
    await goneWithin(r.runId);
  });

  test('CancelledRunFinally: the finally task runs with the sidecars still there, then they go', async () => {
    const r = await create('crf', 'cache', spec);
    await taskRunning(r.name, 'work');
    await rawClient().mergePatch(runPath(r.name), { spec: { status: 'CancelledRunFinally' } });
    await taskRunning(r.name, 'cleanup');
    expect(succeededCondition(await readRun(ns, r.name)).reason).toBe('CancelledRunningFinally');
    await reconciledNow(fx.op, ns, r.name);
    expect(await hasSidecars(r.runId)).toBe(true);
    await releaseTasks(ns, r.name);
    expect(succeededCondition(await waitRunDone(ns, r.name))).toMatchObject({ status: 'False', reason: 'Cancelled' });
    await goneWithin(r.runId);
  });

  test('StoppedRunFinally: the running task finishes, then the finally task, all with the sidecars there', async () => {
    const r = await create('srf', 'cache', spec);
    await taskRunning(r.name, 'work');
    await rawClient().mergePatch(runPath(r.name), { spec: { status: 'StoppedRunFinally' } });
    await eventually('StoppedRunningFinally', async () => succeededCondition(await readRun(ns, r.name)).reason === 'StoppedRunningFinally', 20_000);
    await reconciledNow(fx.op, ns, r.name);
    expect(await hasSidecars(r.runId)).toBe(true);
    expect(await releaseTasks(ns, r.name)).toBe(1); // work ends by itself
    await taskRunning(r.name, 'cleanup');
    expect(await hasSidecars(r.runId)).toBe(true);
    await releaseTasks(ns, r.name);
    const done = await waitRunDone(ns, r.name);
    expect(succeededCondition(done).status).toBe('False');
    await goneWithin(r.runId);
  });
});

describe('stopping a gated run (its sidecar never became Ready)', () => {
  const spec = { tasks: [inlineTask('work')], finally: [inlineTask('cleanup', { hold: true })] };
  const stop = async (name: string, to: string) => rawClient().jsonPatch(runPath(name), [{ op: 'test', path: '/spec/status', value: 'PipelineRunPending' }, { op: 'replace', path: '/spec/status', value: to }]);

  test('Cancelled while gated: no task ever runs, the sidecars go at once', async () => {
    const r = await create('gcx', 'slow', spec);
    await eventually('its sidecar objects', () => hasSidecars(r.runId), 20_000);
    await stop(r.name, 'Cancelled');
    await goneWithin(r.runId);
    expect(succeededCondition(await waitRunDone(ns, r.name))).toMatchObject({ status: 'False', reason: 'Cancelled' });
    expect(await taskRunsOf(ns, r.name)).toHaveLength(0);
  });

  for (const to of ['CancelledRunFinally', 'StoppedRunFinally']) {
    test(`${to} while gated: Tekton starts the run for its finally task, and the sidecars stay until it is done`, async () => {
      const r = await create(to === 'StoppedRunFinally' ? 'gsr' : 'gcr', 'slow', spec);
      await eventually('its sidecar objects', () => hasSidecars(r.runId), 20_000);
      await stop(r.name, to);
      await taskRunning(r.name, 'cleanup');
      // Tekton creates the TaskRun before it writes the run's status (same reconcile), so the status may lag the pod.
      await eventually('Tekton to record that it started the run', async () => !!(await readRun(ns, r.name)).status?.startTime, 10_000);
      expect((await taskRunsOf(ns, r.name)).map((t) => t.metadata.labels['tekton.dev/pipelineTask'])).toEqual(['cleanup']);
      await reconciledNow(fx.op, ns, r.name);
      expect(await hasSidecars(r.runId)).toBe(true);
      await releaseTasks(ns, r.name);
      expect(succeededCondition(await waitRunDone(ns, r.name)).status).toBe('False');
      await goneWithin(r.runId);
    });
  }
});

test('a run over timeouts.pipeline ends PipelineRunTimeout and loses its sidecars; time spent gated does not count', async () => {
  // Negative control first: a running task held past a 3 s pipeline timeout times the run out.
  const late = await create('tmo', 'cache', { tasks: [inlineTask('work', { hold: true })] }, { timeouts: { pipeline: '3s' } });
  const timedOut = await waitRunDone(ns, late.name, 30_000);
  expect(succeededCondition(timedOut).reason).toBe('PipelineRunTimeout');
  await goneWithin(late.runId);

  // Gated for 6 s (its sidecar becomes Ready only when the test lets it), then 1 s of work: within 4 s.
  const gated = await create('tmg', 'slow', { tasks: [inlineTask('work', { hold: true })] }, { timeouts: { pipeline: '4s' } });
  await eventually('its sidecar pod', async () => (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `pipeline-sidecars.dev/run-id=${gated.runId}` })).items.length === 1, 20_000);
  // The scenario's gated time: 6 s, longer than the 4 s pipeline timeout, by the run's own
  // creationTimestamp (second precision, hence the second on top). The gate holds throughout.
  const createdAt = Date.parse((await readRun(ns, gated.name)).metadata.creationTimestamp);
  await eventually('the run to be gated for 6 s', async () => Date.now() - createdAt > 6000 + 1000, 20_000, 100);
  expect((await readRun(ns, gated.name)).status?.startTime).toBeUndefined();
  const pod = (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `pipeline-sidecars.dev/run-id=${gated.runId}` })).items[0];
  await rawClient().jsonPatch(`/api/v1/namespaces/${ns}/pods/${pod.metadata.name}`, [{ op: 'replace', path: '/spec/containers/0/image', value: 'nginx:1' }]);
  await taskRunning(gated.name, 'work');
  await sleep(1000);
  await releaseTasks(ns, gated.name);
  const done = await waitRunDone(ns, gated.name);
  expect(succeededCondition(done)).toMatchObject({ status: 'True', reason: 'Succeeded' });
  expect(Date.parse(done.status.completionTime) - Date.parse(done.metadata.creationTimestamp)).toBeGreaterThan(6000);
  await goneWithin(gated.runId);
});

test('a failing task fails the run, and the sidecars go', async () => {
  const r = await create('bad', 'cache', { tasks: [inlineTask('build', { exitCode: 2 }), inlineTask('after', { runAfter: ['build'] })] });
  const done = await waitRunDone(ns, r.name);
  expect(succeededCondition(done)).toMatchObject({ status: 'False', reason: 'Failed' });
  expect((await taskRunsOf(ns, r.name)).map((t) => t.metadata.labels['tekton.dev/pipelineTask'])).toEqual(['build']);
  await goneWithin(r.runId);
});

test('deleting a running run removes its sidecars', async () => {
  const r = await create('del', 'cache', { tasks: [inlineTask('work', { hold: true })] });
  await taskRunning(r.name, 'work');
  expect(await hasSidecars(r.runId)).toBe(true);
  await rawClient().delete(runPath(r.name));
  await goneWithin(r.runId, 15_000);
});
