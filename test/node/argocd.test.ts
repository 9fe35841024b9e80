import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { ANNOTATIONS } from '../../constructs/api/spec';
import { collectionPath } from '../../src/k8s/resources';
import { createTestNamespace, eventually, rawClient, testKubeConfig } from '../../platform/cluster';
import { podLog } from '../../platform/node';
import { OperatorImage, OwnCluster, buildDerivedOperatorImage, ensureKubectl, importImage, startOwnCluster } from '../../platform/in-cluster';
import { succeededCondition } from '../../src/pipelinerun';
import { taskPodsOf, waitRunDone } from '../../platform/runs';
import { createRun, dockerDaemonSpec, objectsOfRun } from '../operator/helpers';
import { tepPipelineSpec } from './tekton-fixture';
import { ARGOCD_NAMESPACE, ArgoCd, HEALTH_CM_PATCH, HEALTH_KEY, ensureArgoCd } from '../../platform/argocd';
import { RefreshTaken, appPath, appSummary, exampleApplication, readApp, refresh, resourceHealth, waitSyncedHealthy } from '../../platform/argocd-app';
import { GitRepo } from '../../platform/argocd-git';
import { DIST, objectsOf, platformRepoContent, waveOf } from '../../platform/argocd-platform-repo';
import { GITOPS_EXAMPLE, GITOPS_FILES, installGitopsRepo } from '../package/gitops-scratch';
import { packTarball } from '../package/scratch-project';
import {
  fetchingRun, isReady, releases, runIdOf, sidecarPods, sleepyDockerRun, sleepyRun, waitStartedWithSidecar, watchSidecarPods,
} from './argocd-runs';
import { EventRecorder } from '../../platform/argocd-watch';

/**
 * A real Argo CD (built from its Go module, scripts/argocd.sh) installs pipeline-sidecars from a
 * platform team's GitOps repository, on a cluster of this file's own with the real node and the
 * real Tekton: the example Application (examples/argocd-application.yaml, only its repoURL
 * changed) syncs the repository's dist/ (the bundle for the team's operator image, and the team's
 * PipelineSidecars, among them the custom-kind one of examples/gitops-repo), with the shipped
 * health check for PipelineSidecars (examples/argocd/argocd-cm.yaml) in argocd-cm. Every change
 * after that is a git commit, then a refresh as Argo CD's git webhook would ask for one. The team's
 * operator image is ours plus examples/gitops-repo's WebServer kinds module, built as that example
 * builds it (its Dockerfile.operator, in the example installed outside this repository with the
 * packed package).
 */
jest.setTimeout(900_000);

const OP_NS = 'pipeline-sidecars';
const NAME = 'pipeline-sidecars';
const APP = 'pipeline-sidecars';
const BUNDLE_SELECTOR = 'app.kubernetes.io/part-of=pipeline-sidecars';
const OPERATOR_PODS = 'app.kubernetes.io/name=pipeline-sidecars,app.kubernetes.io/component=operator';
const TRACKING = 'argocd.argoproj.io/tracking-id';
const BUSYBOX = 'pipeline-sidecars.local/busybox:1.38';

/** The team's Container-kind sidecar: a web server answering `greeting`. */
function greeter(greeting: string): Record<string, unknown> {
  return {
    kind: 'Container',
    template: {
      containers: [{
        name: 'web', image: BUSYBOX, imagePullPolicy: 'Never', env: [{ name: 'GREETING', value: greeting }],
        command: ['sh', '-c', 'mkdir -p /tmp/www && echo "$GREETING" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www'],
        ports: [{ name: 'http', containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
      }],
    },
  };
}
/**
 * The team's custom-kind PipelineSidecar: the WebServer one of examples/gitops-repo's committed
 * dist/, its spec as shipped (test/package/gitops-repo.test.ts checks that dist/ is what the
 * example synthesizes).
 */
const WEB_SERVER = ((): { name: string; spec: Record<string, any> } => {
  const file = path.resolve(__dirname, '..', '..', GITOPS_EXAMPLE, 'dist', GITOPS_FILES.sidecars);
  const found = parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS()).filter((d) => d?.spec?.kind === 'WebServer');
  if (found.length !== 1) throw new Error(`${file} must hold one WebServer PipelineSidecar, not ${found.length}`);
  return { name: found[0].metadata.name, spec: found[0].spec };
})();
/** A sidecar whose pod never gets Ready (an image the node does not have): runs that ask for it stay gated. */
const NEVER_READY = {
  kind: 'Container', lifecycle: { startupTimeout: '30m' },
  template: { containers: [{ name: 'c', image: 'pipeline-sidecars.local/absent:1', ports: [{ name: 'p', containerPort: 8080 }] }] },
};

let image: OperatorImage;
let upgradeRef: string;
let own: OwnCluster;
let argo: ArgoCd;
let repo: GitRepo;
let served: string;
let head: string;
let tmp: string;
const numbers: Record<string, unknown> = {};
const controllerLog = () => argo.logFile('application-controller');

/** Commits the repository's content for `image` and `sidecars`, and asks Argo CD to look (unless told not to). */
async function push(message: string, imageRef: string, sidecars: Record<string, Record<string, unknown>>, opts: { refresh?: boolean } = {}): Promise<string> {
  head = repo.commit(DIST, platformRepoContent({ image: imageRef, servedNamespace: served, sidecars }), message);
  if (opts.refresh ?? true) await refresh(rawClient(), APP, 'normal', controllerLog());
  return head;
}
const sidecarsV1 = { 'docker': dockerDaemonSpec(), 'greeter': greeter('hello-v1'), 'never': NEVER_READY, [WEB_SERVER.name]: WEB_SERVER.spec };

async function operatorPods(): Promise<Array<Record<string, any>>> {
  return (await rawClient().get(`/api/v1/namespaces/${OP_NS}/pods`, { labelSelector: OPERATOR_PODS })).items.filter((p: any) => !p.metadata.deletionTimestamp);
}
/** Both replicas Ready on the Deployment's current template, running `imageRef`. */
async function waitRolledOut(imageRef: string, timeoutMs = 300_000): Promise<Array<Record<string, any>>> {
  return eventually(`both operator replicas Ready on ${imageRef}`, async () => {
    const dep = await rawClient().get(`/apis/apps/v1/namespaces/${OP_NS}/deployments/${NAME}`);
    const pods = await operatorPods();
    const s = dep.status ?? {};
    return dep.spec.template.spec.containers[0].image === imageRef && s.observedGeneration === dep.metadata.generation &&
      s.updatedReplicas === 2 && s.readyReplicas === 2 && s.replicas === 2 && pods.length === 2 && pods.every(isReady) &&
      pods.every((p) => p.spec.containers[0].image === imageRef) ? pods : undefined;
  }, timeoutMs, 250);
}
const released = (runName: string) => releases(own.cp.state.auditLog, served, runName);

describe('the shipped health check, run by Argo CD\'s own Lua engine (argocd admin settings resource-overrides health)', () => {
  let argocd: string;
  beforeAll(() => { argocd = path.join(ensureArgoCd(true).binDir, 'argocd'); }, 1_800_000);

  /** What Argo CD says of `status` on a PipelineSidecar of generation 2, with examples/argocd/argocd-cm.yaml as its argocd-cm. */
  function health(status: Record<string, unknown> | undefined): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-sidecars-health-'));
    try {
      const file = path.join(dir, 'psc.yaml');
      fs.writeFileSync(file, stringify({ apiVersion: 'pipeline-sidecars.dev/v1alpha1', kind: 'PipelineSidecar', metadata: { name: 'x', namespace: 'ci', generation: 2 }, spec: { kind: 'Container' }, ...(status ? { status } : {}) }));
      const r = spawnSync(argocd, ['admin', 'settings', 'resource-overrides', 'health', file, '--argocd-cm-path', HEALTH_CM_PATCH],
        { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir } });
      if (r.status !== 0) throw new Error(`argocd admin: exit ${r.status}\n${r.stdout}${r.stderr}`);
      return r.stdout.trim();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const cond = (type: string, s: string, reason: string, message: string, gen = 2) => ({ type, status: s, reason, message, observedGeneration: gen });
  const valid = cond('Valid', 'True', 'SpecValid', 'the spec is valid');

  test.each([
    ['no status yet', undefined, 'STATUS: Progressing\nMESSAGE: waiting for the operator to check this spec'],
    ['a status of an older generation', { observedGeneration: 1, conditions: [valid, cond('Ready', 'True', 'Ready', 'ok', 1)] }, 'STATUS: Progressing\nMESSAGE: waiting for the operator to check this spec'],
    ['Valid=False', { observedGeneration: 2, conditions: [cond('Valid', 'False', 'SpecInvalid', 'spec.bogus: unknown field'), cond('Ready', 'False', 'SpecInvalid', 'see Valid')] },
      'STATUS: Degraded\nMESSAGE: SpecInvalid: spec.bogus: unknown field'],
    ['Ready=False (PrivilegeNotAllowed)', { observedGeneration: 2, conditions: [valid, cond('Ready', 'False', 'PrivilegeNotAllowed', 'refused: privileged')] },
      'STATUS: Degraded\nMESSAGE: PrivilegeNotAllowed: refused: privileged'],
    ['Ready=Unknown (CheckFailed)', { observedGeneration: 2, conditions: [valid, cond('Ready', 'Unknown', 'CheckFailed', 'boom')] }, 'STATUS: Degraded\nMESSAGE: CheckFailed: boom'],
    ['no Ready condition yet', { observedGeneration: 2, conditions: [valid] }, 'STATUS: Progressing\nMESSAGE: waiting for the operator to report Ready for this spec'],
    ['Ready=True', { observedGeneration: 2, conditions: [valid, cond('Ready', 'True', 'Ready', 'runs get it')] }, 'STATUS: Healthy\nMESSAGE: Ready: runs get it'],
  ])('%s', (_what, status, expected) => {
    expect(health(status)).toBe(expected);
  });
});

describe('a real Argo CD syncs the platform team\'s GitOps repository (real node, real Tekton)', () => {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-argocd-'));
    const t0 = Date.now();
    const gitops = installGitopsRepo(path.join(tmp, 'ci-platform'), packTarball(tmp));
    gitops.build();
    image = buildDerivedOperatorImage(gitops.dir, path.join(gitops.dir, 'Dockerfile.operator'), 'pipeline-sidecars.local/operator-with-web-server', path.join(tmp, 'image'));
    numbers.teamOperatorImageMs = Date.now() - t0;
    upgradeRef = `${image.ref}-next`;
    const kubectlPath = ensureKubectl();
    ensureArgoCd(true);
    own = await startOwnCluster(kubectlPath);
    // Nothing is pulled: the node gets the image as it gets its own images. The upgrade's tag names the same build.
    importImage(own, image, [upgradeRef]);
    served = await createTestNamespace('gitops-ci');
    argo = await ArgoCd.start({ kubeconfig: own.kubeconfig, kubectl: own.kubectl, verbose: true });
    numbers.argocdWarmStart = { crdEstablishedMs: argo.state.crdEstablishedMs, processesReadyMs: argo.state.processesReadyMs };
    process.stderr.write(`[argocd] warm start: CRDs established in ${argo.state.crdEstablishedMs} ms, processes serving ${argo.state.processesReadyMs} ms after start\n`);
    repo = GitRepo.init();
    head = await push('pipeline-sidecars for the ci namespace', image.ref, sidecarsV1, { refresh: false });
  }, 1_800_000);

  afterAll(async () => {
    process.stderr.write(`[argocd] ${JSON.stringify(numbers)}\n`);
    const errors: string[] = [];
    if (argo) errors.push(...await argo.stop());
    rawClient().close();
    repo?.remove();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    await own?.stop();
    if (errors.length) throw new Error(`Argo CD left things behind:\n  ${errors.join('\n  ')}`);
  }, 180_000);

  test('the example Application syncs the repository\'s dist/ wave by wave (the webhook configuration once the operator is healthy) and becomes Synced and Healthy', async () => {
    const objects = objectsOf(platformRepoContent({ image: image.ref, servedNamespace: served, sidecars: sidecarsV1 }));
    const bundle = objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/part-of'] === 'pipeline-sidecars');
    const collections = Object.fromEntries(bundle.map((o) => [o.kind, collectionPath(o.apiVersion, o.kind)]));
    const recorder = await EventRecorder.start(testKubeConfig(), collections, { labelSelector: BUNDLE_SELECTOR });
    const { text } = exampleApplication(repo.url);
    const appFile = path.join(repo.root, 'application.yaml');
    fs.writeFileSync(appFile, text);
    const t0 = Date.now();
    let app: Record<string, any>;
    try {
      own.kubectl(['apply', '-f', appFile]);
      app = await waitSyncedHealthy(rawClient(), APP, head, 600_000);
      numbers.createdToSyncedHealthyMs = Date.now() - t0;
    } finally {
      recorder.stop();
    }
    expect(recorder.failures).toEqual([]);
    // Each wave was written only after every object of the waves before it.
    const created = bundle.map((o) => ({ o, wave: waveOf(o), rv: recorder.created(o.kind, o.metadata.name, o.metadata.namespace) }));
    expect(created.filter((c) => c.rv === undefined).map((c) => `${c.o.kind}/${c.o.metadata.name}`)).toEqual([]);
    const waves = [...new Set(created.map((c) => c.wave))].sort((a, b) => a - b);
    expect(waves).toEqual([-2, -1, 0, 1]);
    const timeline: Record<string, number> = {};
    for (let i = 1; i < waves.length; i++) {
      const before = Math.max(...created.filter((c) => c.wave === waves[i - 1]).map((c) => c.rv!));
      const after = Math.min(...created.filter((c) => c.wave === waves[i]).map((c) => c.rv!));
      expect({ wave: waves[i], createdAfterWaveBefore: after > before }).toEqual({ wave: waves[i], createdAfterWaveBefore: true });
    }
    for (const w of waves) {
      const rvs = new Set(created.filter((c) => c.wave === w).map((c) => c.rv));
      timeline[`wave${w}`] = Math.min(...recorder.events.filter((e) => rvs.has(e.rv)).map((e) => e.at)) - t0;
    }
    // The webhook configuration (wave 1) was created only once the operator's Deployment was healthy.
    const healthy = recorder.of('Deployment', NAME, OP_NS).find((e) => {
      const s = e.object.status ?? {};
      return s.observedGeneration === e.object.metadata.generation && s.updatedReplicas === 2 && s.availableReplicas === 2;
    });
    expect(healthy).toBeDefined();
    expect(healthy!.rv).toBeLessThan(recorder.created('MutatingWebhookConfiguration', NAME)!);
    timeline.operatorHealthy = healthy!.at - t0;
    numbers.syncTimeline = timeline;
    process.stderr.write(`[argocd] Application created -> Synced and Healthy in ${numbers.createdToSyncedHealthyMs} ms (first write per wave and operator healthy, ms after create: ${JSON.stringify(timeline)})\n`);
    // Argo CD wrote them: every object of the repository carries its tracking annotation for this
    // Application, but the CRD (Argo CD puts none on CRDs; it lists it among the Application's resources).
    for (const o of objects.filter((x) => x.kind !== 'CustomResourceDefinition')) {
      const live = await rawClient().get(`${collectionPath(o.apiVersion, o.kind, o.metadata.namespace)}/${o.metadata.name}`);
      expect({ object: `${o.kind}/${o.metadata.name}`, tracking: live.metadata.annotations?.[TRACKING]?.split(':')[0] }).toEqual({ object: `${o.kind}/${o.metadata.name}`, tracking: APP });
    }
    expect(app!.status.resources.map((r: any) => `${r.kind}/${r.name}`).sort()).toEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort());
    await waitRolledOut(image.ref);
  });

  test('no drift: with the caBundle filled in by the operator, the Application stays Synced through 3 hard refreshes and runs no sync, with the example\'s ignoreDifferences only', async () => {
    const shipped = objectsOf(platformRepoContent({ image: image.ref, servedNamespace: served, sidecars: sidecarsV1 })).find((o) => o.kind === 'MutatingWebhookConfiguration')!;
    expect(shipped.webhooks.every((w: any) => w.clientConfig.caBundle === undefined)).toBe(true);
    const mwcPath = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${NAME}`;
    // The live object differs from git: the operator filled the caBundle in.
    const caBundles = await eventually('the caBundle filled in by the operator', async () => {
      const cfg = await rawClient().get(mwcPath);
      return cfg.webhooks.every((w: any) => (w.clientConfig.caBundle ?? '').length > 100) ? cfg.webhooks.map((w: any) => w.clientConfig.caBundle) : undefined;
    }, 60_000, 250);
    const before = await readApp(rawClient(), APP);
    expect(before.spec.ignoreDifferences).toEqual(exampleApplication(repo.url).app.spec.ignoreDifferences);
    const taken: RefreshTaken[] = [];
    for (let i = 1; i <= 3; i++) {
      const t = await refresh(rawClient(), APP, 'hard', controllerLog());
      taken.push(t);
      // The controller compared the Application again for this request: it logged a hard refresh
      // for it, and its reconciledAt moved past the one before the request.
      expect({ refresh: i, logged: t.loggedRefreshes >= 1, advanced: Date.parse(t.reconciledAt) > Date.parse(t.reconciledAtBefore ?? '') })
        .toEqual({ refresh: i, logged: true, advanced: true });
      const app = await readApp(rawClient(), APP);
      expect({ refresh: i, ...appSummary(app) }).toMatchObject({ refresh: i, sync: 'Synced', health: 'Healthy', notSyncedOrHealthy: [] });
      expect(app.status.sync.revision).toBe(head);
    }
    numbers.hardRefreshes = taken.map((t) => ({ ms: t.ms, requests: t.requests, reconciledAt: t.reconciledAt }));
    process.stderr.write(`[argocd] hard refreshes: ${JSON.stringify(numbers.hardRefreshes)}\n`);
    const after = await readApp(rawClient(), APP);
    // No sync ran to make it so (a drift would have been self-healed by one), and the caBundle is as the operator wrote it.
    expect((after.status.history ?? []).length).toBe((before.status.history ?? []).length);
    expect(after.status.operationState.startedAt).toBe(before.status.operationState.startedAt);
    expect((await rawClient().get(mwcPath)).webhooks.map((w: any) => w.clientConfig.caBundle)).toEqual(caBundles);
  });

  test('a run asking for a PipelineSidecar Argo CD synced gets it and Succeeds (the TEP example, and one of the custom kind); the Container-kind and the custom-kind (WebServer) ones show Healthy in Argo CD through the shipped health check', async () => {
    // argocd-cm holds the shipped health check, byte for byte.
    const cm = await rawClient().get(`/api/v1/namespaces/${ARGOCD_NAMESPACE}/configmaps/argocd-cm`);
    expect(cm.data[HEALTH_KEY]).toBe(parse(fs.readFileSync(HEALTH_CM_PATCH, 'utf8')).data[HEALTH_KEY]);
    const app = await readApp(rawClient(), APP);
    for (const name of ['docker', 'greeter', WEB_SERVER.name]) {
      const psc = await rawClient().get(`/apis/pipeline-sidecars.dev/v1alpha1/namespaces/${served}/pipelinesidecars/${name}`);
      const ready = psc.status.conditions.find((c: any) => c.type === 'Ready');
      // The message is the Lua's (reason: message of Ready): Argo CD's default has no health for this kind at all.
      expect({ name, health: resourceHealth(app, 'PipelineSidecar', name, served) }).toEqual({ name, health: { status: 'Healthy', message: `${ready.reason}: ${ready.message}` } });
    }
    const marker = `tep-${Math.random().toString(36).slice(2, 10)}`;
    const t0 = Date.now();
    const run = await createRun(served, {
      metadata: { generateName: 'tep-', annotations: { [ANNOTATIONS.sidecars]: 'docker' } },
      spec: { pipelineSpec: tepPipelineSpec(marker), params: [{ name: 'image', value: `tep/app:${marker}` }], workspaces: [{ name: 'source', emptyDir: {} }] },
    });
    expect(run.spec.status).toBe('PipelineRunPending');
    const done = await waitRunDone(served, run.metadata.name, 300_000);
    numbers.tepCreatedToSucceededMs = Date.now() - t0;
    const pods = await taskPodsOf(served, run.metadata.name);
    const testPod = pods.find((p) => p.metadata.labels['tekton.dev/pipelineTask'] === 'docker-test');
    const testLog = podLog(own.node.state, served, testPod?.metadata.name ?? '-', 'step-test');
    expect({ run: succeededCondition(done), testLog }).toMatchObject({ run: { status: 'True' } });
    expect(testLog).toContain(`${marker} from-task-2`);
    expect(released(run.metadata.name)).toBe(1);
    await eventually('the run\'s sidecar objects gone', async () => (await objectsOfRun(served, runIdOf(run))).length === 0, 60_000, 250);

    // The custom kind, from the operator image built FROM ours: the run is held until its web server
    // is Ready, and its task fetches the page the example's spec gives it.
    const fetching = await createRun(served, fetchingRun('fetch', WEB_SERVER.name));
    expect(fetching.spec.status).toBe('PipelineRunPending');
    const server = await waitStartedWithSidecar(served, fetching);
    expect(server.spec.containers[0].image).toBe(WEB_SERVER.spec.webServer.image);
    const fetched = await waitRunDone(served, fetching.metadata.name, 180_000);
    const fetchPod = (await taskPodsOf(served, fetching.metadata.name))[0];
    const fetchLog = podLog(own.node.state, served, fetchPod?.metadata.name ?? '-', 'step-fetch');
    expect({ run: succeededCondition(fetched).status, fetchLog }).toEqual({ run: 'True', fetchLog: expect.stringContaining(`fetched: ${WEB_SERVER.spec.webServer.page}\n`) });
    expect(released(fetching.metadata.name)).toBe(1);
    await eventually('the fetching run\'s sidecar objects gone', async () => (await objectsOfRun(served, runIdOf(fetching))).length === 0, 60_000, 250);
  });

  test('upgrade by a git commit: Argo CD rolls the operator out to the new tag; a live run keeps its daemon pod (same uid, 0 restarts) and is released exactly once', async () => {
    const operatorBefore = (await waitRolledOut(image.ref)).map((p) => p.metadata.uid);
    const live = await createRun(served, sleepyDockerRun('live', 90));
    const daemon = await waitStartedWithSidecar(served, live);
    const watch = watchSidecarPods(served, [live]);
    const t0 = Date.now();
    const sha = await push('operator: new image tag', upgradeRef, sidecarsV1);
    const pods = await waitRolledOut(upgradeRef);
    numbers.upgradeCommitToRolledOutMs = Date.now() - t0;
    // The run's daemon pod once the new operator replicas are Ready (the watch below sees every one it had).
    const daemonAfter = (await sidecarPods(served, runIdOf(live))).map((p) => p.metadata.uid);
    await waitSyncedHealthy(rawClient(), APP, sha, 300_000);
    numbers.upgradeCommitToSyncedHealthyMs = Date.now() - t0;
    // The operator's pods were all replaced, on the new tag.
    expect(pods.map((p) => p.spec.containers[0].image)).toEqual([upgradeRef, upgradeRef]);
    expect(pods.filter((p) => operatorBefore.includes(p.metadata.uid))).toEqual([]);
    const done = await waitRunDone(served, live.metadata.name, 240_000);
    const seen = await watch.stop();
    numbers.upgradePodUids = { operatorBefore, operatorAfter: pods.map((p) => p.metadata.uid), daemonBefore: daemon.metadata.uid, daemonAfterRollout: daemonAfter, daemonSeen: seen.uids.get(runIdOf(live)) };
    process.stderr.write(`[argocd] upgrade: commit -> rolled out in ${numbers.upgradeCommitToRolledOutMs} ms, Synced and Healthy in ${numbers.upgradeCommitToSyncedHealthyMs} ms; pod uids ${JSON.stringify(numbers.upgradePodUids)}, daemon max restarts ${seen.maxRestarts}\n`);
    expect(succeededCondition(done)).toMatchObject({ status: 'True' });
    expect(daemonAfter.filter((uid) => uid !== daemon.metadata.uid)).toEqual([]);
    expect(seen.uids.get(runIdOf(live))).toEqual([daemon.metadata.uid]);
    expect(seen.maxRestarts).toBe(0);
    expect(released(live.metadata.name)).toBe(1);
  });

  test('a PipelineSidecar edited in git while a run uses it: the live run keeps what it got, the next run gets the new spec', async () => {
    const env = (p: any) => p.spec.containers[0].env.find((e: any) => e.name === 'GREETING')?.value;
    const live = await createRun(served, sleepyRun('greet-live', 'greeter', 90));
    const before = await waitStartedWithSidecar(served, live);
    expect(env(before)).toBe('hello-v1');
    const watch = watchSidecarPods(served, [live]);
    const sha = await push('greeter: new greeting', upgradeRef, { ...sidecarsV1, greeter: greeter('hello-v2') });
    await waitSyncedHealthy(rawClient(), APP, sha, 300_000);
    const psc = await eventually('the operator to have checked the new spec', async () => {
      const p = await rawClient().get(`/apis/pipeline-sidecars.dev/v1alpha1/namespaces/${served}/pipelinesidecars/greeter`);
      return p.status?.observedGeneration === p.metadata.generation ? p : undefined;
    }, 60_000, 250);
    expect(psc.spec.template.containers[0].env).toEqual([{ name: 'GREETING', value: 'hello-v2' }]);
    const next = await createRun(served, sleepyRun('greet-next', 'greeter', 1));
    const nextPod = await waitStartedWithSidecar(served, next);
    // The live run, still running after the edit reached the cluster and the next run got its sidecar, keeps the pod it had, saying v1.
    const liveNow = await rawClient().get(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns/${live.metadata.name}`);
    const livePods = await sidecarPods(served, runIdOf(live));
    expect({ done: succeededCondition(liveNow).status ?? 'running', pods: livePods.map((p) => ({ uid: p.metadata.uid, greeting: env(p) })) })
      .toEqual({ done: 'Unknown', pods: [{ uid: before.metadata.uid, greeting: 'hello-v1' }] });
    expect(env(nextPod)).toBe('hello-v2');
    const [liveDone, nextDone] = await Promise.all([waitRunDone(served, live.metadata.name, 180_000), waitRunDone(served, next.metadata.name, 180_000)]);
    const seen = await watch.stop();
    expect({ live: succeededCondition(liveDone).status, next: succeededCondition(nextDone).status }).toEqual({ live: 'True', next: 'True' });
    expect(seen.uids.get(runIdOf(live))).toEqual([before.metadata.uid]);
    expect(seen.maxRestarts).toBe(0);
  });

  test('self-heal: a hand edit to the operator Deployment is reverted by Argo CD; no run is lost or released twice', async () => {
    await waitRolledOut(upgradeRef);
    const depPath = `/apis/apps/v1/namespaces/${OP_NS}/deployments/${NAME}`;
    const inGit = (await rawClient().get(depPath)).spec.template.spec.containers[0].resources;
    const runs = await Promise.all([createRun(served, sleepyDockerRun('heal-a', 40)), createRun(served, sleepyDockerRun('heal-b', 40))]);
    const daemons = await Promise.all(runs.map((r) => waitStartedWithSidecar(served, r)));
    const watch = watchSidecarPods(served, runs);
    const before = await readApp(rawClient(), APP);
    const generation = (await rawClient().get(depPath)).metadata.generation;
    const t0 = Date.now();
    // The hand edit: a field that is in git.
    own.kubectl(['-n', OP_NS, 'set', 'resources', `deployment/${NAME}`, '-c', 'operator', '--limits=memory=600Mi']);
    const during = await createRun(served, sleepyDockerRun('heal-during', 1));
    const healed = await eventually('Argo CD to self-heal the Deployment', async () => {
      const app = await readApp(rawClient(), APP);
      const op = app.status.operationState;
      return op.startedAt !== before.status.operationState.startedAt && op.phase === 'Succeeded' && app.status.sync.status === 'Synced' ? app : undefined;
    }, 300_000, 250);
    await waitRolledOut(upgradeRef);
    numbers.selfHealMs = Date.now() - t0;
    const dep = await rawClient().get(depPath);
    // The edit took effect (a template change: generation up), and the template is git's again.
    expect(dep.metadata.generation).toBeGreaterThanOrEqual(generation + 2);
    expect(dep.spec.template.spec.containers[0].resources).toEqual(inGit);
    expect(healed.status.operationState.operation.initiatedBy).toEqual({ automated: true });
    expect(healed.status.operationState.syncResult.revision).toBe(head);
    const all = [...runs, during];
    const done = await Promise.all(all.map((r) => waitRunDone(served, r.metadata.name, 240_000)));
    const seen = await watch.stop();
    for (const d of done) expect({ run: d.metadata.name, ...succeededCondition(d) }).toMatchObject({ run: d.metadata.name, status: 'True' });
    for (const r of all) expect({ run: r.metadata.name, releases: released(r.metadata.name) }).toEqual({ run: r.metadata.name, releases: 1 });
    for (const [i, r] of runs.entries()) expect({ run: r.metadata.name, pods: seen.uids.get(runIdOf(r)) }).toEqual({ run: r.metadata.name, pods: [daemons[i].metadata.uid] });
    expect(seen.maxRestarts).toBe(0);
  });

  test('deleting the Application (resources finalizer) removes all of the repository but the CRD, which Argo CD never deletes; with the CRD deleted by hand, what the README\'s uninstall says holds and nothing else is left', async () => {
    await waitRolledOut(upgradeRef);
    const objects = objectsOf(platformRepoContent({ image: upgradeRef, servedNamespace: served, sidecars: sidecarsV1 }));
    const crdPath = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/pipelinesidecars.pipeline-sidecars.dev';
    const pscPath = `/apis/pipeline-sidecars.dev/v1alpha1/namespaces/${served}/pipelinesidecars`;
    const live = await createRun(served, sleepyDockerRun('at-uninstall', 20));
    const liveId = runIdOf(live);
    await waitStartedWithSidecar(served, live);
    const gated = await createRun(served, sleepyRun('gated-at-uninstall', 'never', 0));
    expect(gated.spec.status).toBe('PipelineRunPending');
    expect((await rawClient().get(pscPath)).items.map((p: any) => p.metadata.name).sort()).toEqual(Object.keys(sidecarsV1).sort());
    const t0 = Date.now();
    own.kubectl(['-n', ARGOCD_NAMESPACE, 'delete', 'application', APP, '--wait=false']);
    await eventually('the Application gone (its finalizer done)', async () => (await rawClient().getOrUndefined(appPath(APP))) === undefined, 300_000, 250);
    await eventually('the operator\'s namespace gone', async () => (await rawClient().getOrUndefined(`/api/v1/namespaces/${OP_NS}`)) === undefined, 300_000, 250);
    numbers.uninstallMs = Date.now() - t0;
    const left = async () => {
      const out: string[] = [];
      for (const o of objects.filter((x) => x.kind !== 'PipelineSidecar')) {
        if (await rawClient().getOrUndefined(`${collectionPath(o.apiVersion, o.kind, o.metadata.namespace)}/${o.metadata.name}`)) out.push(`${o.kind}/${o.metadata.name}`);
      }
      return out;
    };
    // Everything of the repository is gone, the team's PipelineSidecars one by one, but the CRD.
    expect(await left()).toEqual(['CustomResourceDefinition/pipelinesidecars.pipeline-sidecars.dev']);
    expect((await rawClient().get(pscPath)).items).toEqual([]);
    // A run asking for a sidecar by annotation is created as written: not refused, not gated; Tekton runs it.
    const after = await createRun(served, sleepyRun('after', 'docker', 0));
    expect(after.spec.status).toBeUndefined();
    expect(after.metadata.annotations[ANNOTATIONS.runId]).toBeUndefined();
    expect(succeededCondition(await waitRunDone(served, after.metadata.name, 120_000))).toMatchObject({ status: 'True' });
    // The gated run stays pending (the operator that would release it is gone with its namespace, checked above), until its owner releases it.
    const stillGated = await rawClient().get(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns/${gated.metadata.name}`);
    expect({ status: stillGated.spec.status, startTime: stillGated.status?.startTime }).toEqual({ status: 'PipelineRunPending', startTime: undefined });
    own.kubectl(['-n', served, 'patch', 'pipelinerun', gated.metadata.name, '--type', 'json', '-p', '[{"op":"remove","path":"/spec/status"}]']);
    expect(succeededCondition(await waitRunDone(served, gated.metadata.name, 120_000))).toMatchObject({ status: 'True' });
    // The live run: Tekton finishes it with its daemon; nobody removes the daemon when it ends, deleting the run does.
    expect(succeededCondition(await waitRunDone(served, live.metadata.name, 120_000))).toMatchObject({ status: 'True' });
    expect(await objectsOfRun(served, liveId)).toContain(`Deployment/docker-${liveId}`);
    await rawClient().delete(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns/${live.metadata.name}`);
    await eventually('the live run\'s sidecar objects garbage-collected', async () => (await objectsOfRun(served, liveId)).length === 0 && (await sidecarPods(served, liveId)).length === 0, 120_000, 500);
    // The step Argo CD leaves to you; then nothing of the repository is left.
    own.kubectl(['delete', 'customresourcedefinition', 'pipelinesidecars.pipeline-sidecars.dev']);
    expect(await rawClient().getOrUndefined(crdPath)).toBeUndefined();
    expect(await left()).toEqual([]);
    // The served namespace is the team's: it stays, with nothing of ours in it.
    expect((await rawClient().get(`/api/v1/namespaces/${served}`)).status.phase).toBe('Active');
    expect((await rawClient().get(`/apis/rbac.authorization.k8s.io/v1/namespaces/${served}/rolebindings`, { labelSelector: BUNDLE_SELECTOR })).items).toEqual([]);
  });
});
