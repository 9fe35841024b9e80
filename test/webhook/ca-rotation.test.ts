import { ANNOTATIONS } from '../../constructs/api/spec';
import { WEBHOOK_PATH } from '../../constructs/api/webhook-config';
import { mintWebhookTls } from '../../src/webhook-tls';
import { WebhookOptions, WebhookServer } from '../../src/webhook';
import { createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { createRun, createSidecar, deleteWebhookConfig, ensureCrd } from '../operator/helpers';
import { postRaw, servedCertificate, splitPem, webhookServer } from './fixtures';

const inline = { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] };
const mwcPath = (ns: string) => `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/ps-${ns}`;
const review = (ns: string) => JSON.stringify({
  apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
  request: { uid: 'u-1', kind: { group: 'tekton.dev', version: 'v1', kind: 'PipelineRun' }, resource: { group: 'tekton.dev', version: 'v1', resource: 'pipelineruns' }, operation: 'CREATE', namespace: ns, object: { metadata: { name: 'r' }, spec: {} } },
});

/** What the API server trusts: the caBundle of every webhook of the configuration, which must agree. */
async function publishedBundle(ns: string): Promise<string[]> {
  const mwc = await rawClient().get(mwcPath(ns));
  const bundles = new Set<string>(mwc.webhooks.map((w: any) => w.clientConfig.caBundle));
  expect(bundles.size).toBe(1);
  return splitPem(Buffer.from([...bundles][0], 'base64').toString('utf8'));
}

/** Two replicas sharing one certificate Secret: the first registers the configuration, the second only fills caBundle. */
async function twoReplicas(ns: string, timing: Record<string, number>): Promise<[WebhookServer, WebhookServer]> {
  await ensureCrd();
  await createSidecar(ns, 'cache', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
  const common: Partial<WebhookOptions> = { secretName: `ps-${ns}-webhook-tls`, refreshIntervalMs: 3_600_000, ...timing };
  const first = webhookServer(ns, {
    ...common, register: true, url: `https://127.0.0.1:{port}${WEBHOOK_PATH}`,
    namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }] },
  });
  await first.start();
  const second = webhookServer(ns, common);
  await second.start();
  return [first, second];
}

/** Points the configuration at `port` (the replica the API server will call) and creates a run that asks for a sidecar through it. */
async function gatedThrough(ns: string, port: number): Promise<Record<string, any>> {
  const mwc = await rawClient().get(mwcPath(ns));
  await rawClient().jsonPatch(mwcPath(ns), mwc.webhooks.map((_w: any, i: number) => ({ op: 'replace', path: `/webhooks/${i}/clientConfig/url`, value: `https://127.0.0.1:${port}${WEBHOOK_PATH}` })));
  return createRun(ns, { metadata: { generateName: 'through-', annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { pipelineSpec: inline } });
}

describe('renewal never leaves a replica untrusted', () => {
  const servers: WebhookServer[] = [];
  const namespaces: string[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
    for (const ns of namespaces) await deleteWebhookConfig(`ps-${ns}`);
  });

  test('a serving-certificate renewal keeps the CA: the replica that has not reloaded is still trusted through the published caBundle', async () => {
    const ns = await createTestNamespace('wh-renew-leaf');
    namespaces.push(ns);
    // Leaf: 20 s, renewed when under 15 s are left (due 5 s after minting). CA: a day, so it is kept.
    const [first, second] = await twoReplicas(ns, { leafValidityMs: 20_000, renewBeforeMs: 15_000, caValidityMs: 86_400_000 });
    servers.push(first, second);
    const bundleBefore = await publishedBundle(ns);
    const secondBefore = await servedCertificate(second.port, bundleBefore);
    expect(secondBefore.authorized).toBe(true);

    await eventually('the first replica to renew its certificate', () => first.refreshTls(), 15_000, 500);
    const bundle = await publishedBundle(ns);
    expect(bundle).toEqual(bundleBefore);
    const firstNow = await servedCertificate(first.port, bundle);
    const secondNow = await servedCertificate(second.port, bundle);
    expect(firstNow.fingerprint).not.toBe(secondBefore.fingerprint); // the first really serves a new leaf
    expect(secondNow.fingerprint).toBe(secondBefore.fingerprint); // the second has not reloaded
    expect(firstNow).toMatchObject({ authorized: true });
    expect(secondNow).toMatchObject({ authorized: true });
    expect((await postRaw(second.port, bundle, review(ns))).status).toBe(200);
    // The real API server, calling the replica that has not reloaded.
    const run = await gatedThrough(ns, second.port);
    expect(run.metadata.annotations[ANNOTATIONS.runId]).toMatch(/^[a-z][a-z0-9]{7}$/);
    // Negative control: a client trusting another CA is refused by the same check.
    const stranger = await mintWebhookTls(['127.0.0.1']);
    expect((await servedCertificate(second.port, [stranger.caCert])).authorized).toBe(false);
  });

  test('a lost certificate Secret: the replica that re-creates it keeps the CA it served under in caBundle', async () => {
    const ns = await createTestNamespace('wh-renew-lost');
    namespaces.push(ns);
    const [first, second] = await twoReplicas(ns, {});
    servers.push(first, second);
    const bundleBefore = await publishedBundle(ns);
    const secondBefore = await servedCertificate(second.port, bundleBefore);
    expect(secondBefore.authorized).toBe(true);
    await rawClient().delete(`/api/v1/namespaces/${ns}/secrets/ps-${ns}-webhook-tls`);
    expect(await first.refreshTls()).toBe(true);
    const bundle = await publishedBundle(ns);
    expect(bundle).not.toEqual(bundleBefore); // a new CA was minted and published
    const secondNow = await servedCertificate(second.port, bundle);
    expect(secondNow.fingerprint).toBe(secondBefore.fingerprint);
    expect(secondNow).toMatchObject({ authorized: true });
    expect(await servedCertificate(first.port, bundle)).toMatchObject({ authorized: true });
    const run = await gatedThrough(ns, second.port);
    expect(run.metadata.annotations[ANNOTATIONS.runId]).toMatch(/^[a-z][a-z0-9]{7}$/);
  });

  test('a CA rotation publishes the old and the new CA together: both replicas stay trusted', async () => {
    const ns = await createTestNamespace('wh-renew-ca');
    namespaces.push(ns);
    // CA: 25 s. The leaf is due after 5 s; a new 20 s leaf would outlive the CA, so the CA rotates.
    const [first, second] = await twoReplicas(ns, { leafValidityMs: 20_000, renewBeforeMs: 15_000, caValidityMs: 25_000 });
    servers.push(first, second);
    const bundleBefore = await publishedBundle(ns);
    expect(bundleBefore).toHaveLength(1);
    const secondBefore = await servedCertificate(second.port, bundleBefore);

    await eventually('the first replica to renew', () => first.refreshTls(), 15_000, 500);
    const bundle = await publishedBundle(ns);
    expect(bundle).toHaveLength(2);
    expect(bundle).toContain(bundleBefore[0]);
    const firstNow = await servedCertificate(first.port, bundle);
    const secondNow = await servedCertificate(second.port, bundle);
    expect(secondNow.fingerprint).toBe(secondBefore.fingerprint);
    expect(firstNow).toMatchObject({ authorized: true });
    expect(secondNow).toMatchObject({ authorized: true });
    // The new leaf is signed by the new CA alone (negative control: the old CA does not vouch for it).
    expect((await servedCertificate(first.port, bundleBefore)).authorized).toBe(false);
    const run = await gatedThrough(ns, second.port);
    expect(run.metadata.annotations[ANNOTATIONS.runId]).toMatch(/^[a-z][a-z0-9]{7}$/);
    // Once the second replica reloads, it serves the new leaf too.
    expect(await second.refreshTls()).toBe(true);
    expect((await servedCertificate(second.port, bundle)).fingerprint).toBe(firstNow.fingerprint);
  });
});
