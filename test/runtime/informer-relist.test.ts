import { setTimeout as sleep } from 'node:timers/promises';
import { Informer } from '../../src/k8s/informer';
import { afterWatch, WatchEnd, watchRecovery } from '../../src/k8s/watch-recovery';
import { ApiError, RawClient } from '../../src/k8s/raw';
import { collectionPath } from '../../src/k8s/resources';
import { WatchStalledError } from '../../src/k8s/watch';
import { createTestNamespace, eventually, rawClient, testKubeConfig } from '../../platform/cluster';

const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';

test('initial lists are paginated (limit/continue)', async () => {
  const ns = await createTestNamespace('pages');
  const cms = collectionPath('v1', 'ConfigMap', ns);
  // Labelled: the namespace's kube-root-ca.crt ConfigMap appears on its own time and must not count.
  for (let i = 0; i < 5; i++) await rawClient().create(cms, { metadata: { name: `c${i}`, labels: { t: 'pages' } } });
  const client = new RawClient(testKubeConfig());
  const informer = new Informer(testKubeConfig(), client, { name: 'cm', path: cms, labelSelector: 't=pages', pageSize: 2 });
  try {
    await informer.start();
    // Requests the informer's client sent (the watch has its own connection): 3 pages of at most 2.
    expect(client.requests).toBe(3);
    expect(informer.pages).toBe(3);
    expect(informer.list(ns).map((o) => o.metadata.name).sort()).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
    // Objects from pages look like watched ones.
    expect(informer.get(ns, 'c4')).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap' });
  } finally {
    await informer.stop();
    client.close();
  }
});

/** A namespaced test CRD whose instances are free-form. */
function probeCrd(group: string) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: `probes.${group}` },
    spec: {
      group, scope: 'Namespaced', names: { plural: 'probes', singular: 'probe', kind: 'Probe' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  };
}

async function createCrd(crd: ReturnType<typeof probeCrd>, ns: string): Promise<void> {
  await rawClient().create(CRDS, crd);
  await eventually('the CRD to be established', async () => ((await rawClient().get(`${CRDS}/${crd.metadata.name}`)).status?.conditions ?? [])
    .some((c: any) => c.type === 'Established' && c.status === 'True'), 20_000);
  // Established comes before its storage serves: wait until a list answers.
  await eventually('the CRD to serve', async () => rawClient().get(`/apis/${crd.spec.group}/v1/namespaces/${ns}/probes`), 20_000);
}

test('a watch from a resourceVersion the server no longer has (a real 410: the CRD was re-created) relists, in pages, and sees the new state', async () => {
  const ns = await createTestNamespace('gone');
  const group = `gone-${Date.now().toString(36)}.pipeline-sidecars.dev`;
  const crd = probeCrd(group);
  const path = `/apis/${group}/v1/namespaces/${ns}/probes`;
  const mk = (name: string) => rawClient().create(path, { apiVersion: `${group}/v1`, kind: 'Probe', metadata: { name } });
  await createCrd(crd, ns);
  const client = new RawClient(testKubeConfig());
  const informer = new Informer(testKubeConfig(), client, { name: 'probe', path, pageSize: 1, minBackoffMs: 100, maxBackoffMs: 1000 });
  try {
    await mk('old-1');
    await mk('old-2');
    await informer.start();
    expect(informer.pages).toBe(2); // 2 objects, 1 per page

    // An upgrade re-installs the CRD: its objects go, its new watch cache starts after our resourceVersion.
    await rawClient().delete(`${CRDS}/${crd.metadata.name}`);
    await eventually('the CRD to be gone', async () => !(await rawClient().getOrUndefined(`${CRDS}/${crd.metadata.name}`)), 30_000);
    const watchesWhileGone = informer.watches;
    await sleep(2000);
    const retriesWhileGone = informer.watches - watchesWhileGone;
    await createCrd(crd, ns);
    await mk('new-1');
    await mk('new-2');

    await eventually('the informer to relist and see the new objects, the old ones gone', async () => {
      const names = informer.list(ns).map((o) => o.metadata.name).sort();
      return names.join(',') === 'new-1,new-2';
    }, 30_000, 50);
    process.stderr.write(`[informer-relist] lists ${informer.lists}, ERROR events ${informer.errorEvents}, watches ${informer.watches} (${retriesWhileGone} in the 2 s the CRD was gone), pages ${informer.pages}\n`);
    expect(informer.errorEvents).toBeGreaterThanOrEqual(1); // the server's "too old resource version" (410)
    expect(informer.lists).toBeGreaterThanOrEqual(2);
    // While the resource did not exist (404, then 429 while its storage initialized), the informer backed off.
    // From its configured backoff (100 ms doubling, capped at 1000 ms): attempts at 0, 0.1, 0.3, 0.7
    // and 1.5 s fit in the 2 s, plus one already under way; a slower machine makes fewer, never more.
    expect(retriesWhileGone).toBeLessThanOrEqual(6);
    // And it keeps watching.
    await mk('later');
    await eventually('a later create', async () => informer.get(ns, 'later'), 10_000, 50);
  } finally {
    await informer.stop();
    client.close();
    await rawClient().delete(`${CRDS}/${crd.metadata.name}`).catch(() => undefined);
  }
});

// Status bodies as kube-apiserver 1.36 sent them (captured on the test control plane).
const GONE = { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'too old resource version: 250 (259)', reason: 'Expired', code: 410 };
const TOO_LARGE = {
  kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'Timeout: Too large resource version: 1000245, current: 250', reason: 'Timeout',
  details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 }, code: 504,
};
const INITIALIZING = { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'storage is (re)initializing', reason: 'TooManyRequests', details: { retryAfterSeconds: 1 }, code: 429 };
const INTERNAL = { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'etcdserver: request timed out', reason: 'InternalError', code: 500 };

describe('watch decisions (tables)', () => {
  test.each([
    ['410 Expired', GONE, 'relist'],
    ['410 without a reason', { code: 410 }, 'relist'],
    ['"too old" in the message only', { code: 500, message: 'too old resource version: 1 (5)' }, 'relist'],
    ['ResourceVersionTooLarge', TOO_LARGE, 'relist'],
    ['429 storage initializing', INITIALIZING, 'retry'],
    ['500', INTERNAL, 'retry'],
    ['no Status', undefined, 'retry'],
  ])('watchRecovery(%s) = %s', (_name, status, want) => {
    expect(watchRecovery(status as any)).toBe(want);
  });

  const stall = new WatchStalledError('/api/v1/configmaps', 2000, 'nothing received');
  const end = (e: Partial<WatchEnd>): WatchEnd => ({ delivered: false, lastedMs: 10, emptyStallsBefore: 0, ...e });
  test.each<[string, WatchEnd, string, boolean, boolean]>([
    // case, end, action, wait, resetBackoff
    ['server timeout after a long watch', end({ lastedMs: 300_000, delivered: true }), 'rewatch', false, true],
    ['clean end at once, nothing delivered', end({}), 'rewatch', true, false],
    ['ERROR 410 at once', end({ errorStatus: GONE }), 'relist', true, false],
    ['ERROR 410 after a healthy watch', end({ errorStatus: GONE, delivered: true, lastedMs: 60_000 }), 'relist', true, true],
    ['ERROR ResourceVersionTooLarge', end({ errorStatus: TOO_LARGE }), 'relist', true, false],
    ['ERROR 500 at once: back off, never a loop', end({ errorStatus: INTERNAL }), 'rewatch', true, false],
    ['ERROR 500 after a healthy watch', end({ errorStatus: INTERNAL, delivered: true }), 'rewatch', true, true],
    ['request answered 410', end({ error: new ApiError(410, 'Expired', 'gone', GONE) }), 'relist', true, false],
    ['request answered 504 TooLarge', end({ error: new ApiError(504, 'Timeout', 'too large', TOO_LARGE) }), 'relist', true, false],
    ['request answered 429', end({ error: new ApiError(429, 'TooManyRequests', 'init', INITIALIZING) }), 'fail', true, false],
    ['transport error', end({ error: new Error('ECONNRESET') }), 'fail', true, false],
    ['stalled after events', end({ error: stall, delivered: true, lastedMs: 5000 }), 'rewatch', true, true],
    ['stalled, nothing ever delivered, first time', end({ error: stall, lastedMs: 2000 }), 'rewatch', true, true],
    ['stalled, nothing ever delivered, again', end({ error: stall, lastedMs: 2000, emptyStallsBefore: 1 }), 'relist', true, true],
  ])('afterWatch: %s', (_name, e, action, wait, resetBackoff) => {
    expect(afterWatch(e)).toMatchObject({ action, wait, resetBackoff });
  });
});
