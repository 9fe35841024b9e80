import { ANNOTATIONS } from '../../constructs/api/spec';
import { Operator } from '../../src/operator';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { createRun, createSidecar, deleteWebhookConfig, ensureCrd, eventually, inProcessOperator } from './helpers';

let ns: string;
let op: Operator;
const mwcPath = () => `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/ps-${ns}`;
const inline = { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] };

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('webhook');
  op = inProcessOperator(ns, [ns]);
  await op.start();
  await createSidecar(ns, 'cache', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
});

afterAll(async () => {
  await op?.stop();
  await deleteWebhookConfig(`ps-${ns}`);
});

test('the registered configuration: two webhooks, Fail only for runs that ask by annotation, CA from the shared Secret', async () => {
  const mwc = await rawClient().get(mwcPath());
  expect(mwc.webhooks.map((w: any) => [w.name, w.failurePolicy])).toEqual([
    ['explicit.pipelineruns.pipeline-sidecars.dev', 'Fail'],
    ['selected.pipelineruns.pipeline-sidecars.dev', 'Ignore'],
  ]);
  const secret = await rawClient().get(`/api/v1/namespaces/${ns}/secrets/ps-${ns}-webhook-tls`);
  for (const w of mwc.webhooks) expect(w.clientConfig.caBundle).toBe(secret.data['ca.crt']);
  expect(Buffer.from(secret.data['ca.crt'], 'base64').toString()).toBe(op.webhookCa);
});

test('a run that asks for nothing is admitted untouched', async () => {
  const r = await createRun(ns, { metadata: { generateName: 'plain-' }, spec: { pipelineSpec: inline } });
  expect(r.metadata.annotations).toBeUndefined();
  expect(r.spec.status).toBeUndefined();
});

test('a lost certificate Secret is re-minted and reloaded without a restart; the webhook keeps gating', async () => {
  const before = (await rawClient().get(mwcPath())).webhooks[0].clientConfig.caBundle;
  await rawClient().delete(`/api/v1/namespaces/${ns}/secrets/ps-${ns}-webhook-tls`);
  expect(await op.refreshWebhookCertificate()).toBe(true);
  const after = (await rawClient().get(mwcPath())).webhooks[0].clientConfig.caBundle;
  expect(after).not.toBe(before);
  const r = await eventually('a run gated through the new certificate', async () =>
    createRun(ns, { metadata: { generateName: 'after-', annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { pipelineSpec: inline } }), 10_000, 200);
  expect(r.spec.status).toBe('PipelineRunPending');
  expect(r.metadata.annotations[ANNOTATIONS.runId]).toMatch(/^[a-z][a-z0-9]{7}$/);
  // Nothing to refresh the second time.
  expect(await op.refreshWebhookCertificate()).toBe(false);
});
