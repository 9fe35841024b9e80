import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { FIELD_MANAGER } from '../../constructs';
import { ApiError } from '../../src/k8s/raw';
import { objectPath } from '../../src/k8s/resources';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { ensureCrd } from '../operator/helpers';

/** The PipelineSidecar docs/custom-kind.md shows (```yaml file=cache.yaml), as written. */
function docSidecar(): Record<string, any> {
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'custom-kind.md'), 'utf8');
  const block = /```yaml file=cache\.yaml\n([\s\S]*?)```/.exec(doc);
  if (!block) throw new Error('docs/custom-kind.md has no ```yaml file=cache.yaml block');
  return YAML.parse(block[1]);
}

/** The real API server judges the page's PipelineSidecar against our CRD (server-side apply, dryRun=All). */
describe('docs/custom-kind.md\'s PipelineSidecar', () => {
  let ns: string;
  beforeAll(async () => {
    await ensureCrd();
    ns = await createTestNamespace('customkind');
  });
  const dryRun = (cr: Record<string, any>) => {
    const obj = { ...cr, metadata: { ...cr.metadata, namespace: ns } };
    return rawClient().apply(objectPath(obj as any), obj, FIELD_MANAGER, { dryRun: true });
  };

  test('is accepted by the CRD as written, its option block kept', async () => {
    const stored = await dryRun(docSidecar());
    expect(stored.spec).toMatchObject({ kind: 'Redis', redis: { maxMemory: '256mb' }, ports: [{ name: 'redis', port: 6379 }] });
  });

  test('without its ports it is refused, naming spec.ports (the control: the CRD does check)', async () => {
    const { ports: _ports, ...spec } = docSidecar().spec;
    const err = await dryRun({ ...docSidecar(), spec }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).statusCode).toBe(422);
    expect((err as ApiError).message).toMatch(/spec\.ports/);
  });
});
