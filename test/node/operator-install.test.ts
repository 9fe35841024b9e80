import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { ctr, podLog } from '../../platform/node';
import { OperatorImage, OwnCluster, README_INSTALL, containerPid, ensureKubectl, ensureOperatorImage, importImage, startOwnCluster } from '../../platform/in-cluster';
import { succeededCondition } from '../../src/pipelinerun';
import { taskPodsOf, waitRunDone } from '../../platform/runs';
import { createRun, createSidecar, dockerDaemonSpec, objectsOfRun, sleep } from '../operator/helpers';
import { daemonRun, DOCKER_CLI, tepPipelineSpec } from './tekton-fixture';
import { podOnNode } from '../../platform/node-pods';

/**
 * The operator installed as a user installs it, and run as Pods on the real node: its image
 * built from the Dockerfile (scripts/operator-image.sh), the bundle synthesized with the documented
 * `synth` flags and applied with `kubectl apply --server-side`, exactly the README's install
 * section, then nothing touched by hand. The cluster is this file's own (in-cluster.ts): the
 * install owns cluster-wide objects (CRD, RBAC, webhook configuration) and the uninstall deletes them.
 */
jest.setTimeout(600_000);

const OP_NS = 'pipeline-sidecars';
const NAME = 'pipeline-sidecars';
const SELECTOR = 'app.kubernetes.io/name=pipeline-sidecars,app.kubernetes.io/component=operator';
const SA_USER = `system:serviceaccount:${OP_NS}:${NAME}`;
const REPO = path.resolve(__dirname, '..', '..');

let image: OperatorImage;
let upgradeRef: string;
let own: OwnCluster;
let served: string;
let dist: string;
const numbers: Record<string, number | string> = {};

/** The README's synth command, into this test's dist directory. */
function synth(imageRef: string): void {
  execFileSync(process.execPath, [path.join(REPO, 'bin', 'pipeline-sidecars'), ...README_INSTALL.synth(imageRef, served, dist)],
    { cwd: REPO, stdio: 'pipe' });
}

/** The synthesized bundle's objects. */
function bundle(): Array<Record<string, any>> {
  return fs.readdirSync(dist).filter((f) => f.endsWith('.yaml')).sort()
    .flatMap((f) => parseAllDocuments(fs.readFileSync(path.join(dist, f), 'utf8')).map((d) => d.toJSON())).filter(Boolean);
}

async function operatorPods(): Promise<Array<Record<string, any>>> {
  return (await rawClient().get(`/api/v1/namespaces/${OP_NS}/pods`, { labelSelector: SELECTOR })).items
    .filter((p: any) => !p.metadata.deletionTimestamp);
}
const isReady = (p: any): boolean => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ?? false;
async function lease(): Promise<Record<string, any>> {
  return rawClient().get(`/apis/coordination.k8s.io/v1/namespaces/${OP_NS}/leases/${NAME}-leader`);
}
/** A pod's /metrics, scraped at its IP from the host (the API server's side of the pod network). */
async function metric(pod: any, name: string): Promise<number> {
  const text = await (await fetch(`http://${pod.status.podIP}:8080/metrics`, { signal: AbortSignal.timeout(3000) })).text();
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}
/** Both replicas Ready, on the Deployment's current template. */
async function waitTwoReady(timeoutMs = 120_000): Promise<Array<Record<string, any>>> {
  return eventually('two Ready operator replicas', async () => {
    const dep = await rawClient().get(`/apis/apps/v1/namespaces/${OP_NS}/deployments/${NAME}`);
    const pods = await operatorPods();
    return dep.status?.updatedReplicas === 2 && dep.status?.readyReplicas === 2 && dep.status?.replicas === 2 && pods.length === 2 && pods.every(isReady) ? pods : undefined;
  }, timeoutMs, 250);
}

/** PipelineRun writes in the served namespace from the API server's audit log. */
function auditOf(runName: string): Array<Record<string, any>> {
  return fs.readFileSync(own.cp.state.auditLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((e) => e.objectRef?.namespace === served && e.objectRef?.resource === 'pipelineruns' && e.objectRef?.name === runName);
}
/** How many times the operator released (unpended) a run: its 200-answered spec patches that remove spec.status. */
function releases(runName: string): number {
  return auditOf(runName).filter((e) => e.user.username === SA_USER && e.verb === 'patch' && e.responseStatus?.code === 200 && !e.objectRef.subresource &&
    Array.isArray(e.requestObject) && e.requestObject.some((o: any) => o.op === 'remove' && o.path === '/spec/status')).length;
}

/** A run of the served namespace with the `docker` sidecar whose one task uses the daemon, sleeps, and uses it again. */
function sleepyRun(prefix: string, seconds: number): Record<string, any> {
  return daemonRun(`${prefix}-`, `docker version --format 'before={{.Server.Version}}'\nsleep ${seconds}\ndocker version --format 'after={{.Server.Version}}'`);
}
async function daemonPods(runId: string): Promise<Array<Record<string, any>>> {
  return (await rawClient().get(`/api/v1/namespaces/${served}/pods`, { labelSelector: `${LABELS.runId}=${runId}` })).items;
}
async function waitStartedWithDaemon(run: Record<string, any>): Promise<Record<string, any>> {
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  return eventually(`run ${run.metadata.name} started with its daemon Ready`, async () => {
    const r = await rawClient().get(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns/${run.metadata.name}`);
    const pods = await daemonPods(runId);
    return r.spec.status === undefined && r.status?.startTime && pods.length === 1 && isReady(pods[0]) ? pods[0] : undefined;
  }, 120_000, 250);
}

beforeAll(async () => {
  image = ensureOperatorImage();
  upgradeRef = `${image.ref}-next`;
  const kubectlPath = ensureKubectl();
  own = await startOwnCluster(kubectlPath);
  // Nothing is pulled: the node gets the image as it gets its own images. The upgrade's tag names the same build.
  importImage(own, image, [upgradeRef]);
  served = await createTestNamespace('install-ci');
  dist = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-sidecars-dist-'));
  numbers.imageMiB = Math.round(image.sizeBytes / 1048576);

  // The README's install section, command for command.
  synth(image.ref);
  const t0 = Date.now();
  own.kubectl(README_INSTALL.apply(dist));
  own.kubectl([...README_INSTALL.rollout]);
  numbers.installToReadyMs = Date.now() - t0;
}, 1_200_000);

afterAll(async () => {
  process.stderr.write(`[install] ${JSON.stringify(numbers)}\n`);
  rawClient().close();
  if (dist) fs.rmSync(dist, { recursive: true, force: true });
  await own?.stop();
}, 120_000);

test('both replicas become Ready on the real node under the shipped security context and resources; exactly one holds the Lease', async () => {
  const shipped = bundle().find((o) => o.kind === 'Deployment')!.spec.template.spec;
  const pods = await waitTwoReady();
  for (const p of pods) {
    expect(p.spec.nodeName).toBe(own.node.state.name);
    expect(p.spec.containers[0].image).toBe(image.ref);
    expect(p.spec.securityContext).toEqual(shipped.securityContext);
    expect(p.spec.containers[0].securityContext).toEqual(shipped.containers[0].securityContext);
    expect(p.spec.containers[0].resources).toEqual(shipped.containers[0].resources);
    // What the kernel enforces on the operator's process: uid/gid 65532, no capabilities, no new
    // privileges, a read-only root file system.
    const pid = containerPid(own, p.status.containerStatuses[0].containerID);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
    expect(status).toMatch(/^Gid:\s+65532\s+65532\s+65532\s+65532$/m);
    expect(status).toMatch(/^CapEff:\s+0000000000000000$/m);
    expect(status).toMatch(/^CapBnd:\s+0000000000000000$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    const root = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').find((l) => l.split(' ')[4] === '/')!;
    expect(root.split(' ')[5].split(',')).toContain('ro');
    // No crash on the way up (the log of a crashed start is in the failure message).
    const cs = p.status.containerStatuses[0];
    expect({ pod: p.metadata.name, restarts: cs.restartCount, last: cs.lastState?.terminated, log: cs.restartCount ? podLog(own.node.state, OP_NS, p.metadata.name, 'operator').slice(0, 6000) : '' })
      .toEqual({ pod: p.metadata.name, restarts: 0, last: undefined, log: '' });
  }
  const holder = (await lease()).spec.holderIdentity;
  expect(pods.map((p) => p.metadata.name)).toContain(holder);
  // Each replica's own view: exactly one says it leads, and it is the Lease's holder.
  const leaders = await eventually('one replica reporting leadership', async () => {
    const v = await Promise.all(pods.map(async (p) => ({ name: p.metadata.name, leader: await metric(p, 'pipeline_sidecars_leader') })));
    return v.filter((x) => x.leader === 1).length === 1 ? v : undefined;
  }, 20_000, 500);
  expect(leaders.filter((x) => x.leader === 1).map((x) => x.name)).toEqual([holder]);
  expect(leaders.filter((x) => x.leader === 0)).toHaveLength(1);
});

test('the API server reaches the webhook through its Service: a run is gated at CREATE', async () => {
  // The bundle ships no caBundle; the operator filled it in with its own CA (no cert-manager here).
  const shippedHooks = bundle().find((o) => o.kind === 'MutatingWebhookConfiguration')!.webhooks;
  expect(shippedHooks.length).toBeGreaterThan(0);
  expect(shippedHooks.filter((w: any) => w.clientConfig.caBundle)).toEqual([]);
  const cfg = await rawClient().get(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${NAME}`);
  const secret = await rawClient().get(`/api/v1/namespaces/${OP_NS}/secrets/${NAME}-webhook-tls`);
  expect(cfg.webhooks).toHaveLength(shippedHooks.length);
  for (const w of cfg.webhooks) {
    expect(w.clientConfig.service).toEqual({ namespace: OP_NS, name: NAME, path: '/mutate-pipelinerun', port: 443 });
    expect(w.clientConfig.url).toBeUndefined();
    expect(Buffer.from(w.clientConfig.caBundle, 'base64').toString()).toContain(Buffer.from(secret.data['ca.crt'], 'base64').toString().trim());
  }
  await createSidecar(served, 'docker', dockerDaemonSpec());
  const pods = await operatorPods();
  const before = (await Promise.all(pods.map((p) => metric(p, 'pipeline_sidecars_admissions_total')))).reduce((a, b) => a + b, 0);
  const run = await createRun(served, sleepyRun('gated', 1));
  // The answer to the CREATE itself carries the webhook's mutation.
  expect(run.spec.status).toBe('PipelineRunPending');
  expect(run.metadata.annotations[ANNOTATIONS.runId]).toMatch(/^[a-z0-9]+$/);
  expect(run.metadata.labels[LABELS.admitted]).toBe(run.metadata.annotations[ANNOTATIONS.runId]);
  expect(run.spec.params).toContainEqual({ name: 'docker-host', value: `tcp://docker-${run.metadata.annotations[ANNOTATIONS.runId]}.${served}.svc:2376` });
  const after = (await Promise.all(pods.map((p) => metric(p, 'pipeline_sidecars_admissions_total')))).reduce((a, b) => a + b, 0);
  expect(after).toBeGreaterThan(before);
  // Negative control: the operator's refusal (a sidecar that does not exist) reaches the client.
  const refused = await createRun(served, { ...sleepyRun('missing', 1), metadata: { generateName: 'missing-', annotations: { [ANNOTATIONS.sidecars]: 'nope' } } }).then(() => undefined, (e) => e);
  expect(String(refused?.message)).toMatch(/nope/);
  expect(succeededCondition(await waitRunDone(served, run.metadata.name, 180_000))).toMatchObject({ status: 'True' });
  expect(releases(run.metadata.name)).toBe(1);
});

test('the TEP example succeeds end to end through the in-cluster operator', async () => {
  const marker = `tep-${Math.random().toString(36).slice(2, 10)}`;
  const t0 = Date.now();
  const run = await createRun(served, {
    metadata: { generateName: 'tep-', annotations: { [ANNOTATIONS.sidecars]: 'docker' } },
    spec: { pipelineSpec: tepPipelineSpec(marker), params: [{ name: 'image', value: `tep/app:${marker}` }], workspaces: [{ name: 'source', emptyDir: {} }] },
  });
  const name = run.metadata.name;
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  expect(run.spec.status).toBe('PipelineRunPending');
  const daemon = await eventually('the daemon pod running', async () => (await daemonPods(runId)).find((p) => p.status?.containerStatuses?.[0]?.containerID), 120_000, 200);
  const done = await waitRunDone(served, name, 300_000);
  numbers.tepCreatedToSucceededMs = Date.now() - t0;
  const pods = await taskPodsOf(served, name);
  const podOf = (task: string) => pods.find((p) => p.metadata.labels['tekton.dev/pipelineTask'] === task);
  const testLog = podLog(own.node.state, served, podOf('docker-test')?.metadata.name ?? '-', 'step-test');
  expect({ run: succeededCondition(done), testLog }).toMatchObject({ run: { status: 'True' } });
  expect(testLog).toContain(`${marker} from-task-2`);
  // Gated and released by the in-cluster operator's ServiceAccount, once.
  expect(releases(name)).toBe(1);
  await eventually('the run\'s sidecar objects to be gone', async () => (await objectsOfRun(served, runId)).length === 0 && (await daemonPods(runId)).length === 0, 60_000, 200);
  const daemonId = daemon.status.containerStatuses[0].containerID.replace('containerd://', '');
  await eventually('the dind container to be stopped on the node', async () => !ctr(own.node.state, ['containers', 'ls', '-q']).includes(daemonId), 60_000, 250);
});

test('failover: the leader pod is deleted, another replica takes over (at the latest once the deleted leader\'s Lease has run out); a run created meanwhile is gated, provisioned and released once', async () => {
  const pods = await waitTwoReady();
  const l = await lease();
  const old = l.spec.holderIdentity;
  // The contract, from the configured values: the deleted leader renews at most until the kubelet
  // kills it (its grace period), its Lease runs out a lease duration after that, and the other
  // replicas look once per retry period (a fifth of the lease duration, the operator's default).
  // The margin (10 s) is what a loaded 2-core machine needs on top for the deletion to reach the
  // kubelet and for the API requests. The hand-over on shutdown (the Lease released) is usually far
  // quicker; that figure is the bench's (failoverMs below, printed).
  const leaseMs = l.spec.leaseDurationSeconds * 1000;
  const graceMs = (pods.find((p) => p.metadata.name === old)!.spec.terminationGracePeriodSeconds ?? 30) * 1000;
  const boundMs = graceMs + leaseMs + leaseMs / 5 + 10_000;
  const t0 = Date.now();
  await rawClient().delete(`/api/v1/namespaces/${OP_NS}/pods/${old}`);
  const run = await createRun(served, sleepyRun('failover', 1));
  const createdMs = Date.now() - t0;
  const holder = await eventually('a new Lease holder', async () => {
    const h = (await lease()).spec.holderIdentity;
    return h && h !== old ? h : undefined;
  }, boundMs + 5_000, 50);
  const takeoverMs = Date.now() - t0;
  numbers.failoverMs = takeoverMs;
  numbers.failoverRunCreatedMs = createdMs;
  expect(takeoverMs).toBeLessThan(boundMs);
  expect(holder).not.toBe(old);
  expect(run.spec.status).toBe('PipelineRunPending');
  expect(run.metadata.annotations[ANNOTATIONS.runId]).toBeTruthy();
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  await eventually('the run\'s daemon Deployment', async () => (await objectsOfRun(served, runId)).includes(`Deployment/docker-${runId}`), 60_000, 200);
  expect(succeededCondition(await waitRunDone(served, run.metadata.name, 180_000))).toMatchObject({ status: 'True' });
  expect(releases(run.metadata.name)).toBe(1);
  await waitTwoReady();
});

test('the PodDisruptionBudget refuses to evict the second replica while the first is not Ready', async () => {
  const pods = await waitTwoReady();
  const holder = (await lease()).spec.holderIdentity;
  const first = pods.find((p) => p.metadata.name !== holder)!;
  const second = pods.find((p) => p.metadata.name === holder)!;
  const evict = (pod: any) => rawClient().create(`/api/v1/namespaces/${OP_NS}/pods/${pod.metadata.name}/eviction`, {
    apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.metadata.name, namespace: OP_NS },
  }).then(() => 'evicted', (e) => e);
  const pdb = () => rawClient().get(`/apis/policy/v1/namespaces/${OP_NS}/poddisruptionbudgets/${NAME}`);
  const firstId = first.status.containerStatuses[0].containerID.replace('containerd://', '');
  // The first replica stops answering (its container frozen), so its readiness probe fails.
  ctr(own.node.state, ['tasks', 'pause', firstId]);
  let refused: any;
  try {
    await eventually('the first replica not Ready and the budget at 0 disruptions', async () => {
      const p = await rawClient().get(`/api/v1/namespaces/${OP_NS}/pods/${first.metadata.name}`);
      const b = await pdb();
      return !isReady(p) && b.status?.disruptionsAllowed === 0 && b.status?.observedGeneration === b.metadata.generation;
    }, 40_000, 250);
    refused = await evict(second);
  } finally {
    ctr(own.node.state, ['tasks', 'resume', firstId]);
  }
  expect(refused?.statusCode).toBe(429);
  expect(String(refused?.message)).toMatch(/disruption budget/);
  expect((await rawClient().get(`/api/v1/namespaces/${OP_NS}/pods/${second.metadata.name}`)).metadata.deletionTimestamp).toBeUndefined();
  // Positive control: with the first Ready again, the same eviction is allowed.
  await eventually('the first replica Ready again and one disruption allowed', async () => {
    const p = await rawClient().get(`/api/v1/namespaces/${OP_NS}/pods/${first.metadata.name}`);
    return isReady(p) && (await pdb()).status?.disruptionsAllowed === 1;
  }, 60_000, 250);
  expect(await evict(second)).toBe('evicted');
  await waitTwoReady();
});

/**
 * Polls the pods labelled with each run id until stopped: every pod uid seen per run id, and the
 * highest restart count of any of their containers.
 */
function watchDaemonPods(runIds: string[]): { seen: Map<string, Set<string>>; maxRestarts: () => number; stop: () => Promise<void> } {
  const seen = new Map<string, Set<string>>(runIds.map((id) => [id, new Set<string>()]));
  let maxRestarts = 0;
  let watching = true;
  const loop = (async () => {
    while (watching) {
      for (const [runId, uids] of seen) {
        for (const p of await daemonPods(runId)) {
          uids.add(p.metadata.uid);
          maxRestarts = Math.max(maxRestarts, ...(p.status?.containerStatuses ?? []).map((c: any) => c.restartCount));
        }
      }
      await sleep(250);
    }
  })();
  return { seen, maxRestarts: () => maxRestarts, stop: async () => { watching = false; await loop; } };
}

test('the daemon-pod watch of the upgrade test sees a restarted container and a replaced pod (its negative control)', async () => {
  // A pod labelled as a run's daemon whose container exits once, then a second pod in its place.
  const runId = 'watchctl';
  const control = (name: string) => {
    const p = podOnNode(own.node.state, name, 'if [ -e /m/once ]; then exec sleep 3600; fi; touch /m/once; exit 1', { serve: true, labels: { [LABELS.runId]: runId } });
    p.spec.volumes = [{ name: 'm', emptyDir: {} }];
    p.spec.containers[0].volumeMounts = [{ name: 'm', mountPath: '/m' }];
    return p;
  };
  const watch = watchDaemonPods([runId]);
  try {
    await rawClient().create(`/api/v1/namespaces/${served}/pods`, control('watch-control-1'));
    await eventually('the watch to see the restart', async () => watch.maxRestarts() >= 1, 120_000, 250);
    await rawClient().delete(`/api/v1/namespaces/${served}/pods/watch-control-1`);
    await rawClient().create(`/api/v1/namespaces/${served}/pods`, control('watch-control-2'));
    await eventually('the watch to see the second pod', async () => watch.seen.get(runId)!.size >= 2, 60_000, 250);
  } finally {
    await watch.stop();
    await rawClient().delete(`/api/v1/namespaces/${served}/pods/watch-control-2`).catch(() => undefined);
  }
  expect({ pods: watch.seen.get(runId)!.size, restarts: watch.maxRestarts() >= 1 }).toEqual({ pods: 2, restarts: true });
});

test('upgrade: rolling to a new image tag while runs are live restarts no sidecar and releases no run twice', async () => {
  await waitTwoReady();
  const runs = await Promise.all([createRun(served, sleepyRun('live-a', 45)), createRun(served, sleepyRun('live-b', 45))]);
  const daemons = await Promise.all(runs.map(waitStartedWithDaemon));
  // Every daemon pod (and its restart count) each run has, all through the upgrade and until the
  // runs end (the watch's negative control is the test before this one).
  const watch = watchDaemonPods(runs.map((r) => r.metadata.annotations[ANNOTATIONS.runId]));
  const t0 = Date.now();
  // The README's upgrade: synth with the new image, apply, wait for the rollout.
  synth(upgradeRef);
  own.kubectl(README_INSTALL.apply(dist));
  own.kubectl([...README_INSTALL.rollout]);
  numbers.upgradeRolloutMs = Date.now() - t0;
  const pods = await waitTwoReady();
  expect(pods.map((p) => p.spec.containers[0].image)).toEqual([upgradeRef, upgradeRef]);
  await eventually('a replica of the new version holding the Lease', async () => pods.map((p) => p.metadata.name).includes((await lease()).spec.holderIdentity), 60_000, 250);
  const done = await Promise.all(runs.map((r) => waitRunDone(served, r.metadata.name, 240_000)));
  await watch.stop();
  for (const d of done) expect(succeededCondition(d)).toMatchObject({ status: 'True' });
  for (const [runId, uids] of watch.seen) expect({ runId, pods: [...uids] }).toEqual({ runId, pods: [daemons.find((d) => d.metadata.labels[LABELS.runId] === runId)!.metadata.uid] });
  expect(watch.maxRestarts()).toBe(0);
  for (const r of runs) expect({ run: r.metadata.name, releases: releases(r.metadata.name) }).toEqual({ run: r.metadata.name, releases: 1 });
  for (const r of runs) await eventually('the run\'s daemon gone', async () => (await daemonPods(r.metadata.annotations[ANNOTATIONS.runId])).length === 0, 60_000, 250);
});

test('uninstall: deleting the bundle leaves no webhook configuration that blocks PipelineRun creation; a live run keeps its sidecars until it is deleted', async () => {
  await waitTwoReady();
  const live = await createRun(served, sleepyRun('at-uninstall', 20));
  const liveId = live.metadata.annotations[ANNOTATIONS.runId];
  await waitStartedWithDaemon(live);
  // And a run still gated: its sidecar never gets Ready (an image the node does not have).
  await createSidecar(served, 'never', { kind: 'Container', template: { containers: [{ name: 'c', image: 'pipeline-sidecars.local/absent:1', ports: [{ name: 'p', containerPort: 8080 }] }] } });
  const gated = await createRun(served, { metadata: { generateName: 'gated-at-uninstall-', annotations: { [ANNOTATIONS.sidecars]: 'never' } }, spec: { pipelineSpec: { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: DOCKER_CLI, script: 'echo ok' }] } }] } } });
  expect(gated.spec.status).toBe('PipelineRunPending');
  const t0 = Date.now();
  // The README's uninstall.
  own.kubectl(README_INSTALL.uninstall(dist));
  numbers.uninstallMs = Date.now() - t0;
  const mwcs = (await rawClient().get('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations')).items;
  expect(mwcs.filter((c: any) => c.webhooks?.some((w: any) => w.clientConfig?.service?.namespace === OP_NS) || c.metadata.name === NAME)).toEqual([]);
  expect((await rawClient().get('/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies')).items.filter((p: any) => p.metadata.name === NAME)).toEqual([]);
  expect(await rawClient().getOrUndefined(`/api/v1/namespaces/${OP_NS}`)).toBeUndefined();
  // A run asking for a sidecar by annotation is created as it is: not refused, not gated; Tekton runs it.
  const after = await createRun(served, { ...sleepyRun('after', 0), metadata: { generateName: 'after-', annotations: { [ANNOTATIONS.sidecars]: 'docker' } }, spec: { pipelineSpec: { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: DOCKER_CLI, script: 'echo ok' }] } }] } } });
  expect(after.spec.status).toBeUndefined();
  expect(after.metadata.annotations[ANNOTATIONS.runId]).toBeUndefined();
  expect(succeededCondition(await waitRunDone(served, after.metadata.name, 120_000))).toMatchObject({ status: 'True' });
  // The CRD went with the bundle, and every PipelineSidecar with it.
  expect(await rawClient().getOrUndefined('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pipelinesidecars.pipeline-sidecars.dev')).toBeUndefined();
  // The gated run stays pending (nobody releases it any more) until its owner releases it, as the
  // README says. Nobody could: no operator pod is left anywhere in the cluster.
  await eventually('no operator pod left', async () => (await rawClient().get('/api/v1/pods', { labelSelector: SELECTOR })).items.length === 0, 60_000, 250);
  const stillGated = await rawClient().get(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns/${gated.metadata.name}`);
  expect({ status: stillGated.spec.status, startTime: stillGated.status?.startTime }).toEqual({ status: 'PipelineRunPending', startTime: undefined });
  own.kubectl(['-n', served, 'patch', 'pipelinerun', gated.metadata.name, '--type', 'json', '-p', '[{"op":"remove","path":"/spec/status"}]']);
  expect(succeededCondition(await waitRunDone(served, gated.metadata.name, 120_000))).toMatchObject({ status: 'True' });
  // The live run: Tekton finishes it with its daemon; nobody cleans the daemon up at the end any more,
  // but it is owned by the run, so deleting the run removes it (the README says so).
  expect(succeededCondition(await waitRunDone(served, live.metadata.name, 120_000))).toMatchObject({ status: 'True' });
  // What would clean up at the end is the operator, and no operator pod is left (checked above).
  expect((await rawClient().get('/api/v1/pods', { labelSelector: SELECTOR })).items).toEqual([]);
  expect(await objectsOfRun(served, liveId)).toContain(`Deployment/docker-${liveId}`);
  await rawClient().delete(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns/${live.metadata.name}`);
  await eventually('the live run\'s sidecar objects garbage-collected', async () => (await objectsOfRun(served, liveId)).length === 0 && (await daemonPods(liveId)).length === 0, 120_000, 500);
});

test('installed in Argo CD\'s sync-wave order (the webhook configuration last, once the operator is up), the operator still fills in its caBundle and gates runs', async () => {
  // What an Argo CD sync of dist/ does: one wave at a time, each after the previous one is healthy.
  const waves = new Map<number, Array<Record<string, any>>>();
  for (const o of bundle()) {
    const w = Number(o.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
    waves.set(w, [...(waves.get(w) ?? []), o]);
  }
  expect([...waves.keys()].sort((a, b) => a - b)).toEqual([-2, -1, 0, 1]);
  expect(waves.get(1)!.map((o) => o.kind)).toEqual(['MutatingWebhookConfiguration']);
  for (const w of [...waves.keys()].sort((a, b) => a - b)) {
    const file = path.join(os.tmpdir(), `pipeline-sidecars-wave-${process.pid}-${w}.json`);
    fs.writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: waves.get(w) }));
    try {
      own.kubectl(['apply', '--server-side', '-f', file]);
    } finally {
      fs.rmSync(file);
    }
    if (w === 0) {
      own.kubectl([...README_INSTALL.rollout]);
      await waitTwoReady();
    }
  }
  await eventually('the caBundle filled in by the running operator', async () => {
    const cfg = await rawClient().get(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${NAME}`);
    return cfg.webhooks.length > 0 && cfg.webhooks.every((w: any) => (w.clientConfig.caBundle ?? '').length > 100);
  }, 30_000, 250);
  // The uninstall deleted the CRD, and with it every PipelineSidecar: the user's own objects come back with their repo.
  await createSidecar(served, 'docker', dockerDaemonSpec());
  // The API server picks up a new webhook configuration a moment later: dry runs until it gates.
  const body = { apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', ...sleepyRun('waves', 0) };
  await eventually('the webhook in use (a dry-run CREATE gated)', async () =>
    (await rawClient().create(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns`, body, { dryRun: 'All' })).spec.status === 'PipelineRunPending', 30_000, 500);
  const run = await createRun(served, sleepyRun('waves', 0));
  expect(run.spec.status).toBe('PipelineRunPending');
  expect(succeededCondition(await waitRunDone(served, run.metadata.name, 180_000))).toMatchObject({ status: 'True' });
  own.kubectl(README_INSTALL.uninstall(dist));
});
