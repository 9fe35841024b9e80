import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { collectionPath } from '../../src/k8s/resources';
import { rawClient } from '../harness/cluster';
import { TektonSimulator } from '../harness/simulator';
import {
  createPipeline, createRun, createSidecar, dockerDaemonSpec, eventsFor, eventually, getRun, objectsOfRun, ServedOperator, startServedOperator, stopServedOperator, tepPipeline,
} from './helpers';

let fx: ServedOperator;
let ns: string;
let sim: TektonSimulator;

beforeAll(async () => {
  fx = await startServedOperator('tep', { [LABELS.allowPrivileged]: 'true' });
  ({ ns, sim } = fx);
});

afterAll(() => stopServedOperator(fx));

test('TEP-0130 example: gated at CREATE, sidecar Ready, run started, objects gone within 2 s of completion', async () => {
  await createSidecar(ns, 'docker-daemon', dockerDaemonSpec());
  await createPipeline(ns, tepPipeline());
  const created = await createRun(ns, {
    metadata: { generateName: 'ci-with-docker-build-run-', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon' } },
    spec: {
      pipelineRef: { name: 'ci-with-docker-build' },
      params: [{ name: 'image', value: 'registry.example/app:1' }],
      workspaces: [{ name: 'source', emptyDir: {} }],
    },
  });
  const t0 = Date.parse(created.metadata.creationTimestamp);
  const name: string = created.metadata.name;
  const runId: string = created.metadata.annotations[ANNOTATIONS.runId];

  // The webhook decided everything at CREATE: gate, run id, docker-host, certificate workspace.
  expect(runId).toMatch(/^[a-z][a-z0-9]{7}$/);
  expect(created.spec.status).toBe('PipelineRunPending');
  expect(created.metadata.annotations[ANNOTATIONS.gated]).toBe('true');
  const host = `docker-daemon-${runId}.${ns}.svc`;
  expect(created.spec.params).toEqual([{ name: 'image', value: 'registry.example/app:1' }, { name: 'docker-host', value: `tcp://${host}:2376` }]);
  expect(created.spec.workspaces).toContainEqual({ name: 'docker-tls-certs', secret: { secretName: `docker-daemon-${runId}-client` } });

  // Deployment, Service, NetworkPolicy, ServiceAccount and both Secrets appear.
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
  const client = await rawClient().get(`${collectionPath('v1', 'Secret', ns)}/docker-daemon-${runId}-client`);
  expect(Object.keys(client.data).sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem']);

  // The NetworkPolicy, as stored by the server, admits only this run's pods.
  const np = await rawClient().get(`${collectionPath('networking.k8s.io/v1', 'NetworkPolicy', ns)}/docker-daemon-${runId}-isolation`);
  expect(np.spec.ingress).toHaveLength(1);
  // Peers: this run's task pods, and this run's other sidecars; nothing namespace- or cluster-wide.
  expect(np.spec.ingress[0].from).toEqual([
    { podSelector: { matchLabels: { 'tekton.dev/pipelineRunUID': created.metadata.uid } } },
    { podSelector: { matchLabels: { [LABELS.managedBy]: 'pipeline-sidecars', [LABELS.runId]: runId } } },
  ]);

  // The sidecar pod becomes Ready (kwok), then the run is started: spec.status removed, nothing else.
  await eventually('a Ready sidecar pod', async () => {
    const pods = await rawClient().get(collectionPath('v1', 'Pod', ns), { labelSelector: `${LABELS.runId}=${runId}` });
    return pods.items.some((p: any) => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
  }, 30_000);
  const started = await eventually('the run to be started', async () => {
    const r = await getRun(ns, name);
    return r.spec.status === undefined ? r : undefined;
  }, 30_000, 25);
  const unpendMs = Date.parse(started.metadata.annotations[ANNOTATIONS.started]) - t0;
  process.stderr.write(`[tep-example] unpend latency (creation → started annotation): ${unpendMs} ms\n`);
  expect(started.metadata.annotations[ANNOTATIONS.started]).toBeDefined();
  // The frozen-spec policy was active all along: the spec is exactly what CREATE produced, minus status.
  const { status: _s, ...createdSpec } = created.spec;
  expect(started.spec).toEqual(createdSpec);

  // The simulator runs it (one pod per task) ...
  await eventually('the simulator to start the run', async () => sim.started.includes(`${ns}/${name}`), 10_000);
  const events = await eventually('the SidecarsReady event', async () => {
    const evs = await eventsFor(ns, name);
    return evs.some((e) => e.reason === 'SidecarsReady') ? evs : undefined;
  }, 5_000);
  expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['SidecarsApplied', 'SidecarsReady']));

  // The PipelineSidecar's status counts the run.
  const crPath = `${collectionPath('pipeline-sidecars.dev/v1alpha1', 'PipelineSidecar', ns)}/docker-daemon`;
  const status = await eventually('activeRuns 1', async () => { const st = (await rawClient().get(crPath)).status; return st?.activeRuns === 1 ? st : undefined; }, 5_000);
  expect(status.conditions.find((c: any) => c.type === 'Ready')).toMatchObject({ status: 'True' });
  expect(status.observedGeneration).toBe(1);

  // ... and finishes it; every sidecar object is gone within 2 s.
  await sim.finish(ns, name, 'Succeeded');
  const tDone = Date.now();
  await eventually('the sidecar objects to be deleted', async () => (await objectsOfRun(ns, runId)).length === 0, 5_000, 25);
  const cleanupMs = Date.now() - tDone;
  process.stderr.write(`[tep-example] cleanup after completion: ${cleanupMs} ms\n`);
  expect(cleanupMs).toBeLessThan(2000);
  await eventually('the SidecarsDeleted event', async () => (await eventsFor(ns, name)).some((e) => e.reason === 'SidecarsDeleted'), 5_000);
  await eventually('activeRuns 0', async () => (await rawClient().get(crPath)).status?.activeRuns === 0, 5_000);
});
