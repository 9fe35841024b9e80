import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { eventually, rawClient } from '../../platform/cluster';
import { ctr, podLog } from '../../platform/node';
import type { TestNode } from '../../platform/node-shared';
import { succeededCondition } from '../../src/pipelinerun';
import { taskPodsOf, taskRunsOf, waitRunDone } from '../../platform/runs';
import { PROVENANCE_ANNOTATION } from '../../src/provenance';
import { createRun, objectsOfRun, ServedOperator } from '../operator/helpers';
import { daemonRun, TektonOnNode, tektonOnNode, tepPipelineSpec } from './tekton-fixture';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';

/**
 * The TEP example for real: the real Tekton runs the PipelineRun's TaskRun pods on the real
 * node, the operator's per-run DockerDaemon (docker:27-dind, built locally) runs there too; task 1
 * builds an image from a Dockerfile in its workspace through the daemon over mutual TLS with the
 * injected DOCKER_HOST and certificate workspace, task 2 runs that exact image, whose output is in
 * its log; the run Succeeds and the daemon pod is gone, really stopped by the kubelet, within seconds.
 */
jest.setTimeout(300_000);

let node: TestNode;
let fx: ServedOperator;

let setup: TektonOnNode;
beforeAll(async () => {
  setup = await tektonOnNode('node-tep');
  ({ node, fx } = setup);
}, NODE_SETUP_TIMEOUT_MS);

afterAll(() => setup?.stop(), 120_000);

it('the TEP example for real: task 1 builds an image with the per-run daemon over mTLS, task 2 runs it, the daemon is gone after', async () => {
  const ns = fx.ns;
  const marker = `tep-${Math.random().toString(36).slice(2, 10)}`;
  const t0 = Date.now();
  const run = await createRun(ns, {
    metadata: { generateName: 'tep-', annotations: { [ANNOTATIONS.sidecars]: 'docker' } },
    spec: {
      pipelineSpec: tepPipelineSpec(marker),
      params: [{ name: 'image', value: `tep/app:${marker}` }],
      workspaces: [{ name: 'source', emptyDir: {} }],
    },
  });
  const name = run.metadata.name;
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  // The daemon's container on the node, to check after the run that the kubelet stopped it.
  const daemonPod = await eventually('the daemon pod running', async () => (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `${LABELS.runId}=${runId}` })).items
    .find((p: any) => p.status?.containerStatuses?.[0]?.containerID), 120_000, 100);
  const daemonContainer: string = daemonPod.status.containerStatuses[0].containerID.replace('containerd://', '');
  const done = await waitRunDone(ns, name, 240_000);
  const doneMs = Date.now() - t0;
  const pods = await taskPodsOf(ns, name);
  const podOf = (task: string) => pods.find((p) => p.metadata.labels['tekton.dev/pipelineTask'] === task);
  const buildLog = podLog(node.state, ns, podOf('docker-build')?.metadata.name ?? '-', 'step-build');
  const testLog = podLog(node.state, ns, podOf('docker-test')?.metadata.name ?? '-', 'step-test');
  expect({ run: succeededCondition(done), buildLog, testLog }).toMatchObject({ run: { status: 'True' } });
  // Both task pods ran on the real node, and the second printed what the first one's image echoes.
  expect(pods.map((p) => p.spec.nodeName)).toEqual([node.state.name, node.state.name]);
  expect(testLog).toContain(`${marker} from-task-2`);
  // Provenance: the run, and each TaskRun (Tekton copies the run's annotations), name the daemon
  // image that built the image by the digest the kubelet ran, as the daemon's pod reports it.
  const served = JSON.parse(done.metadata.annotations[PROVENANCE_ANNOTATION]);
  const daemonStatus = daemonPod.status.containerStatuses[0];
  // A pulled image is `repo@sha256:…`; one loaded without a registry, as on this node, `sha256:…`.
  expect(daemonStatus.imageID).toMatch(/(^|@)sha256:[0-9a-f]{64}$/);
  expect(served).toEqual([{ sidecar: 'docker', kind: 'DockerDaemon', pod: daemonPod.metadata.name, containers: [{ name: daemonStatus.name, image: daemonStatus.image, imageID: daemonStatus.imageID }] }]);
  for (const tr of await taskRunsOf(ns, name)) expect(tr.metadata.annotations[PROVENANCE_ANNOTATION]).toBe(done.metadata.annotations[PROVENANCE_ANNOTATION]);
  // The daemon pod is gone within seconds of the end, and the kubelet really stopped its container.
  const ended = Date.now();
  await eventually('the daemon pod to be gone', async () => (await objectsOfRun(ns, runId)).length === 0 &&
    (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `${LABELS.runId}=${runId}` })).items.length === 0, 30_000, 100);
  await eventually('the dind container to be stopped on the node', async () => !ctr(node.state, ['containers', 'ls', '-q']).includes(daemonContainer), 30_000, 200);
  process.stderr.write(`[node] TEP run created -> Succeeded in ${doneMs} ms; daemon gone ${Date.now() - ended} ms after\n`);
});

it('deleting a running run removes its sidecar pods, and the kubelet really stops the daemon', async () => {
  const ns = fx.ns;
  const run = await createRun(ns, daemonRun('doomed-', 'docker version --format "server={{.Server.Version}}"; sleep 300'));
  const name = run.metadata.name;
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  await eventually('the task to use its daemon', async () => {
    const pod = (await taskPodsOf(ns, name))[0];
    return pod && /server=\d/.test(podLog(node.state, ns, pod.metadata.name, 'step-use'));
  }, 120_000, 500);
  // The daemon really runs on the node: its container is one of the node's containerd containers.
  const daemonPod = (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `${LABELS.runId}=${runId}` })).items[0];
  const daemonContainer: string = daemonPod.status.containerStatuses[0].containerID.replace('containerd://', '');
  const dindRunning = () => ctr(node.state, ['containers', 'ls', '-q']).includes(daemonContainer);
  expect(dindRunning()).toBe(true);
  const t0 = Date.now();
  await rawClient().delete(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`);
  await eventually('the sidecar pods to be gone', async () =>
    (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `${LABELS.runId}=${runId}` })).items.length === 0, 60_000, 100);
  const podsGone = Date.now() - t0;
  await eventually('the kubelet to stop the dind container', async () => !dindRunning(), 60_000, 200);
  process.stderr.write(`[node] run deleted -> sidecar pods gone ${podsGone} ms, dind container gone ${Date.now() - t0} ms\n`);
  expect(await objectsOfRun(ns, runId)).toEqual([]);
});
