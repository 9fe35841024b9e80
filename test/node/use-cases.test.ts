import { LABELS } from '../../constructs/api/spec';
import { deploymentReady } from '../../src/readiness';
import { rawClient } from '../../platform/cluster';
import { podLog } from '../../platform/node';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';
import { BUSYBOX, podOnNode, runPod } from '../../platform/node-pods';
import type { TestNode } from '../../platform/node-shared';
import { succeededCondition } from '../../src/pipelinerun';
import { createRun, createSidecar, eventually, ServedOperator } from '../operator/helpers';
import { TektonOnNode, tektonOnNode } from './tekton-fixture';
import { applyExample, FinishedRun, mustSucceed, say, seconds, sidecarContainers, stampAfter, stampMs, startRun, waitFinished, waitSidecarsGone } from './use-cases-fixture';

/**
 * Every use case TEP-0130 names, each run from its examples/ directory as written, by the real
 * Tekton on the real node: a matrix of builds on one daemon, containers brought up and tested
 * together, a push only after the tests passed, a client-only sidecar holding a lease, and sidecars
 * of three kinds in one run. Times go to stderr, prefixed [use-cases].
 */
jest.setTimeout(600_000);

let node: TestNode;
let fx: ServedOperator;
let setup: TektonOnNode;
beforeAll(async () => {
  setup = await tektonOnNode('node-uses');
  ({ node, fx } = setup);
}, NODE_SETUP_TIMEOUT_MS);

afterAll(() => setup?.stop(), 120_000);

const unique = () => Math.random().toString(36).slice(2, 10);
const withParams = (run: Record<string, any>, params: Array<{ name: string; value: string }>) => ({ ...run, spec: { ...run.spec, params } });

it('matrix: three builds of one run overlap in time on its one daemon, all find the base stage built once in its cache, and all their images are listed on it', async () => {
  const ns = fx.ns;
  const done = await waitFinished(node, ns, await startRun(ns, await applyExample(ns, 'matrix')));
  mustSucceed(done);
  const builds = done.logs('build', 'build');
  expect(builds).toHaveLength(3);
  const spans = builds.map((log) => ({ start: stampAfter(log, 'build-start'), end: stampAfter(log, 'build-end'), variant: /^build-start .* (\w+)$/m.exec(log)?.[1] }));
  const first = Math.min(...spans.map((s) => s.start));
  // All three were building at one moment: the last to start started before the first to end ended.
  const overlap = Math.min(...spans.map((s) => s.end)) - Math.max(...spans.map((s) => s.start));
  say(`matrix: created -> Succeeded ${seconds(done.ms)}; builds (start after the first, duration): ` +
    `${spans.map((s) => `${s.variant} +${seconds(s.start - first)} ${seconds(s.end - s.start)}`).join(', ')}; all three at once for ${seconds(overlap)}`);
  expect(overlap).toBeGreaterThan(0);
  // The base stage's RUN step: executed by the base task, taken from the daemon's cache by every build.
  const baseRun = (log: string) => {
    const m = /^#(\d+) \[base 2\/2\] RUN /m.exec(log);
    return m ? new RegExp(`^#${m[1]} (CACHED|DONE)`, 'm').exec(log)?.[1] : undefined;
  };
  expect(baseRun(done.log('base', 'build'))).toBe('DONE');
  expect(builds.map(baseRun)).toEqual(['CACHED', 'CACHED', 'CACHED']);
  const images = done.log('images', 'list');
  for (const v of ['alpha', 'beta', 'gamma']) {
    expect(images).toMatch(new RegExp(`^matrix/app-${v}:latest `, 'm'));
    expect(images).toContain(`matrix/app-${v}: on the base layers, prints ${v}`);
  }
});

it('compose: a task brings up two containers on the run\'s daemon, the next task tests them together by name, and they are stopped with the daemon when the run ends', async () => {
  const ns = fx.ns;
  const message = `hello-${unique()}`;
  const started = await startRun(ns, withParams(await applyExample(ns, 'compose'), [{ name: 'message', value: message }]));
  const dind = await sidecarContainers(ns, started.runId, 1);
  const done = await waitFinished(node, ns, started);
  mustSucceed(done);
  const up = done.log('up', 'up');
  expect(up).toMatch(/^backend Up .* app$/m);
  expect(up).toMatch(/^frontend Up .* app$/m);
  // The backend's message (this run's own) came through the frontend, each found by name.
  const test = done.log('integration-test', 'test');
  expect(test).toContain(`frontend got: ${message}`);
  expect(test).toMatch(/^PASS$/m);
  const ended = Date.now();
  await waitSidecarsGone(node, ns, started.runId, dind);
  say(`compose: created -> Succeeded ${seconds(done.ms)}; the daemon (and the containers in it) stopped ${seconds(Date.now() - ended)} after`);
});

it('push after test: a failing test skips the push and leaves the run\'s registry empty; a passing one pushes to it, and a later task pulls the image by digest and runs it', async () => {
  const ns = fx.ns;
  const run = await applyExample(ns, 'push-after-test');
  // Negative control: the same pipeline, with a test that expects something else.
  const failed = await waitFinished(node, ns, await startRun(ns, withParams(run, [{ name: 'expected', value: 'something else' }])));
  if (succeededCondition(failed.run).status !== 'False') throw new Error(`the failing run did not fail: ${JSON.stringify(succeededCondition(failed.run))}\n${failed.dump()}`);
  expect(failed.log('test', 'test')).toContain('FAIL: expected: something else');
  expect((failed.run.status.skippedTasks ?? []).map((t: any) => t.name).sort()).toEqual(['push', 'run-pushed']);
  expect(failed.log('catalog', 'catalog')).toContain('catalog: {"repositories":[]}');

  const done = await waitFinished(node, ns, await startRun(ns, run));
  mustSucceed(done);
  const pushed = /^pushed (\S+@sha256:[0-9a-f]{64})$/m.exec(done.log('push', 'push'))?.[1] ?? '';
  expect(pushed.startsWith(`push-registry-${done.runId}.${ns}.svc:5000/app@sha256:`)).toBe(true);
  const ran = done.log('run-pushed', 'run');
  expect(ran).toContain(`Downloaded newer image for ${pushed}`);
  expect(ran).toContain('the pushed image printed: hello from the app');
  expect(done.log('catalog', 'catalog')).toContain('catalog: {"repositories":["app"]}');
  say(`push-after-test: failing test, created -> Failed ${seconds(failed.ms)}; passing, created -> Succeeded ${seconds(done.ms)}`);
});

/**
 * How late a heartbeat may come after the run's completion: the operator deletes the sidecar on the
 * run's done event, with its sweep (2 s in these tests) as the backstop; the kubelet then sends
 * SIGTERM, and kills at the end of the grace period (30 s, the default: kind Container sets none);
 * a heartbeat already on its way takes at most wget's timeout (2 s) plus one period (1 s).
 */
const HEARTBEAT_STOP_BOUND_MS = 2_000 + 30_000 + 2_000 + 1_000;

it('lease: a client-only Container sidecar (the CRD demands a port, so it names one nothing listens on) renews a lease from before the first task through finally, and stops within the stated bound after the run', async () => {
  const ns = fx.ns;
  // The CRD refuses a Container without ports, which is why the example names an unused one.
  const portless = { kind: 'Container', template: { containers: [{ name: 'c', image: BUSYBOX }] } };
  await expect(createSidecar(ns, 'portless', portless)).rejects.toThrow(/spec.ports is required for this kind/);
  await expect(createSidecar(ns, 'portless', { ...portless, ports: [] })).rejects.toThrow(/spec.ports is required for this kind/);

  const run = await applyExample(ns, 'lease');
  await eventually('the lease server Ready', async () => deploymentReady(await rawClient().get(`/apis/apps/v1/namespaces/${ns}/deployments/lease-server`)), 120_000, 200);
  const started = await startRun(ns, run);
  const containers = await sidecarContainers(ns, started.runId, 1);
  // The policy of a pod that only dials out (read while the run lives): ingress from the run only, on the unused port; egress open.
  const [policy] = (await rawClient().get(`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`, { labelSelector: `${LABELS.runId}=${started.runId}` })).items;
  expect(policy.spec.policyTypes).toEqual(['Ingress']);
  expect(policy.spec.ingress.map((r: any) => r.ports)).toEqual([[{ port: 9, protocol: 'TCP' }]]);
  const done = await waitFinished(node, ns, started);
  mustSucceed(done);
  const completed = Date.parse(done.run.status.completionTime);
  const stopped = await waitSidecarsGone(node, ns, started.runId, containers);

  // Read once the heartbeat container is stopped: no heartbeat of this run can come after.
  const serverPod = (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'app=lease-server' })).items[0];
  const serverLog = podLog(node.state, ns, serverPod.metadata.name, 'server');
  const beats = serverLog.split('\n').filter((l) => l.includes(` heartbeat ${done.name} `)).map(stampMs);
  expect(beats.length).toBeGreaterThan(2);
  const useStart = stampAfter(done.log('use-resource', 'use'), 'use-start');
  const release = done.log('release', 'release');
  const [releaseStart, releaseEnd] = [stampAfter(release, 'release-start'), stampAfter(release, 'release-end')];
  expect(serverLog).toContain(` release ${done.name}`);
  // Held before the first task started, renewed while the finally task ran, stopped soon after the end.
  expect(beats[0]).toBeLessThan(useStart);
  expect(beats.filter((t) => t >= releaseStart && t <= releaseEnd).length).toBeGreaterThan(0);
  const last = Math.max(...beats);
  say(`lease: created -> Succeeded ${seconds(done.ms)}; ${beats.length} heartbeats, first ${seconds(useStart - beats[0])} before the first task, ` +
    `last ${seconds(last - completed)} after completion (bound ${seconds(HEARTBEAT_STOP_BOUND_MS)}); container stopped ${seconds(stopped - completed)} after completion`);
  expect(last - completed).toBeLessThanOrEqual(HEARTBEAT_STOP_BOUND_MS);
});

/** Tries a TCP connection to each `name=ip:port` 4 times, at once; prints "name CONNECTED" or "name REFUSED". */
function probeAll(targets: string[]): string {
  const probe = 'probe() { i=0; while [ $i -lt 4 ]; do i=$((i+1)); if timeout 3 nc "$2" "$3" -e true; then echo "$1 CONNECTED"; return; fi; sleep 1; done; echo "$1 REFUSED"; }';
  return `${probe}\n${targets.map((t) => { const [name, addr] = t.split('='); return `probe ${name} ${addr.replace(':', ' ')} &`; }).join('\n')}\nwait`;
}

it('multi-kind: DockerDaemon, Postgres and Registry in one run are all Ready before its first TaskRun, its tasks use all three, and a pod of another run cannot connect to any while one of this run can', async () => {
  const ns = fx.ns;
  const run = await applyExample(ns, 'multi-kind');
  const deployments = async (runId: string) => (await rawClient().get(`/apis/apps/v1/namespaces/${ns}/deployments`, { labelSelector: `${LABELS.runId}=${runId}` })).items;
  const started = await startRun(ns, run);
  // Samples until the first TaskRun: TaskRuns read first, so a TaskRun seen beside a sidecar that is
  // not Ready means one existed while that sidecar was not Ready.
  const samples: Array<{ taskRuns: number; ready: string[] }> = [];
  const readyAt: Record<string, number> = {};
  let firstTaskRun = 0;
  await eventually('the first TaskRun', async () => {
    const taskRuns = (await rawClient().get(`/apis/tekton.dev/v1/namespaces/${ns}/taskruns`, { labelSelector: `tekton.dev/pipelineRun=${started.name}` })).items.length;
    const ready = (await deployments(started.runId)).filter(deploymentReady).map((d: any) => d.metadata.labels[LABELS.sidecar]).sort();
    for (const s of ready) readyAt[s] ??= Date.now() - started.created;
    samples.push({ taskRuns, ready });
    if (taskRuns > 0) firstTaskRun = Date.now() - started.created;
    return taskRuns > 0;
  }, 300_000, 100);
  const all = ['multi-docker', 'multi-postgres', 'multi-registry'];
  expect(samples.filter((s) => s.taskRuns > 0).map((s) => s.ready)).toEqual([all]);
  // Not vacuous: the run was seen held while some sidecar was not Ready yet.
  expect(samples.some((s) => s.taskRuns === 0 && s.ready.length < 3)).toBe(true);
  const done = await waitFinished(node, ns, started);
  mustSucceed(done);
  const verify = done.log('verify', 'run');
  expect(done.log('verify', 'query')).toMatch(new RegExp(`^the database says: multi-registry-${done.runId}\\.${ns}\\.svc:5000/app@sha256:[0-9a-f]{64}$`, 'm'));
  expect(verify).toContain('the registry serves multi-registry-');
  expect(verify).toContain(`the daemon runs it: built by ${done.name}`);
  say(`multi-kind: created -> Succeeded ${seconds(done.ms)}; Ready after create: ${all.map((s) => `${s} ${seconds(readyAt[s])}`).join(', ')}; ` +
    `first TaskRun seen ${seconds(firstTaskRun)} after create`);

  // Isolation, on a second run of the example held pending by its author (the operator provisions
  // its sidecars and leaves the release to the author): its sidecars stay up while others knock.
  const held = await startRun(ns, { ...run, spec: { ...run.spec, status: 'PipelineRunPending' } });
  await eventually('the held run\'s three sidecars Ready', async () => (await deployments(held.runId)).filter(deploymentReady).length === 3, 300_000, 200);
  const services = (await rawClient().get(`/api/v1/namespaces/${ns}/services`, { labelSelector: `${LABELS.runId}=${held.runId}` })).items;
  const targets = services.map((s: any) => `${s.metadata.labels[LABELS.sidecar]}=${s.spec.clusterIP}:${s.spec.ports[0].port}`);
  expect(targets).toHaveLength(3);
  const script = probeAll(targets);
  const other = await createRun(ns, { metadata: { generateName: 'other-' }, spec: { pipelineSpec: { tasks: [{ name: 'knock', taskSpec: { steps: [{ name: 'knock', image: BUSYBOX, script }] } }] } } });
  const knocked = await waitFinished(node, ns, { name: other.metadata.name, runId: '', created: Date.now() });
  mustSucceed(knocked);
  // Negative control: the same probes from a pod carrying the held run's uid, as Tekton labels its task pods.
  const heldUid = (await rawClient().get(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${held.name}`)).metadata.uid;
  const own = podOnNode(node.state, `own-${unique()}`, script, { labels: { 'tekton.dev/pipelineRunUID': heldUid } });
  const { pod } = await runPod(rawClient(), ns, own, ['Succeeded', 'Failed'], 120_000);
  const ownLog = podLog(node.state, ns, pod.metadata.name, 'main');
  for (const s of all) {
    expect(knocked.log('knock', 'knock')).toMatch(new RegExp(`^${s} REFUSED$`, 'm'));
    expect(ownLog).toMatch(new RegExp(`^${s} CONNECTED$`, 'm'));
  }
  // Released by its author, the held run's own tasks then use all three.
  await rawClient().jsonPatch(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${held.name}`, [{ op: 'remove', path: '/spec/status' }]);
  const heldDone: FinishedRun = await waitFinished(node, ns, held);
  mustSucceed(heldDone);
  expect(heldDone.log('verify', 'run')).toContain(`the daemon runs it: built by ${held.name}`);
});
