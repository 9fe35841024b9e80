import type { KubeObject, ObjectCache } from '../../src/k8s/object-store';
import { SidecarApplier } from '../../src/sidecar-apply';

/**
 * A run's memoized Secret manifests hold its keys and certificates for the run's whole life; once
 * the Secret is in the cache, the manifest shares the cached copy's data instead of a second copy.
 */
describe('a created Secret\'s manifest shares the cached data, and only equal data', () => {
  const secret = (data: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'ci', resourceVersion: '5' }, data } as any);
  const applierWith = (live: KubeObject | undefined) => {
    const cache = { get: () => live } as unknown as ObjectCache;
    const fail = () => { throw new Error('no request expected'); };
    return new SidecarApplier({ create: fail, apply: fail } as any, new Map([['v1/Secret', cache]]), {} as any, { emit: fail } as any);
  };
  const run = { metadata: { name: 'r', namespace: 'ci', uid: 'u' } } as any;
  const log = { warn: () => undefined } as any;

  test.each([
    ['the same values, in another key order: shared', { 'key.pem': 'K', 'ca.pem': 'C' }, { 'ca.pem': 'C', 'key.pem': 'K' }, true],
    ['a different value: kept', { 'ca.pem': 'C', 'key.pem': 'K' }, { 'ca.pem': 'C', 'key.pem': 'X' }, false],
    ['a key more on the server: kept', { 'ca.pem': 'C' }, { 'ca.pem': 'C', 'extra': 'E' }, false],
  ])('%s', async (_what, mine, cached, shared) => {
    const live = secret(cached);
    const m = secret({ ...mine });
    const before = m.data;
    const out = await applierWith(live).apply(run, [m], { frozen: true, log });
    expect(out).toEqual({ written: 0, lostRace: false });
    expect(m.data).toBe(shared ? live.data : before);
  });
});
