import { App, Chart } from 'cdk8s';
import { TEKTON_LABELS } from '../../constructs/api/tekton-labels';
import { RunLabelGuard } from '../../constructs/bundle/run-label-guard';
import { ApiError, RawClient } from '../../src/k8s/raw';
import { applyAll } from '../../platform/bootstrap';
import { createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { serviceAccountClient } from './sa-clients';

/**
 * RunLabelGuard's CEL on the real API server: who may write Tekton's run labels on Pods, TaskRuns
 * and pod templates in a served namespace. (That it keeps a pod away from another run's daemon, and
 * lets Tekton's own pods through, is shown on the real node: test/node/run-labels.test.ts.)
 */
let ns: string;
let hostile: RawClient;
let trusted: RawClient;
const policyNames: string[] = [];
const FORGED = { [TEKTON_LABELS.pipelineRunUid]: '5b4a1c8e-0000-4000-8000-000000000001', [TEKTON_LABELS.pipelineRun]: 'victim' };
const EDIT = ['get', 'list', 'create', 'patch', 'update'];
const RULES = [
  { apiGroups: [''], resources: ['pods'], verbs: EDIT },
  { apiGroups: ['tekton.dev'], resources: ['taskruns'], verbs: EDIT },
  { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: EDIT },
  { apiGroups: ['batch'], resources: ['cronjobs'], verbs: EDIT },
];

const pod = (labels: Record<string, string> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'p-', labels },
  spec: { containers: [{ name: 'c', image: 'pipeline-sidecars.local/pause:1' }] },
});
const taskRun = (labels: Record<string, string> = {}) => ({
  apiVersion: 'tekton.dev/v1', kind: 'TaskRun', metadata: { generateName: 'tr-', labels },
  spec: { taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } },
});
const template = (labels: Record<string, string>) => ({ metadata: { labels: { app: 'x', ...labels } }, spec: { containers: [{ name: 'c', image: 'pipeline-sidecars.local/pause:1' }] } });
const deployment = (labels: Record<string, string> = {}) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { generateName: 'd-' },
  spec: { selector: { matchLabels: { app: 'x' } }, template: template(labels) },
});
const cronJob = (labels: Record<string, string> = {}) => ({
  apiVersion: 'batch/v1', kind: 'CronJob', metadata: { generateName: 'cj-' },
  spec: { schedule: '0 0 1 1 *', jobTemplate: { spec: { template: { ...template(labels), spec: { ...template(labels).spec, restartPolicy: 'Never' } } } } },
});
const paths: Record<string, string> = {
  Pod: 'api/v1', TaskRun: 'apis/tekton.dev/v1', Deployment: 'apis/apps/v1', CronJob: 'apis/batch/v1',
};
const collection = (o: Record<string, any>) => `/${paths[o.kind]}/namespaces/${ns}/${o.kind.toLowerCase()}s`;

/** What the API server answers a create: 'created', or the refusal's status and message. */
async function create(client: RawClient, o: Record<string, any>, dryRun = true): Promise<{ status: number; message: string; obj?: any }> {
  try {
    const obj = await client.create(collection(o), o, dryRun ? { dryRun: 'All' } : undefined);
    return { status: 201, message: 'created', obj };
  } catch (e) {
    if (e instanceof ApiError && e.statusCode > 0) return { status: e.statusCode, message: e.message };
    throw e;
  }
}

beforeAll(async () => {
  ns = await createTestNamespace('run-labels');
  const h = await serviceAccountClient(ns, 'hostile', RULES);
  const t = await serviceAccountClient(ns, 'tekton-stand-in', RULES);
  hostile = h.client;
  trusted = t.client;
  const app = new App();
  const chart = new Chart(app, 'guard');
  const name = `guard-${ns}`;
  new RunLabelGuard(chart, 'Guard', {
    name, trustedUsers: [t.username],
    namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }] },
  });
  await applyAll(rawClient(), chart.toJson(), 'run-label-guard-test');
  policyNames.push(name);
  // A new policy takes a moment to be enforced: until a forged pod is refused.
  await eventually('the guard to refuse a forged pod', async () => (await create(hostile, pod(FORGED))).status === 403, 20_000, 200);
});

afterAll(async () => {
  for (const n of policyNames) {
    await rawClient().delete(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${n}`).catch(() => undefined);
    await rawClient().delete(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${n}`).catch(() => undefined);
  }
  hostile?.close();
  trusted?.close();
});

test.each([
  ['Pod', pod],
  ['TaskRun', taskRun],
  ['Deployment (pod template)', deployment],
  ['CronJob (job template)', cronJob],
] as const)('%s: a user not trusted is refused the run labels, naming them; the same object without them is created; a trusted user may write them', async (_what, make) => {
  const refused = await create(hostile, make(FORGED));
  expect(refused.status).toBe(403);
  expect(refused.message).toContain(`${TEKTON_LABELS.pipelineRun}, ${TEKTON_LABELS.pipelineRunUid}`);
  expect(refused.message).toContain('only Tekton may set them');
  // Negative controls: the policy refuses the labels, not the user or the kind.
  expect((await create(hostile, make({ team: 'a' }))).status).toBe(201);
  expect((await create(trusted, make(FORGED))).status).toBe(201);
});

test('an update that adds or changes a run label is refused; one that leaves them as they are passes (so the garbage collector and Tekton\'s own updates of labelled pods are not blocked)', async () => {
  const made = await create(trusted, pod(FORGED), false);
  expect(made.status).toBe(201);
  const path = `${collection(made.obj)}/${made.obj.metadata.name}`;
  await expect(hostile.mergePatch(path, { metadata: { annotations: { note: 'x' } } })).resolves.toBeDefined();
  await expect(hostile.mergePatch(path, { metadata: { labels: { [TEKTON_LABELS.pipelineRunUid]: 'another-uid' } } })).rejects.toThrow(/only Tekton may set them/);
  // Removing one forges nothing.
  await expect(hostile.mergePatch(path, { metadata: { labels: { [TEKTON_LABELS.pipelineRun]: null } } })).resolves.toBeDefined();
  // Adding one to a pod that had none is refused too.
  const plain = await create(hostile, pod({ team: 'a' }), false);
  await expect(hostile.mergePatch(`${collection(plain.obj)}/${plain.obj.metadata.name}`, { metadata: { labels: { [TEKTON_LABELS.taskRun]: 'x' } } })).rejects.toThrow(/only Tekton may set them/);
});
