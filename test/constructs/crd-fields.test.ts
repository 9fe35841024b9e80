import { API_VERSION, KIND, validateSidecarSpec } from '../../constructs';
import { ApiError } from '../../src/k8s/raw';
import { collectionPath } from '../../src/k8s/resources';
import { createTestNamespace, rawClient } from '../harness/cluster';
import { ensureCrd } from '../operator/helpers';

let ns: string;
beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('crdfields');
});

/** Server-side dry-run create: the API server's verdict on a spec. */
async function verdict(spec: Record<string, unknown>): Promise<string> {
  try {
    await rawClient().create(collectionPath(API_VERSION, KIND, ns), { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'probe' }, spec }, { dryRun: 'All' });
    return 'accepted';
  } catch (e) {
    if (e instanceof ApiError && e.statusCode === 422) return e.message;
    throw e;
  }
}

test.each([
  ['1s', 'accepted'], ['24h', 'accepted'], ['90m', 'accepted'],
  ['500ms', 'between 1s and 24h'], ['48h', 'between 1s and 24h'], ['600h', 'between 1s and 24h'], ['soon', 'spec.lifecycle.startupTimeout'],
])('#11.10 the API server bounds startupTimeout as validateSidecarSpec does: %s', async (startupTimeout, expected) => {
  const v = await verdict({ kind: 'Registry', lifecycle: { startupTimeout } });
  if (expected === 'accepted') expect(v).toBe('accepted');
  else expect(v).toContain(expected);
  expect(validateSidecarSpec('probe', { kind: 'Registry', lifecycle: { startupTimeout } }).length === 0).toBe(v === 'accepted');
});

test.each([
  [{ params: [{ name: 'docker-host', value: '$(host)' }], workspace: 'docker-tls' }, 'accepted'],
  [{ params: [{ name: '1abc', value: '$(host)' }] }, 'spec.expose.params[0].name'],
  [{ params: [{ name: 'a b', value: '$(host)' }] }, 'spec.expose.params[0].name'],
  [{ workspace: 'Docker_TLS' }, 'spec.expose.workspace'],
  [{ workspace: 'a'.repeat(64) }, 'spec.expose.workspace'],
])('#11.10 the API server checks expose names as validateSidecarSpec does: %j', async (expose, expected) => {
  const v = await verdict({ kind: 'Registry', expose });
  if (expected === 'accepted') expect(v).toBe('accepted');
  else expect(v).toContain(expected);
  expect(validateSidecarSpec('probe', { kind: 'Registry', expose }).length === 0).toBe(v === 'accepted');
});
