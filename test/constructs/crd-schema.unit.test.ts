import { pipelineSidecarCrd, PRINTER_COLUMNS } from '../../constructs/api/crd';
import { BUILDKIT_DEFAULTS } from '../../constructs/buildkit-daemon';
import { DOCKER_DAEMON_DEFAULTS } from '../../constructs/docker-daemon';
import { POSTGRES_DEFAULTS } from '../../constructs/postgres';
import { REGISTRY_DEFAULTS } from '../../constructs/registry';

type Schema = Record<string, any>;

/** Paths of every property (nested in objects, array items and map values too) that has no description. */
function undescribed(schema: Schema, path = ''): { missing: string[]; seen: number } {
  let seen = 0;
  const missing: string[] = [];
  const visit = (s: Schema | undefined, at: string) => {
    if (!s || typeof s !== 'object') return;
    for (const [k, v] of Object.entries<Schema>(s.properties ?? {})) {
      seen++;
      if (typeof v?.description !== 'string' || v.description.trim() === '') missing.push(`${at}.${k}`);
      visit(v, `${at}.${k}`);
    }
    visit(s.items, `${at}[]`);
    if (s.additionalProperties && typeof s.additionalProperties === 'object') visit(s.additionalProperties, `${at}{}`);
  };
  visit(schema, path);
  return { missing, seen };
}

const crd = pipelineSidecarCrd();
const version = crd.spec.versions[0];
const root: Schema = version.schema.openAPIV3Schema;
const spec: Schema = root.properties.spec;

describe('kubectl explain: every field of the CRD has a description', () => {
  test('every property, nested ones included, has a description', () => {
    const { missing, seen } = undescribed(root);
    // metadata is the one exception: the API server refuses anything but `type` on it, and kubectl
    // explain shows ObjectMeta's own documentation there.
    expect(missing).toEqual(['.metadata']);
    expect(root.properties.metadata).toEqual({ type: 'object' });
    // The walk reached the deep fields (a walker that stopped at the top would pass vacuously).
    expect(seen).toBeGreaterThan(60);
    expect(spec.properties.template.properties.containers.items.properties.volumeMounts.items.properties.readOnly.description).toBeTruthy();
  });

  test('the walker finds what is missing in a hand-made schema (negative control)', () => {
    const schema = {
      type: 'object', description: 'root',
      properties: {
        a: { type: 'string', description: 'has one' },
        b: { type: 'string' },
        list: { type: 'array', description: 'items below', items: { type: 'object', properties: { x: { type: 'integer', description: ' ' }, y: { type: 'integer', description: 'y' } } } },
        map: { type: 'object', description: 'map', additionalProperties: { type: 'object', properties: { z: { type: 'string' } } } },
      },
    };
    expect(undescribed(schema, 'spec')).toEqual({ missing: ['spec.b', 'spec.list[].x', 'spec.map{}.z'], seen: 7 });
  });

  test('the descriptions give the kinds\' defaults as the constructs have them', () => {
    const p = spec.properties;
    expect(p.dockerDaemon.properties.image.description).toContain(DOCKER_DAEMON_DEFAULTS.image);
    expect(p.dockerDaemon.properties.storageDriver.description).toContain(DOCKER_DAEMON_DEFAULTS.storageDriver);
    expect(p.dockerDaemon.properties.tls.description).toContain(String(DOCKER_DAEMON_DEFAULTS.tlsPort));
    expect(p.dockerDaemon.properties.tls.description).toContain(String(DOCKER_DAEMON_DEFAULTS.plainPort));
    expect(p.buildKitDaemon.properties.image.description).toContain(BUILDKIT_DEFAULTS.image);
    expect(p.buildKitDaemon.description).toContain(String(BUILDKIT_DEFAULTS.port));
    expect(p.postgres.properties.image.description).toContain(POSTGRES_DEFAULTS.image);
    expect(p.postgres.properties.database.description).toContain(`default ${POSTGRES_DEFAULTS.database}`);
    expect(p.postgres.properties.user.description).toContain(`default ${POSTGRES_DEFAULTS.user}`);
    expect(p.registry.properties.image.description).toContain(REGISTRY_DEFAULTS.image);
    expect(p.registry.description).toContain(String(REGISTRY_DEFAULTS.port));
  });
});

/**
 * The schema node a printer column's simple JSONPath names (`[?(...)]` filters step into list
 * items), or undefined when a field on the way is not declared. metadata is not spelled out in a
 * CRD schema, so any path under it is taken as declared.
 */
function schemaAt(path: string): Schema | undefined {
  let node: Schema | undefined = root;
  for (const seg of path.replace(/\[\?\(.*?\)\]/g, '[]').split('.').filter(Boolean)) {
    if (node?.type === 'object' && !node.properties && node === root.properties.metadata) return node;
    const [field, ...brackets] = seg.split('[');
    node = node?.properties?.[field];
    for (let i = 0; i < brackets.length; i++) node = node?.items;
  }
  return node;
}

/** The value at a dotted JSONPath in an object (no filters: the Selector column needs none). */
const valueAt = (obj: Schema, path: string) => path.split('.').filter(Boolean).reduce<any>((o, k) => o?.[k], obj);

describe('printer columns', () => {
  test('the CRD carries PRINTER_COLUMNS, and every column\'s path is a declared field', () => {
    expect(version.additionalPrinterColumns).toEqual(PRINTER_COLUMNS);
    for (const c of PRINTER_COLUMNS) expect([c.name, schemaAt(c.jsonPath) !== undefined]).toEqual([c.name, true]);
    // Negative control: a misspelled field is not found.
    expect(schemaAt('.spec.selectr')).toBeUndefined();
    expect(schemaAt('.status.conditions[?(@.type=="Ready")].statuz')).toBeUndefined();
  });

  test('the Selector column selects the whole spec.selector, so both pipelineRef and matchLabels are in its cell', () => {
    const selector = PRINTER_COLUMNS.find((c) => c.name === 'Selector')!;
    expect(schemaAt(selector.jsonPath)).toBe(spec.properties.selector);
    const both = { spec: { selector: { pipelineRef: 'build', matchLabels: { team: 'a' } } } };
    expect(valueAt(both, selector.jsonPath)).toEqual({ pipelineRef: 'build', matchLabels: { team: 'a' } });
    const labelsOnly = { spec: { selector: { matchLabels: { team: 'a' } } } };
    expect(valueAt(labelsOnly, selector.jsonPath)).toEqual({ matchLabels: { team: 'a' } });
    // Negative control: the former path, .spec.selector.pipelineRef, shows nothing for a label selector.
    expect(valueAt(labelsOnly, '.spec.selector.pipelineRef')).toBeUndefined();
  });
});
