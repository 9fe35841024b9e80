import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { REPORTED_CRASHES_ANNOTATION } from '../../src/sidecar-health';
import { eventually, rawClient } from '../../platform/cluster';
import { ctr, podLog } from '../../platform/node';
import type { TestNode } from '../../platform/node-shared';
import { succeededCondition } from '../../src/pipelinerun';
import { taskPodsOf, waitRunDone } from '../../platform/runs';
import { createRun, healthCheckedNow, inProcessOperator, ServedOperator, watchPasses } from '../operator/helpers';
import type { Operator } from '../../src/operator';
import { daemonRun, TektonOnNode, tektonOnNode } from './tekton-fixture';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';

/**
 * Killing the daemon's container mid-run is reported on the run: the kubelet
 * restarts dockerd, and the operator writes one SidecarRestarted Warning Event on the PipelineRun
 * naming the sidecar, the container, the exit code and the restart count. Negative control: a run
 * whose daemon nobody kills (and whose sidecars are torn down at its end, stopping their containers
 * on purpose) gets no such Event.
 */
jest.setTimeout(300_000);

let node: TestNode;
let fx: ServedOperator;
let setup: TektonOnNode;
beforeAll(async () => {
  setup = await tektonOnNode('node-crash');
  ({ node, fx } = setup);
}, NODE_SETUP_TIMEOUT_MS);
afterAll(() => setup?.stop(), 120_000);

/** A run whose daemon-using task prints the server version, then runs `then`. */
function runUsingDaemon(prefix: string, then: string): Record<string, any> {
  return daemonRun(prefix, `docker version --format "server={{.Server.Version}}"\n${then}`);
}

async function restartEvents(ns: string, runUid: string): Promise<any[]> {
  const list = await rawClient().get(`/api/v1/namespaces/${ns}/events`, { fieldSelector: `involvedObject.uid=${runUid},reason=SidecarRestarted` });
  return list.items ?? [];
}

async function sidecarPodOf(ns: string, runId: string): Promise<any> {
  return (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `${LABELS.runId}=${runId}` })).items[0];
}

async function waitForServer(ns: string, runName: string): Promise<void> {
  await eventually('the task to reach its daemon', async () => {
    const pod = (await taskPodsOf(ns, runName))[0];
    return pod && /server=\d/.test(podLog(node.state, ns, pod.metadata.name, 'step-use'));
  }, 120_000, 500);
}

it('the dind container killed mid-run: a SidecarRestarted Warning Event on the run names sidecar, container, exit code and restarts', async () => {
  const ns = fx.ns;
  // The task outlives the kill: the run is not done while the daemon dies.
  const run = await createRun(ns, runUsingDaemon('crash-', 'sleep 600'));
  const name = run.metadata.name;
  const uid = run.metadata.uid;
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  await waitForServer(ns, name);
  const before = await sidecarPodOf(ns, runId);
  const cs = before.status.containerStatuses.find((c: any) => c.name === 'dockerd');
  expect(cs.restartCount).toBe(0);
  expect(await restartEvents(ns, uid)).toEqual([]);
  // Kill dockerd's container (its init process, docker-init) on the node, as an OOM kill or a crash would.
  const id: string = cs.containerID.replace('containerd://', '');
  const t0 = Date.now();
  ctr(node.state, ['tasks', 'kill', '--signal', 'SIGKILL', id]);
  const [ev] = await eventually('a SidecarRestarted Event on the run', async () => {
    const evs = await restartEvents(ns, uid);
    return evs.length ? evs : undefined;
  }, 60_000, 200);
  const reportedMs = Date.now() - t0;
  expect(ev.type).toBe('Warning');
  expect(ev.involvedObject).toMatchObject({ kind: 'PipelineRun', name, uid });
  expect(ev.message).toContain('sidecar "docker"');
  expect(ev.message).toContain(`container "dockerd" of pod ${before.metadata.name}`);
  expect(ev.message).toContain('exit code 137');
  expect(ev.message).toMatch(/restarts: [01]/);
  // The kubelet restarts it in the same pod; the record on the Deployment says the crash was reported.
  await eventually('dockerd restarted', async () => {
    const p = await sidecarPodOf(ns, runId);
    const c = p?.status?.containerStatuses?.find((x: any) => x.name === 'dockerd');
    return p?.metadata.uid === before.metadata.uid && c?.restartCount === 1 && c.state?.running;
  }, 60_000, 200);
  // The Event is written before the record (a crash between them repeats an Event rather than
  // losing one), so the record may land a moment after the Event.
  const record = await eventually('the crash recorded on the Deployment', async () => {
    const dep = (await rawClient().get(`/apis/apps/v1/namespaces/${ns}/deployments`, { labelSelector: `${LABELS.runId}=${runId}` })).items[0];
    return dep?.metadata.annotations?.[REPORTED_CRASHES_ANNOTATION];
  }, 30_000, 200);
  expect(JSON.parse(record)).toEqual({ [`${before.metadata.name}/dockerd`]: 1 });
  // One crash, one Event: the restart (and the status updates after it) report nothing more, once
  // the operator has checked the pod as it is now, restarted.
  await healthCheckedNow(fx.op, before);
  expect((await restartEvents(ns, uid)).length).toBe(1);
  // The run was not cancelled by the crash: it is still running.
  const live = await rawClient().get(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`);
  expect(live.spec.status).toBeUndefined();
  expect(succeededCondition(live).status).toBe('Unknown');
  process.stderr.write(`[node] dind killed -> SidecarRestarted Event on the run in ${reportedMs} ms: ${ev.message}\n`);
  await rawClient().delete(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`);
});

it('negative control: a run whose daemon is not killed (torn down at its end) gets no SidecarRestarted Event', async () => {
  const ns = fx.ns;
  const run = await createRun(ns, runUsingDaemon('calm-', 'sleep 3; docker version --format "again={{.Server.Version}}"'));
  const name = run.metadata.name;
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  // Every health check of this run's sidecar from here on, the teardown's included.
  const checks = watchPasses(fx.op, `crash:${ns}/${runId}/`);
  try {
    const done = await waitRunDone(ns, name, 240_000);
    expect(succeededCondition(done).status).toBe('True');
    // The teardown stops the daemon's container on purpose: still no Event, once the operator has
    // seen the pod go (every status update before it delivered) and finished the checks they queued.
    await eventually('the sidecar pod to be gone', async () => !(await sidecarPodOf(ns, runId)), 60_000, 200);
    await eventually('the operator to see it go and finish its checks', async () =>
      !fx.op.controller!.caches.pods.list(ns).some((p) => p.metadata.labels?.[LABELS.runId] === runId) && checks.running === 0, 30_000, 100);
    process.stderr.write(`[node] teardown of a calm run: ${checks.began} health checks of its stopped daemon\n`);
    // The operator did look at the stopped container (so "no Event" is its decision, not a check never made).
    expect(checks.began).toBeGreaterThan(0);
    expect(await restartEvents(ns, run.metadata.uid)).toEqual([]);
  } finally {
    checks.stop();
  }
});

it('restart-safe: a crash while the operator is down is reported once when it is back, and another restart reports nothing more', async () => {
  const ns = fx.ns;
  const run = await createRun(ns, runUsingDaemon('down-', 'sleep 600'));
  const { name, uid } = run.metadata;
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  await waitForServer(ns, name);
  // This file's last test: the fixture's operator stops here (its stop at the end is then a no-op).
  await fx.op.stop();
  const before = await sidecarPodOf(ns, runId);
  const id: string = before.status.containerStatuses.find((c: any) => c.name === 'dockerd').containerID.replace('containerd://', '');
  ctr(node.state, ['tasks', 'kill', '--signal', 'SIGKILL', id]);
  await eventually('dockerd restarted by the kubelet while no operator runs', async () => {
    const c = (await sidecarPodOf(ns, runId))?.status?.containerStatuses?.find((x: any) => x.name === 'dockerd');
    return c?.restartCount === 1 && c.state?.running;
  }, 60_000, 200);
  expect(await restartEvents(ns, uid)).toEqual([]);
  let op: Operator | undefined;
  try {
    // Back: its caches sync, the pod's state says one crash, the Deployment's record says none.
    op = inProcessOperator(`${ns}-back`, [ns], { webhook: false });
    await op.start();
    const [ev] = await eventually('the crash reported after the restart', async () => {
      const evs = await restartEvents(ns, uid);
      return evs.length ? evs : undefined;
    }, 60_000, 200);
    expect(ev.message).toContain('exit code 137');
    expect(ev.message).toContain('restarts: 1');
    await op.stop();
    // Once more: the record on the Deployment (and the Event's name) make it a no-op.
    op = inProcessOperator(`${ns}-again`, [ns], { webhook: false });
    await op.start();
    await eventually('the operator synced', async () => op!.controller?.synced, 30_000, 100);
    await healthCheckedNow(op, before);
    expect((await restartEvents(ns, uid)).length).toBe(1);
  } finally {
    await rawClient().delete(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`).catch(() => undefined);
    await op?.stop();
  }
});
