import * as fs from 'node:fs';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { defaultKinds, KindRegistry, synthesizeRun, validateSidecarSpec } from '../../constructs';
import { RedisKind, kinds as exported } from '../../examples/custom-kind/redis';
import { parseDocs, renderRuns } from '../../src/render';
import { one, RUN } from './fixtures';

const ROOT = path.join(__dirname, '..', '..');
const DOC = fs.readFileSync(path.join(ROOT, 'docs', 'custom-kind.md'), 'utf8');
const EXAMPLE = path.join(ROOT, 'examples', 'custom-kind', 'redis.ts');

/** The page's code blocks that name a file (```ts file=redis.ts), by file name. */
function docFiles(): Record<string, string> {
  return Object.fromEntries([...DOC.matchAll(/```\w+ file=(\S+)\n([\s\S]*?)```/g)].map(m => [m[1], m[2]]));
}

/**
 * The example imports this checkout's sources where the page imports the package (this repository
 * cannot import itself by name); test/package/pack.test.ts compiles the page's version against the
 * packed package.
 */
const IN_REPO = "from '../../constructs';";
const PACKAGE = "from 'pipeline-sidecars';";

describe('a custom kind, as docs/custom-kind.md shows it', () => {
  test('the doc shows examples/custom-kind/redis.ts verbatim, but for the package it imports from', () => {
    const file = fs.readFileSync(EXAMPLE, 'utf8');
    expect(file.split(IN_REPO)).toHaveLength(2);
    expect(docFiles()['redis.ts']).toBe(file.replace(IN_REPO, PACKAGE));
  });

  test('the module\'s `kinds` export is what the kinds module contract asks for: the kind, in an array', () => {
    expect(exported).toEqual([RedisKind]);
    expect(RedisKind.name).toBe('Redis');
  });

  test('registered next to the built-ins, it synthesizes a full sidecar', () => {
    const kinds = defaultKinds().register(RedisKind);
    const sidecars = [{ name: 'cache', spec: { kind: 'Redis', redis: { maxMemory: '256mb' } }, material: {} }];
    const manifests = synthesizeRun({ run: RUN, sidecars, allowPrivileged: false, kinds });

    expect(manifests.map(o => o.kind)).toEqual(['ServiceAccount', 'Service', 'NetworkPolicy', 'Deployment']);
    const c = one(manifests, 'Deployment').spec.template.spec.containers[0];
    expect(c.image).toBe('redis:7-alpine');
    expect(c.args).toEqual(['--port', '6379', '--maxmemory', '256mb']);
    expect(c.ports).toEqual([{ name: 'redis', containerPort: 6379, protocol: 'TCP' }]);
    expect(one(manifests, 'Service').metadata.name).toBe(`cache-${RUN.runId}`);
    expect(one(manifests, 'NetworkPolicy').spec.ingress[0].ports).toEqual([{ port: 6379, protocol: 'TCP' }]);
    expect(kinds.names()).toContain('Redis');
  });

  test('the doc\'s PipelineSidecar renders with the kind, and names its port as the CRD requires', async () => {
    const cache = parseDocs(docFiles()['cache.yaml'], 'cache.yaml');
    expect(cache[0].spec.ports).toEqual([{ name: 'redis', port: 6379 }]);
    const run = { apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'tests-7', namespace: 'ci', annotations: { 'pipeline-sidecars.dev/sidecars': 'cache' } }, spec: {} };
    const [r] = await renderRuns([run, ...cache], { kinds: defaultKinds().register(RedisKind) });
    expect(one(r.manifests, 'Deployment').spec.template.spec.containers[0].args).toEqual(['--port', '6379', '--maxmemory', '256mb']);
    expect(r.admitted!.spec.params).toEqual([{ name: 'redis-address', value: `cache-${r.run.runId}.ci.svc:6379` }]);
  });

  test('the doc\'s tsconfig compiles exactly the doc\'s TypeScript files', () => {
    const files = docFiles();
    const tsFiles = Object.keys(files).filter(f => f.endsWith('.ts')).sort();
    expect(tsFiles).toEqual(['check-redis.ts', 'redis.ts']);
    expect([...JSON.parse(files['tsconfig.json']).files].sort()).toEqual(tsFiles);
    expect(YAML.parse(files['cache.yaml']).kind).toBe('PipelineSidecar');
  });

  test('its parser\'s errors reach validateSidecarSpec with the field', () => {
    const kinds = defaultKinds().register(RedisKind);
    const problems = validateSidecarSpec('cache', { kind: 'Redis', redis: { maxMemory: 'lots' } }, kinds);
    expect(problems.map(p => p.field)).toEqual(['spec.redis.maxMemory']);
    expect(problems[0].message).toMatch(/256mb/);
  });

  test('the built-in registry does not know it, and says which kinds it does know', () => {
    expect(validateSidecarSpec('cache', { kind: 'Redis' })[0].message).toMatch(/unknown kind "Redis"/);
  });

  test('registering a kind twice is refused', () => {
    const kinds = new KindRegistry([RedisKind]);
    expect(() => kinds.register(RedisKind)).toThrow(/already registered/);
    expect(defaultKinds().has('Redis')).toBe(false);
  });
});
