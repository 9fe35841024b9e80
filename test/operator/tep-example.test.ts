import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { collectionPath } from '../../src/k8s/resources';
import { rawClient } from '../../platform/cluster';
import { policyAdmits } from '../../platform/network-policy';
import { succeededCondition } from '../../src/pipelinerun';
import { readRun, taskPodsOf, taskRunsOf, waitRunDone } from '../../platform/runs';
import {
  createPipeline, createRun, createSidecar, dockerDaemonSpec, eventsFor, eventually, objectsOfRun, ServedOperator, startServedOperator, stopServedOperator, tepPipeline,
} from './helpers';

let fx: ServedOperator;
let ns: string;

beforeAll(async () => {
  fx = await startServedOperator('tep', { [LABELS.allowPrivileged]: 'true' });
  ({ ns } = fx);
});

afterAll(() => stopServedOperator(fx));

const runOf = (image: string) => ({
  metadata: { generateName: 'ci-with-docker-build-run-', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon' } },
  spec: { pipelineRef: { name: 'ci-with-docker-build' }, params: [{ name: 'image', value: image }], workspaces: [{ name: 'source', emptyDir: {} }] },
});

test('TEP-0130 example with the real Tekton on kwok\'s node: gated at CREATE, no TaskRun before the sidecar is Ready, TaskRuns in runAfter order, only its pods admitted by the policy, marked Succeeded as kwok ends its pods, objects deleted after done', async () => {
  await createSidecar(ns, 'docker-daemon', dockerDaemonSpec());
  await createPipeline(ns, tepPipeline());
  const created = await createRun(ns, runOf('registry.example/app:1'));
  const t0 = Date.parse(created.metadata.creationTimestamp);
  const name: string = created.metadata.name;
  const runId: string = created.metadata.annotations[ANNOTATIONS.runId];

  // The webhook decided everything at CREATE, and Tekton's webhook (which ran after ours) accepted
  // the injected param and the Secret workspace and added its own defaults.
  expect(runId).toMatch(/^[a-z][a-z0-9]{7}$/);
  expect(created.spec.status).toBe('PipelineRunPending');
  expect(created.metadata.annotations[ANNOTATIONS.gated]).toBe('true');
  const host = `docker-daemon-${runId}.${ns}.svc`;
  expect(created.spec.params).toEqual([{ name: 'image', value: 'registry.example/app:1' }, { name: 'docker-host', value: `tcp://${host}:2376` }]);
  expect(created.spec.workspaces).toContainEqual({ name: 'docker-tls-certs', secret: { secretName: `docker-daemon-${runId}-client` } });
  expect(created.spec.timeouts.pipeline).toBe('1h0m0s');


  const objects = await eventually('the sidecar objects', async () => {
    const o = await objectsOfRun(ns, runId);
    return o.length >= 6 ? o : undefined;
  }, 20_000);
  expect(objects).toEqual([
    `Deployment/docker-daemon-${runId}`,
    `NetworkPolicy/docker-daemon-${runId}-isolation`,
    `Secret/docker-daemon-${runId}-client`,
    `Secret/docker-daemon-${runId}-server`,
    `Service/docker-daemon-${runId}`,
    `ServiceAccount/docker-daemon-${runId}`,
  ]);
  const np = await rawClient().get(`${collectionPath('networking.k8s.io/v1', 'NetworkPolicy', ns)}/docker-daemon-${runId}-isolation`);
  expect(np.spec.ingress).toHaveLength(1);
  // Peers: this run's task pods, and this run's other sidecars; nothing namespace- or cluster-wide.
  expect(np.spec.ingress[0].from).toEqual([
    { podSelector: { matchLabels: { 'tekton.dev/pipelineRunUID': created.metadata.uid } } },
    { podSelector: { matchLabels: { [LABELS.managedBy]: 'pipeline-sidecars', [LABELS.runId]: runId } } },
  ]);

  // Sample until the run is unpended: no TaskRun may exist before the Deployment is Ready.
  let readyAt: number | undefined;
  let taskRunsBeforeReady = 0;
  const started = await eventually('the run to be started', async () => {
    const [dep, trs, r] = await Promise.all([
      rawClient().get(`${collectionPath('apps/v1', 'Deployment', ns)}/docker-daemon-${runId}`),
      taskRunsOf(ns, name),
      readRun(ns, name),
    ]);
    if (readyAt === undefined && dep.status?.readyReplicas === 1) readyAt = Date.now();
    if (readyAt === undefined) taskRunsBeforeReady += trs.length;
    return r.spec.status === undefined ? r : undefined;
  }, 30_000, 20);
  expect(readyAt).toBeDefined();
  expect(taskRunsBeforeReady).toBe(0);
  process.stderr.write(`[tep-example] creation → started annotation: ${Date.parse(started.metadata.annotations[ANNOTATIONS.started]) - t0} ms\n`);
  // Only spec.status changed since CREATE: Tekton's frozen-spec rule held, and we never broke it.
  const { status: _s, ...createdSpec } = created.spec;
  expect(started.spec).toEqual(createdSpec);

  // A second run of the same Pipeline: its pods must not be admitted by the first run's policy.
  const other = await createRun(ns, runOf('registry.example/app:2'));

  // Tekton creates the TaskRuns in order on the kwok node, whose stage ends each task pod as a
  // success (no step runs, `docker info` included): Succeeded here is Tekton's bookkeeping of those
  // outcomes, not a build that happened.
  const done = await waitRunDone(ns, name, 60_000);
  const tDone = Date.now();
  expect(succeededCondition(done)).toMatchObject({ status: 'True', reason: 'Succeeded' });
  // Gated time does not count: Tekton started the run's clock when we released it, not at CREATE
  // (startTime has second precision, the started annotation milliseconds).
  expect(Date.parse(done.status.startTime)).toBeGreaterThanOrEqual(Math.floor(Date.parse(started.metadata.annotations[ANNOTATIONS.started]) / 1000) * 1000);
  // In runAfter order: each TaskRun started only after the one before it completed.
  const trs = await taskRunsOf(ns, name);
  const byTask = new Map(trs.map((t) => [t.metadata.labels['tekton.dev/pipelineTask'], t]));
  expect([...byTask.keys()].sort()).toEqual(['docker-build', 'docker-push', 'git-clone', 'pytest']);
  const order = ['git-clone', 'docker-build', 'pytest', 'docker-push'];
  for (let i = 1; i < order.length; i++) {
    expect(Date.parse(byTask.get(order[i])!.metadata.creationTimestamp)).toBeGreaterThanOrEqual(Date.parse(byTask.get(order[i - 1])!.status.completionTime));
  }
  await eventually('the sidecar objects to be deleted', async () => (await objectsOfRun(ns, runId)).length === 0, 5_000, 20);
  const cleanupMs = Date.now() - tDone;
  process.stderr.write(`[tep-example] done observed → sidecar objects gone: ${cleanupMs} ms\n`);

  // Each TaskRun pod of the run carries the label the policy admits; the other run's pods do not.
  const own = await taskPodsOf(ns, name);
  expect(own).toHaveLength(4);
  for (const p of own) expect({ pod: p.metadata.name, admitted: policyAdmits(np, p.metadata.labels) }).toEqual({ pod: p.metadata.name, admitted: true });
  await waitRunDone(ns, other.metadata.name, 60_000);
  const foreign = await taskPodsOf(ns, other.metadata.name);
  expect(foreign.length).toBeGreaterThan(0);
  for (const p of foreign) expect({ pod: p.metadata.name, admitted: policyAdmits(np, p.metadata.labels) }).toEqual({ pod: p.metadata.name, admitted: false });

  const events = await eventsFor(ns, name);
  expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['SidecarsReady', 'SidecarsDeleted']));
  // One Event says what was created: SidecarsReady when the sidecars came up within 5 s, else an
  // earlier SidecarsApplied (src/gate-actions.ts APPLIED_EVENT_AFTER_MS).
  const ready = events.find((e) => e.reason === 'SidecarsReady');
  const applied = events.find((e) => e.reason === 'SidecarsApplied');
  expect(`${ready?.message} ${applied?.message ?? ''}`).toMatch(/created .*Deployment /);
});
