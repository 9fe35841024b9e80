import { ANNOTATIONS } from '../../constructs/api/spec';
import { NEVER_READY_IMAGE } from '../harness/control-plane';
import { taskRunsOf } from '../harness/runs';
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

test('#11.12 a sidecar that never becomes Ready cancels the run after startupTimeout, says why, and is cleaned up', async () => {
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
