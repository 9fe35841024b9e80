import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { installBundleObjects } from '../../constructs/bundle/main';
import { WEBHOOK_PATH } from '../../constructs/api/webhook-config';
import { RawClient } from '../../src/k8s/raw';
import { createLogger } from '../../src/log';
import { Operator } from '../../src/operator';
import { applyAll } from '../../platform/bootstrap';
import { freePort } from '../../platform/control-plane';
import { createTestNamespace, eventually, rawClient, tokenKubeConfig } from '../../platform/cluster';
import { taskRunsOf, waitRunDone } from '../../platform/runs';
import { createPipeline, createRun, createSidecar, dockerDaemonSpec, getRun, objectsOfRun, tepPipeline, testLogDir } from '../operator/helpers';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The operator runs under the RBAC the bundle ships, authenticated as the
 * shipped ServiceAccount (a TokenRequest token, not admin), and the TEP-0130 flow passes.
 * The install gets its own name so it cannot meet other tests' installs of the default one.
 */
const NAME = 'ps-e2e';
const OPERATOR_NS = 'ps-e2e-system';

let served: string;
let op: Operator;
let sa: RawClient;

beforeAll(async () => {
  const admin = rawClient();
  served = await createTestNamespace('e2e-rbac', { [LABELS.allowPrivileged]: 'true' });
  const port = await freePort();
  const bundle = installBundleObjects({ name: NAME, namespace: OPERATOR_NS, servedNamespaces: [served] });
  // What Argo CD would sync, minus the operator Deployment (kwok runs no containers: the operator runs
  // here, in-process, with the shipped identity). The webhook points at this process instead of the Service.
  const install = bundle.filter((o) => !['Deployment', 'Service', 'PodDisruptionBudget'].includes(o.kind)).map((o) => {
    if (o.kind !== 'MutatingWebhookConfiguration') return o;
    return { ...o, webhooks: o.webhooks.map((w: any) => ({ ...w, clientConfig: { url: `https://127.0.0.1:${port}${WEBHOOK_PATH}` } })) };
  });
  expect(install.map((o) => o.kind)).toEqual(expect.arrayContaining(['CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'RoleBinding', 'MutatingWebhookConfiguration']));
  await applyAll(admin, install, 'argocd-stand-in');
  const tr = await admin.create(`/api/v1/namespaces/${OPERATOR_NS}/serviceaccounts/${NAME}/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 },
  });
  const kc = tokenKubeConfig(tr.status.token);
  sa = new RawClient(kc);
  const me = await sa.create('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  expect(me.status.userInfo.username).toBe(`system:serviceaccount:${OPERATOR_NS}:${NAME}`);
  // The authorizer learns new bindings through an informer; wait for the served namespace's one.
  await eventually('served-namespace RoleBinding in effect', async () => {
    const r = await sa.create('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { verb: 'create', resource: 'secrets', namespace: served } },
    });
    return r.status.allowed === true;
  });

  const logFile = path.join(testLogDir(), `e2e-shipped-rbac-${served}.log`);
  op = new Operator({
    kubeConfig: kc,
    namespace: OPERATOR_NS,
    // As the bundle's Deployment runs it: the webhook config exists already, the operator only fills in its caBundle.
    webhook: { port, bindAddress: '127.0.0.1', url: `https://127.0.0.1:{port}${WEBHOOK_PATH}`, configName: NAME, register: false, certHosts: ['127.0.0.1'] },
    leaderElection: { leaseName: `${NAME}-leader`, identity: 'e2e-replica-0' },
    watchNamespaces: [served],
    startupTimeoutDefault: '60s',
    log: createLogger({ level: 'debug', write: (l) => fs.appendFileSync(logFile, l + '\n') }),
  });
  await op.start();
});

afterAll(async () => {
  await op?.stop();
  sa?.close();
  await rawClient().delete(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${NAME}`).catch(() => undefined);
});

test('TEP-0130 flow under the shipped RBAC: gated, provisioned, started, cleaned up', async () => {
  await createSidecar(served, 'docker-daemon', dockerDaemonSpec());
  await createPipeline(served, tepPipeline());
  // The operator patched its own webhook configuration's caBundle with the shipped, name-scoped permission.
  await eventually('caBundle set by the operator', async () => {
    const cfg = await rawClient().get(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${NAME}`);
    return cfg.webhooks.length > 0 && cfg.webhooks.every((w: any) => (w.clientConfig.caBundle ?? '').length > 100);
  }, 20_000);
  const created = await createRun(served, {
    metadata: { generateName: 'e2e-', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon' } },
    spec: { pipelineRef: { name: 'ci-with-docker-build' }, params: [{ name: 'image', value: 'registry.example/app:1' }], workspaces: [{ name: 'source', emptyDir: {} }] },
  });
  const runId = created.metadata.annotations[ANNOTATIONS.runId];
  expect(created.spec.status).toBe('PipelineRunPending');
  expect(created.spec.params).toContainEqual({ name: 'docker-host', value: `tcp://docker-daemon-${runId}.${served}.svc:2376` });

  const objects = await eventually('sidecar objects applied by the ServiceAccount', async () => {
    const o = await objectsOfRun(served, runId);
    return o.length >= 6 ? o : undefined;
  }, 30_000);
  expect(objects).toContain(`Deployment/docker-daemon-${runId}`);
  expect(objects).toContain(`Secret/docker-daemon-${runId}-client`);
  const dep = await rawClient().get(`/apis/apps/v1/namespaces/${served}/deployments/docker-daemon-${runId}`);
  expect(dep.metadata.managedFields.map((m: any) => m.manager)).toContain('pipeline-sidecars');

  await eventually('run started', async () => (await getRun(served, created.metadata.name)).spec.status === undefined, 30_000, 25);
  await eventually('Tekton to run it', async () => (await taskRunsOf(served, created.metadata.name)).length > 0, 20_000);
  await waitRunDone(served, created.metadata.name);
  const tDone = Date.now();
  await eventually('sidecar objects deleted', async () => (await objectsOfRun(served, runId)).length === 0, 10_000, 25);
  process.stderr.write(`[e2e-shipped-rbac] done → sidecar objects deleted: ${Date.now() - tDone} ms\n`);

  // It led through its own Lease, in its own namespace.
  const lease = await rawClient().get(`/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NS}/leases/${NAME}-leader`);
  expect(lease.spec.holderIdentity).toBe('e2e-replica-0');
});
