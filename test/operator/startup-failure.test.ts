import { ANNOTATIONS, API_VERSION, KIND } from '../../constructs/api/spec';
import { collectionPath } from '../../src/k8s/resources';
import { rawClient } from '../../platform/cluster';
import { NEVER_READY_IMAGE } from '../../platform/control-plane';
import { taskRunsOf } from '../../platform/runs';
import {
  createRun, createSidecar, eventsFor, eventually, getRun, objectsOfRun, ServedOperator, startServedOperator, stopServedOperator,
} from './helpers';

let fx: ServedOperator;
let ns: string;

beforeAll(async () => {
  fx = await startServedOperator('startfail');
  ({ ns } = fx);
});

afterAll(() => stopServedOperator(fx));

const inlinePipeline = { params: [{ name: 'addr', default: '' }], tasks: [{ name: 'use-it', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'wget -qO- $(params.addr)' }] } }] };

function neverReady(onSidecarFailure: 'Cancel' | 'Ignore'): Record<string, unknown> {
  return {
    kind: 'Container',
    template: { containers: [{ name: 'web', image: NEVER_READY_IMAGE, readinessProbe: { httpGet: { path: '/', port: 8080 } } }] },
    ports: [{ name: 'http', port: 8080 }],
    lifecycle: { startupTimeout: '3s', onSidecarFailure },
  };
}

test('a sidecar that never becomes Ready cancels the run after startupTimeout, says why, and is cleaned up', async () => {
  await createSidecar(ns, 'stuck', neverReady('Cancel'));
  const run = await createRun(ns, {
    metadata: { generateName: 'stuck-', annotations: { [ANNOTATIONS.sidecars]: 'stuck' } },
    spec: { pipelineSpec: inlinePipeline, params: [{ name: 'addr', value: '$(sidecars.stuck.address)' }] },
  });
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  // The inline reference was substituted at CREATE.
  expect(run.spec.params).toEqual([{ name: 'addr', value: `stuck-${runId}.${ns}.svc:8080` }]);
  const t0 = Date.parse(run.metadata.creationTimestamp);
  await eventually('objects to be applied', async () => (await objectsOfRun(ns, runId)).length > 0, 10_000);

  const cancelled = await eventually('the run to be cancelled', async () => {
    const r = await getRun(ns, run.metadata.name);
    return r.spec.status === 'Cancelled' ? r : undefined;
  }, 20_000, 50);
  const afterMs = Date.now() - t0;
  process.stderr.write(`[startup-failure] cancelled ${afterMs} ms after creation (startupTimeout 3s)\n`);
  expect(afterMs).toBeGreaterThanOrEqual(3000);
  expect(cancelled.metadata.annotations[ANNOTATIONS.started]).toBeUndefined();

  const ev = await eventually('a SidecarStartupFailed event', async () => (await eventsFor(ns, run.metadata.name)).find((e) => e.reason === 'SidecarStartupFailed'), 5_000);
  expect(ev.type).toBe('Warning');
  expect(ev.message).toContain('sidecar "stuck" was not Ready within startupTimeout 3s');
  expect(ev.message).toMatch(/not Ready|probe/);
  expect(ev.message).toContain('cancelling the run');
  await eventually('objects cleaned up', async () => (await objectsOfRun(ns, runId)).length === 0, 5_000);
  // Tekton marks the cancelled run done, and never created a TaskRun for it.
  await eventually('the run to be Failed/Cancelled', async () => (await getRun(ns, run.metadata.name)).status?.conditions?.some((c: any) => c.status === 'False' && c.reason === 'Cancelled'), 10_000);
  expect(await taskRunsOf(ns, run.metadata.name)).toHaveLength(0);
});

test('onSidecarFailure: Ignore starts the run anyway, with a Warning Event', async () => {
  await createSidecar(ns, 'stuck-ok', neverReady('Ignore'));
  const run = await createRun(ns, {
    metadata: { generateName: 'ignore-', annotations: { [ANNOTATIONS.sidecars]: 'stuck-ok' } },
    spec: { pipelineSpec: inlinePipeline },
  });
  await eventually('the run to be started', async () => (await getRun(ns, run.metadata.name)).spec.status === undefined, 20_000, 50);
  const ev = await eventually('the Warning event', async () => (await eventsFor(ns, run.metadata.name)).find((e) => e.reason === 'SidecarStartupFailed'), 5_000);
  expect(ev?.message).toContain('starting the run anyway (onSidecarFailure: Ignore)');
  await eventually('Tekton to run it', async () => (await taskRunsOf(ns, run.metadata.name)).length > 0, 20_000);
});

test('a PipelineSidecar deleted while its run waits: SidecarMissing names the wait, which is the deleted sidecar\'s own startupTimeout (not the operator default), then the run is refused and cancelled', async () => {
  // 12 s of its own against the test operator's 60 s default; never Ready, so the run is still
  // pending when its PipelineSidecar goes.
  await createSidecar(ns, 'deleted', { ...neverReady('Cancel'), lifecycle: { startupTimeout: '12s', onSidecarFailure: 'Cancel' } });
  const run = await createRun(ns, {
    metadata: { generateName: 'deleted-', annotations: { [ANNOTATIONS.sidecars]: 'deleted' } },
    spec: { pipelineSpec: inlinePipeline },
  });
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  await eventually('objects to be applied', async () => (await objectsOfRun(ns, runId)).length > 0, 10_000);
  await rawClient().delete(`${collectionPath(API_VERSION, KIND, ns)}/deleted`);

  const missing = await eventually('a SidecarMissing event', async () => (await eventsFor(ns, run.metadata.name)).find((e) => e.reason === 'SidecarMissing'), 10_000);
  expect(missing.type).toBe('Warning');
  expect(missing.message).toContain('PipelineSidecar "deleted" does not exist');
  expect(missing.message).toContain('the startupTimeout "deleted" had (12 s)');
  expect((await getRun(ns, run.metadata.name)).spec.status).toBe('PipelineRunPending');

  const refused = await eventually('a SidecarRefused event', async () => (await eventsFor(ns, run.metadata.name)).find((e) => e.reason === 'SidecarRefused'), 40_000, 200);
  expect(refused.message).toContain('waited the start-up timeout');
  expect(refused.message).toContain('cancelling the run');
  expect((await getRun(ns, run.metadata.name)).spec.status).toBe('Cancelled');
  await eventually('objects cleaned up', async () => (await objectsOfRun(ns, runId)).length === 0, 10_000);
});
