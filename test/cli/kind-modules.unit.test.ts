import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { operatorOptionsFromArgs } from '../../src/cli-run';
import { KINDS_ENV, KindModuleError, kindModulePaths, loadKindModules } from '../../src/kind-modules';
import { capture } from './capture';

/**
 * Kinds modules as users write them, on disk: plain CommonJS files that get defineKind from this
 * checkout's constructs (an installed package's users get it from `pipeline-sidecars`; the packed
 * package is tried that way by test/package/pack.test.ts).
 */
const CONSTRUCTS = JSON.stringify(path.resolve(__dirname, '..', '..', 'constructs'));
let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-kinds-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
  return f;
}
/** A kind named `name` whose pod runs one container; `extra` adds defineKind fields. */
const kindSource = (name: string, extra = '') => `defineKind({ name: ${JSON.stringify(name)}, defaultPorts: [{ name: 'tcp', port: 7000 }], ${extra}
  create: (scope, id, props) => new PipelineSidecar(scope, id, { ...props, containers: [{ name: 'c', image: 'example.invalid/${name.toLowerCase()}:1' }] }) })`;
const kindModule = (name: string, ...kinds: string[]) =>
  file(name, `const { defineKind, PipelineSidecar } = require(${CONSTRUCTS});\nexports.kinds = [${kinds.join(', ')}];\n`);


/** A run asking for sidecar `cache` of `kind`, as two files for render. */
function runFiles(kind: string): string[] {
  return [
    file('run.yaml', YAML.stringify({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'tests-7', namespace: 'ci', annotations: { 'pipeline-sidecars.dev/sidecars': 'cache' } }, spec: {} })),
    file(`cache-${kind}.yaml`, YAML.stringify({ apiVersion: 'pipeline-sidecars.dev/v1alpha1', kind: 'PipelineSidecar', metadata: { name: 'cache', namespace: 'ci' }, spec: { kind, ports: [{ name: 'tcp', port: 7000 }] } })),
  ];
}
const images = (out: string) => YAML.parseAllDocuments(out).map(d => d.toJS()).filter(o => o.kind === 'Deployment').map(d => d.spec.template.spec.containers[0].image);

describe('render loads kinds modules', () => {
  test('--kinds MODULE: the module\'s kind renders; without it the same files are refused', async () => {
    const m = kindModule('foo.js', kindSource('Foo'));
    const ok = await capture(['render', '--kinds', m, ...runFiles('Foo').flatMap(f => ['-f', f])]);
    expect(ok.err).toBe('');
    expect(images(ok.out)).toEqual(['example.invalid/foo:1']);
    const without = await capture(['render', ...runFiles('Foo').flatMap(f => ['-f', f])]);
    expect(without.code).toBe(1);
    expect(without.err).toMatch(/has kind "Foo", which render does not know/);
  });

  test('--kinds is repeatable, and PIPELINE_SIDECARS_KINDS adds modules too', async () => {
    const a = kindModule('a.js', kindSource('Alpha'));
    const b = kindModule('b.js', kindSource('Beta'));
    const c = kindModule('c.js', kindSource('Gamma'));
    const before = process.env[KINDS_ENV];
    process.env[KINDS_ENV] = c;
    try {
      for (const k of ['Alpha', 'Beta', 'Gamma']) {
        const r = await capture(['render', '--kinds', a, '--kinds', b, ...runFiles(k).flatMap(f => ['-f', f])]);
        expect({ err: r.err, images: images(r.out) }).toEqual({ err: '', images: [`example.invalid/${k.toLowerCase()}:1`] });
      }
    } finally {
      if (before === undefined) delete process.env[KINDS_ENV]; else process.env[KINDS_ENV] = before;
    }
  });

  test('the environment lists files like PATH; each file is loaded once however it is named', () => {
    const env = { [KINDS_ENV]: ['/k/a.js', '', ' /k/b.js '].join(path.delimiter) };
    expect(kindModulePaths(['b.js', './b.js', 'c.js'], env, '/k')).toEqual(['/k/a.js', '/k/b.js', 'c.js']);
    expect(kindModulePaths([], {})).toEqual([]);
  });
});

describe('run loads kinds modules', () => {
  const kubeconfig = () => file('kubeconfig', YAML.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'x',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:9' } }], users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
  }));

  test('--kinds and PIPELINE_SIDECARS_KINDS reach the operator\'s registry; without them it has the built-ins only', () => {
    const m = kindModule('redisish.js', kindSource('Redisish'));
    expect(operatorOptionsFromArgs(['--kubeconfig', kubeconfig(), '--kinds', m]).kinds!.has('Redisish')).toBe(true);
    expect(operatorOptionsFromArgs(['--kubeconfig', kubeconfig()]).kinds!.names()).toEqual(['BuildKitDaemon', 'Container', 'DockerDaemon', 'Postgres', 'Registry']);
    const before = process.env[KINDS_ENV];
    process.env[KINDS_ENV] = m;
    try {
      expect(operatorOptionsFromArgs(['--kubeconfig', kubeconfig()]).kinds!.has('Redisish')).toBe(true);
    } finally {
      if (before === undefined) delete process.env[KINDS_ENV]; else process.env[KINDS_ENV] = before;
    }
  });

  test('a module that cannot be used stops run before it looks for a cluster', async () => {
    const bad = file('empty.js', 'exports.kinds = [];\n');
    const r = await capture(['run', '--kubeconfig', '/nonexistent/kubeconfig', '--kinds', bad]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`run: kinds module ${bad}: \`kinds\` must be a non-empty array of kinds made with defineKind, e.g. \`export const kinds = [MyKind];\`\n`);
  });
});

describe('a kinds module that cannot be used is an error naming the file and the fix', () => {
  const refused = (files: string[]) => {
    try {
      loadKindModules(files);
    } catch (e) {
      expect(e).toBeInstanceOf(KindModuleError);
      return (e as Error).message;
    }
    throw new Error('loaded');
  };

  test('no such file, a directory, TypeScript', () => {
    expect(refused(['nope.js'])).toBe(`kinds module nope.js: no such file (${path.resolve('nope.js')})`);
    expect(refused([dir])).toMatch(/is a directory: name the module's \.js file/);
    expect(refused([file('k.ts', 'export const kinds = [];')])).toMatch(/k\.ts: is TypeScript: compile it to JavaScript \(tsc\) and pass the \.js file$/);
  });

  test('it throws while loading', () => {
    expect(refused([file('throws.js', 'throw new Error("no REDIS_IMAGE set");\n')])).toMatch(/throws\.js: loading it failed: no REDIS_IMAGE set$/);
  });

  test('no `kinds` export, or not a non-empty array', () => {
    const m = file('named.js', `const { defineKind, PipelineSidecar } = require(${CONSTRUCTS});\nexports.RedisKind = ${kindSource('Redis')};\n`);
    expect(refused([m])).toBe(`kinds module ${m}: exports no \`kinds\`: add \`export const kinds = [MyKind];\` with the kinds it adds, each made with defineKind (it exports RedisKind)`);
    expect(refused([file('nothing.js', '')])).toMatch(/exports no `kinds`: .* \(it exports nothing\)$/);
    expect(refused([file('object.js', 'exports.kinds = { Redis: {} };')])).toMatch(/`kinds` must be a non-empty array/);
  });

  test('an entry that is not a kind: a bare definition, or not an object', () => {
    expect(refused([file('bare.js', 'exports.kinds = [{ name: "Redis", create() {} }];')]))
      .toMatch(/bare\.js: kinds\[0\] \(Redis\) has no parse, needs, defaultPorts, privileged: pass its definition through defineKind\(\{ \.\.\. \}\)$/);
    expect(refused([file('string.js', 'exports.kinds = ["Redis"];')])).toMatch(/kinds\[0\] is string, not a kind: make it with defineKind/);
  });

  test('a name the CRD refuses in spec.kind', () => {
    expect(refused([kindModule('lower.js', kindSource('redis'))])).toMatch(/lower\.js: kinds\[0\] has name "redis", which the CRD refuses in spec\.kind: use an upper-camel-case name matching \^\[A-Z\]/);
  });

  test('a built-in kind\'s name, or a name another module registers', () => {
    expect(refused([kindModule('pg.js', kindSource('Postgres'))])).toMatch(/pg\.js: registers kind "Postgres", which is built in \(.*\): give yours another name$/);
    const a = kindModule('one.js', kindSource('Dup'));
    const b = kindModule('two.js', kindSource('Dup'));
    expect(refused([a, b])).toBe(`kinds module ${b}: registers kind "Dup", which ${a} registers too: spec.kind names one kind, so load only one of them or rename one`);
    expect(refused([kindModule('twice.js', kindSource('Twice'), kindSource('Twice'))])).toMatch(/registers kind "Twice", which it lists twice/);
    // Each of them alone loads (the control).
    expect(loadKindModules([a]).has('Dup')).toBe(true);
  });

  test('an option block under a key the CRD already has', () => {
    expect(refused([kindModule('ports.js', kindSource('Cache', "optionsKey: 'ports',"))]))
      .toMatch(/kinds\[0\] \(Cache\) reads its options from spec\.ports, a field the CRD already gives another meaning: set optionsKey to a key of its own$/);
    expect(refused([kindModule('docker.js', kindSource('DockerDaemonPlus', "optionsKey: 'dockerDaemon',"))])).toMatch(/spec\.dockerDaemon, a field the CRD/);
  });

  test('require(\'pipeline-sidecars\') finds another copy than the running one: refused before loading it', () => {
    const src = `require('pipeline-sidecars');\nconst { defineKind, PipelineSidecar } = require(${CONSTRUCTS});\nexports.kinds = [${kindSource('Copied')}];\n`;
    // Without any copy beside it, require('pipeline-sidecars') fails, and the error says where the module belongs.
    const alone = file('alone/kinds.js', src);
    expect(refused([alone])).toMatch(/alone\/kinds\.js: loading it failed: Cannot find module 'pipeline-sidecars'.*; put the module inside .*, where require\('pipeline-sidecars'\) finds the running operator$/s);
    // With another copy installed beside it, the module is refused without being run.
    const copy = path.join(dir, 'other', 'node_modules', 'pipeline-sidecars');
    file('other/node_modules/pipeline-sidecars/package.json', JSON.stringify({ name: 'pipeline-sidecars', version: '0.0.1', main: 'index.js' }));
    file('other/node_modules/pipeline-sidecars/index.js', `require('fs').writeFileSync(${JSON.stringify(path.join(dir, 'other', 'ran'))}, '');\n`);
    const other = file('other/kinds.js', src);
    expect(refused([other])).toMatch(new RegExp(`other/kinds\\.js: require\\('pipeline-sidecars'\\) there finds another copy \\(${copy}\\) than the one running \\(.*\\): put the module inside `));
    expect(fs.existsSync(path.join(dir, 'other', 'ran'))).toBe(false);
  });
});
