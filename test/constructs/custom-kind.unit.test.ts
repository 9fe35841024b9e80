import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultKinds, KindRegistry, synthesizeRun, validateSidecarSpec } from '../../constructs';
import { RedisKind } from '../../examples/custom-kind/redis';
import { one, RUN } from './fixtures';

const ROOT = path.join(__dirname, '..', '..');

describe('a custom kind, as docs/custom-kind.md shows it', () => {
  test('the doc shows examples/custom-kind/redis.ts verbatim', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'custom-kind.md'), 'utf8');
    const file = fs.readFileSync(path.join(ROOT, 'examples', 'custom-kind', 'redis.ts'), 'utf8');
    const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map(m => m[1]);
    expect(blocks).toContain(file);
  });

  test('registered next to the built-ins, it synthesizes a full sidecar', () => {
    // As in the doc:
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
