import { API_VERSION, KIND, PLURAL, GROUP } from '../../constructs/api/spec';
import { pipelineSidecarCrd } from '../../constructs/api/crd';
import { ApiError } from '../../src/k8s/raw';
import { collectionPath } from '../../src/k8s/resources';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { ensureCrd } from './helpers';

let ns: string;
beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('crd');
});

/** Server-side dry-run create: the API server's verdict on a PipelineSidecar, without storing it. */
async function verdict(name: string, spec: Record<string, unknown>): Promise<string> {
  try {
    await rawClient().create(collectionPath(API_VERSION, KIND, ns), { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec }, { dryRun: 'All' });
    return 'accepted';
  } catch (e) {
    if (e instanceof ApiError && e.statusCode === 422) return e.message;
    throw e;
  }
}

test('the CRD is what the TypeScript definition says: group, scope, status subresource, printer columns', async () => {
  const stored = await rawClient().get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${PLURAL}.${GROUP}`);
  expect(stored.spec.scope).toBe('Namespaced');
  const v = stored.spec.versions[0];
  expect(v.subresources).toEqual({ status: {} });
  expect(v.additionalPrinterColumns.map((c: any) => c.name)).toEqual(['Kind', 'Selector', 'Active', 'Ready', 'Age']);
  expect(v.schema.openAPIV3Schema.properties.spec.required).toEqual(pipelineSidecarCrd().spec.versions[0].schema.openAPIV3Schema.properties.spec.required);
});

test('CEL says what the schema cannot', async () => {
  expect(await verdict('ok', { kind: 'DockerDaemon' })).toBe('accepted'); // kind defaults are enough
  expect(await verdict('custom', { kind: 'MyCache', ports: [{ name: 'c', port: 1 }], myCache: { size: 3 } })).toBe('accepted'); // custom kinds keep their block
  expect(await verdict('empty', { kind: 'Container', template: { containers: [] } })).toContain('kind Container needs spec.template.containers');
  expect(await verdict('notemplate', { kind: 'Container', ports: [{ name: 'a', port: 1 }] })).toContain('kind Container needs spec.template.containers');
  expect(await verdict('wrongblock', { kind: 'Postgres', dockerDaemon: { tls: true } })).toContain('spec.dockerDaemon is only for kind DockerDaemon');
  expect(await verdict('noports', { kind: 'MyCache' })).toContain('spec.ports is required for this kind');
  expect(await verdict('dupname', { kind: 'Registry', ports: [{ name: 'a', port: 1 }, { name: 'a', port: 2 }] })).toMatch(/Duplicate value/);
  expect(await verdict('Upper', { kind: 'Registry' })).toContain('DNS-1035');
  expect(await verdict('badtimeout', { kind: 'Registry', lifecycle: { startupTimeout: 'soon' } })).toContain('spec.lifecycle.startupTimeout');
  expect(await verdict('badpolicy', { kind: 'Registry', lifecycle: { onSidecarFailure: 'Retry' } })).toContain('spec.lifecycle.onSidecarFailure');
});
