import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { eventually, rawClient } from '../../platform/cluster';
import { ctr, podLog } from '../../platform/node';
import { BUSYBOX } from '../../platform/node-pods';
import { buildDerivedOperatorImage, ensureKubectl, importImage, OperatorImage, OwnCluster, startOwnCluster } from '../../platform/in-cluster';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';
import { succeededCondition } from '../../src/pipelinerun';
import { readRun, taskPodsOf, taskRunsOf, waitRunDone } from '../../platform/runs';
import { createRun, objectsOfRun } from '../operator/helpers';
import { GitopsRepo, GITOPS_FILES, installGitopsRepo, KINDS_MODULE } from '../package/gitops-scratch';
import { packTarball } from '../package/scratch-project';

/**
 * A platform team's own sidecar kind, end to end on the real node, done from outside this
 * repository as the team does it: examples/gitops-repo installed with the packed package, its
 * WebServer kind compiled there, previewed with `render --kinds`, its operator image built FROM ours
 * with the module and the one ENV (Dockerfile.operator), its synthesized dist/ (with that image)
 * applied to a cluster of this file's own, and a PipelineRun served by the kind's sidecar.
 */
jest.setTimeout(600_000);

const NS = 'ci';
const OP_NS = 'pipeline-sidecars';
const SIDECAR = 'fixture-site';
const OPERATOR_SELECTOR = 'app.kubernetes.io/name=pipeline-sidecars,app.kubernetes.io/component=operator';

let tmp: string;
let repo: GitopsRepo;
let image: OperatorImage;
let dist: string;
let own: OwnCluster;
/** The page text the example's spec gives its WebServer. */
let page: string;
const numbers: Record<string, number | string> = {};

/** A run of `ci` asking for the web server, whose one task fetches its page (retrying while kube-router admits the new pod) and prints it, then runs `then`. */
function fetchingRun(generateName: string, then = ''): Record<string, any> {
  const script = [
    'i=0; while [ $i -lt 20 ]; do i=$((i+1))',
    '  if page=$(wget -q -T 3 -O- "$(params.fixture-url)"); then echo "fetched: $page"; break; fi',
    '  sleep 1',
    'done',
    '[ -n "$page" ] || { echo "no answer from $(params.fixture-url)"; exit 1; }',
    then,
  ].join('\n');
  return {
    apiVersion: 'tekton.dev/v1', kind: 'PipelineRun',
    metadata: { generateName, namespace: NS, annotations: { [ANNOTATIONS.sidecars]: SIDECAR } },
    spec: {
      pipelineSpec: {
        params: [{ name: 'fixture-url' }],
        tasks: [{
          name: 'fetch', params: [{ name: 'fixture-url', value: '$(params.fixture-url)' }],
          taskSpec: { params: [{ name: 'fixture-url' }], steps: [{ name: 'fetch', image: BUSYBOX, script }] },
        }],
      },
    },
  };
}

/** A run of `ci` with no sidecar whose task tries a TCP connection to ip:port `tries` times: CONNECTED or REFUSED. */
function probingRun(generateName: string, ip: string, port: number, tries: number): Record<string, any> {
  const script = `i=0; while [ $i -lt ${tries} ]; do i=$((i+1)); if timeout 3 nc ${ip} ${port} -e true; then echo CONNECTED; exit 0; fi; sleep 1; done; echo REFUSED`;
  return {
    metadata: { generateName },
    spec: { pipelineSpec: { tasks: [{ name: 'probe', taskSpec: { steps: [{ name: 'probe', image: BUSYBOX, script }] } }] } },
  };
}

const isReady = (p: any): boolean => p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ?? false;
async function sidecarPods(runId: string): Promise<Array<Record<string, any>>> {
  return (await rawClient().get(`/api/v1/namespaces/${NS}/pods`, { labelSelector: `${LABELS.runId}=${runId}` })).items;
}
async function stepLog(run: string, step: string): Promise<string> {
  const pod = (await taskPodsOf(NS, run))[0];
  return pod ? podLog(own.node.state, NS, pod.metadata.name, `step-${step}`) : '';
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-custom-kind-'));
  repo = installGitopsRepo(path.join(tmp, 'ci-platform'), packTarball(tmp));
  // The kinds module, compiled in the team's project against the installed package.
  repo.build();
  const t0 = Date.now();
  image = buildDerivedOperatorImage(repo.dir, path.join(repo.dir, 'Dockerfile.operator'), 'pipeline-sidecars.local/operator-with-web-server', path.join(tmp, 'image'));
  numbers.imageBuildMs = Date.now() - t0;
  numbers.imageMiB = Math.round(image.sizeBytes / 1048576);
  dist = path.join(tmp, 'dist');
  numbers.synthMs = repo.synth(dist, { OPERATOR_IMAGE: image.ref }).ms;
  const sidecars = YAML.parseAllDocuments(fs.readFileSync(path.join(dist, GITOPS_FILES.sidecars), 'utf8')).map((d) => d.toJS());
  page = sidecars.find((s) => s.metadata.name === SIDECAR).spec.webServer.page;
}, 900_000);

beforeAll(async () => {
  own = await startOwnCluster(ensureKubectl());
  importImage(own, image);
  // The CI teams' namespace exists before the install (the bundle binds the operator in it).
  await rawClient().create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await eventually('the default ServiceAccount of ci', () => rawClient().getOrUndefined(`/api/v1/namespaces/${NS}/serviceaccounts/default`), 30_000, 50);
  // The example's README, without Argo CD: the bundle, then the PipelineSidecars once the CRD is there.
  const t0 = Date.now();
  own.kubectl(['apply', '--server-side', '-f', path.join(dist, GITOPS_FILES.bundle)]);
  own.kubectl(['wait', '--for', 'condition=Established', 'crd/pipelinesidecars.pipeline-sidecars.dev']);
  own.kubectl(['-n', OP_NS, 'rollout', 'status', 'deployment/pipeline-sidecars']);
  own.kubectl(['apply', '--server-side', '-f', path.join(dist, GITOPS_FILES.sidecars)]);
  numbers.installToReadyMs = Date.now() - t0;
}, NODE_SETUP_TIMEOUT_MS);

afterAll(async () => {
  process.stderr.write(`[custom-kind] ${JSON.stringify(numbers)}\n`);
  if (own) rawClient().close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  await own?.stop();
}, 120_000);

test('the operator image built FROM ours loads the team\'s kinds module: it serves WebServer, and both PipelineSidecars of dist/ are Valid and Ready', async () => {
  const pods = (await rawClient().get(`/api/v1/namespaces/${OP_NS}/pods`, { labelSelector: OPERATOR_SELECTOR })).items;
  expect(pods.length).toBe(2);
  for (const p of pods) {
    expect(p.spec.containers[0].image).toBe(image.ref);
    const kindsLine = podLog(own.node.state, OP_NS, p.metadata.name, 'operator').split('\n').find((l) => l.includes('sidecar kinds'));
    expect(kindsLine).toContain('WebServer');
  }
  for (const name of ['docker', SIDECAR]) {
    const conditions = await eventually(`PipelineSidecar ${name} Valid and Ready`, async () => {
      const cr = await rawClient().get(`/apis/pipeline-sidecars.dev/v1alpha1/namespaces/${NS}/pipelinesidecars/${name}`);
      const c = cr.status?.conditions ?? [];
      return c.some((x: any) => x.type === 'Valid' && x.status === 'True') && c.some((x: any) => x.type === 'Ready' && x.status === 'True') ? c : undefined;
    }, 30_000, 250);
    expect(conditions.length).toBeGreaterThanOrEqual(2);
  }
});

test('a run asking for the WebServer: render --kinds previews its pod, the run is held until the server is Ready (no TaskRun before), its task prints the page, the sidecar is gone after', async () => {
  const body = fetchingRun('fixture-');
  const { generateName: _g, ...metadata } = body.metadata;
  fs.writeFileSync(path.join(repo.dir, 'run.yaml'), YAML.stringify({ ...body, metadata: { ...metadata, name: 'preview' } }));
  const preview = YAML.parseAllDocuments(repo.cli(['render', '--kinds', `./${KINDS_MODULE}`, '-f', path.join(dist, GITOPS_FILES.sidecars), '-f', 'run.yaml']))
    .map((d) => d.toJS()).find((d) => d.kind === 'Deployment');
  expect(preview.spec.template.spec.containers[0].env).toEqual([{ name: 'PAGE', value: page }]);

  const t0 = Date.now();
  const run = await createRun(NS, body);
  const name = run.metadata.name;
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  expect(run.spec.status).toBe('PipelineRunPending');
  // Each sample reads the TaskRuns, then the run, then the sidecar pod: TaskRuns read while the run
  // (read after them) was still pending existed while it was pending; a pod read after the run was
  // seen released was Ready at the release or became so since (it never stops being Ready here).
  let pendingSamples = 0;
  let taskRunsWhilePending = 0;
  let serverPod: any;
  const released = await eventually('the run released', async () => {
    const trs = await taskRunsOf(NS, name);
    const r = await readRun(NS, name);
    const pods = await sidecarPods(runId);
    if (r.spec.status === 'PipelineRunPending') {
      pendingSamples++;
      taskRunsWhilePending += trs.length;
      return undefined;
    }
    serverPod = pods[0];
    return r;
  }, 120_000, 50);
  const unpendedMs = Date.parse(released.metadata.annotations[ANNOTATIONS.started]) - t0;
  numbers.createdToUnpendedMs = unpendedMs;
  process.stderr.write(`[custom-kind] created → unpended ${unpendedMs} ms\n`);
  expect({ pendingSamples: pendingSamples > 0, taskRunsWhilePending, serverReady: isReady(serverPod) }).toEqual({ pendingSamples: true, taskRunsWhilePending: 0, serverReady: true });
  // The operator's pod is the one render previewed (the API server adds its defaults to it).
  const live = await rawClient().get(`/apis/apps/v1/namespaces/${NS}/deployments/${SIDECAR}-${runId}`);
  expect(live.spec.template.spec.containers[0]).toMatchObject(preview.spec.template.spec.containers[0]);
  const httpdContainer: string = serverPod.status.containerStatuses[0].containerID.replace('containerd://', '');

  const done = await waitRunDone(NS, name, 180_000);
  numbers.createdToSucceededMs = Date.now() - t0;
  const log = await stepLog(name, 'fetch');
  expect({ run: succeededCondition(done).status, log }).toEqual({ run: 'True', log: expect.stringContaining(`fetched: ${page}\n`) });
  expect(released.spec.params).toEqual([{ name: 'fixture-url', value: `http://${SIDECAR}-${runId}.${NS}.svc:8080/` }]);

  const ended = Date.now();
  await eventually('the sidecar\'s objects gone', async () => (await objectsOfRun(NS, runId)).length === 0, 60_000, 200);
  numbers.doneToObjectsGoneMs = Date.now() - ended;
  await eventually('the sidecar\'s pod gone and its httpd container stopped on the node', async () =>
    (await sidecarPods(runId)).length === 0 && !ctr(own.node.state, ['containers', 'ls', '-q']).includes(httpdContainer), 60_000, 250);
  numbers.doneToServerStoppedMs = Date.now() - ended;
});

// Last: its control stops the operator.
test('a task of another run in the namespace cannot connect to the run\'s web server; with the NetworkPolicy removed and the operator stopped, it connects', async () => {
  const owner = await createRun(NS, fetchingRun('owner-', 'sleep 300'));
  const runId = owner.metadata.annotations[ANNOTATIONS.runId];
  await eventually('the owner run\'s task to fetch the page', async () => (await stepLog(owner.metadata.name, 'fetch')).includes(`fetched: ${page}`), 180_000, 500);
  const svc = (await rawClient().get(`/api/v1/namespaces/${NS}/services`, { labelSelector: `${LABELS.runId}=${runId}` })).items[0];
  const [ip, port]: [string, number] = [svc.spec.clusterIP, svc.spec.ports[0].port];

  const other = await createRun(NS, probingRun('other-', ip, port, 4));
  expect(succeededCondition(await waitRunDone(NS, other.metadata.name, 120_000)).status).toBe('True');
  expect(await stepLog(other.metadata.name, 'probe')).toMatch(/^REFUSED$/m);

  // The control: the operator would put a deleted policy back, so it is stopped first.
  own.kubectl(['-n', OP_NS, 'scale', 'deployment/pipeline-sidecars', '--replicas=0']);
  await eventually('no operator pods', async () => (await rawClient().get(`/api/v1/namespaces/${OP_NS}/pods`, { labelSelector: OPERATOR_SELECTOR })).items.length === 0, 60_000, 250);
  const policies = `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`;
  const owned = (await rawClient().get(policies, { labelSelector: `${LABELS.runId}=${runId}` })).items;
  expect(owned.length).toBeGreaterThan(0);
  for (const p of owned) await rawClient().delete(`${policies}/${p.metadata.name}`);
  const open = await createRun(NS, probingRun('other-open-', ip, port, 10));
  expect(succeededCondition(await waitRunDone(NS, open.metadata.name, 120_000)).status).toBe('True');
  expect(await stepLog(open.metadata.name, 'probe')).toMatch(/^CONNECTED$/m);

  // The owner run was going all along (its server existed during both probes).
  expect(succeededCondition(await readRun(NS, owner.metadata.name)).status).toBe('Unknown');
  await rawClient().delete(`/apis/tekton.dev/v1/namespaces/${NS}/pipelineruns/${owner.metadata.name}`);
});
