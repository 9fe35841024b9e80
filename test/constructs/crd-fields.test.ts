import { API_VERSION, KIND, validateSidecarSpec } from '../../constructs';
import { ApiError } from '../../src/k8s/raw';
import { collectionPath } from '../../src/k8s/resources';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { ensureCrd } from '../operator/helpers';

let ns: string;
beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('crdfields');
});

const container = { name: 'web', image: 'nginx:1', ports: [{ containerPort: 80 }] };
const setAt = (obj: any, path: Array<string | number>, value: unknown) => {
  const root = JSON.parse(JSON.stringify(obj));
  let o = root;
  for (const k of path.slice(0, -1)) o = o[k];
  o[path[path.length - 1]] = value;
  return root;
};
const getAt = (obj: any, path: Array<string | number>) => path.reduce((o, k) => (o === undefined ? undefined : o[k]), obj);
const fieldOf = (path: Array<string | number>) => ['spec', ...path].map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');

/** A valid spec and a path inside it where we write a field the schema does not know. */
const CASES: Array<[string, Record<string, any>, Array<string | number>]> = [
  ['template.hostNetwork', { kind: 'Container', template: { containers: [container] } }, ['template', 'hostNetwork']],
  ['template.hostPID', { kind: 'Container', template: { containers: [container] } }, ['template', 'hostPID']],
  ['spec.hostNetwork', { kind: 'Container', template: { containers: [container] } }, ['hostNetwork']],
  ['spec.hostPID', { kind: 'Registry' }, ['hostPID']],
  ['a container field we do not support', { kind: 'Container', template: { containers: [container] } }, ['template', 'containers', 0, 'lifecycle']],
  ['a container port field', { kind: 'Container', template: { containers: [container] } }, ['template', 'containers', 0, 'ports', 0, 'hostPort']],
  ['dockerDaemon option block', { kind: 'DockerDaemon', dockerDaemon: { storageDriver: 'vfs' } }, ['dockerDaemon', 'storgeDriver']],
  ['buildKitDaemon option block', { kind: 'BuildKitDaemon', buildKitDaemon: {} }, ['buildKitDaemon', 'rootless']],
  ['postgres option block', { kind: 'Postgres', postgres: {} }, ['postgres', 'db']],
  ['registry option block', { kind: 'Registry', registry: {} }, ['registry', 'imag']],
  ['lifecycle', { kind: 'Registry', lifecycle: {} }, ['lifecycle', 'startupTimeOut']],
  ['expose.params item', { kind: 'Registry', expose: { params: [{ name: 'reg', value: '$(address)' }] } }, ['expose', 'params', 0, 'default']],
  ['isolation', { kind: 'Registry', isolation: {} }, ['isolation', 'fromm']],
  ['selector', { kind: 'Registry', selector: {} }, ['selector', 'pipelineRefs']],
  ['ports item', { kind: 'Registry', ports: [{ name: 'reg', port: 5000 }] }, ['ports', 0, 'targetPort']],
];

test.each(CASES.map(([n, spec, path], i) => [n, spec, path, i] as const))(
  'an unknown field at %s is rejected at apply or kept and reported invalid, never dropped', async (_n, spec, path, i) => {
    const written = setAt(spec, path, true);
    expect(validateSidecarSpec(`ok${i}`, spec as any)).toEqual([]); // the spec without it is valid (negative control)
    const name = `unknown${i}`;
    let outcome: string;
    try {
      const stored = await rawClient().create(collectionPath(API_VERSION, KIND, ns), { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec: written });
      const kept = getAt(stored.spec, path) === true;
      const reported = validateSidecarSpec(name, stored.spec).find(p => p.field === fieldOf(path));
      outcome = kept && reported ? 'kept and reported' : `${kept ? 'kept' : 'DROPPED'}, ${reported ? 'reported' : 'NOT reported'}`;
      if (reported) expect(reported.problem).toMatch(/unknown field/);
    } catch (e) {
      if (!(e instanceof ApiError && e.statusCode === 422)) throw e;
      outcome = e.message.includes(path[path.length - 1] as string) ? 'kept and reported' : `rejected without naming the field: ${e.message}`;
    }
    expect(outcome).toBe('kept and reported');
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
])('the API server bounds startupTimeout as validateSidecarSpec does: %s', async (startupTimeout, expected) => {
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
])('the API server checks expose names as validateSidecarSpec does: %j', async (expose, expected) => {
  const v = await verdict({ kind: 'Registry', expose });
  if (expected === 'accepted') expect(v).toBe('accepted');
  else expect(v).toContain(expected);
  expect(validateSidecarSpec('probe', { kind: 'Registry', expose }).length === 0).toBe(v === 'accepted');
});

test('kind Container takes its Service ports from containerPorts at the API server too, as validateSidecarSpec does', async () => {
  const spec = { kind: 'Container', template: { containers: [{ name: 'web', image: 'nginx:1', ports: [{ containerPort: 80 }] }] } };
  expect(validateSidecarSpec('probe', spec)).toEqual([]);
  expect(await verdict(spec)).toBe('accepted');
  const portless = { kind: 'Container', template: { containers: [{ name: 'web', image: 'nginx:1' }] } };
  expect(validateSidecarSpec('probe', portless).map(p => p.field)).toEqual(['spec.ports']);
  expect(await verdict(portless)).toContain('spec.ports is required for this kind');
});
