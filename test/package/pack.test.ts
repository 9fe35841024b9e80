import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { packTarball, PKG, ROOT, sh, userEnv, versionOf } from './scratch-project';

/**
 * The npm package as a platform engineer gets it: `npm pack` from a clean copy of the repository
 * (compiled by prepack), installed into an empty project outside the repository with its runtime
 * dependencies only, then used there: the public API compiled against the package's types, the
 * kinds module of docs/custom-kind.md compiled as the page writes it, and the installed CLI.
 * Needs no cluster; slow (npm pack and npm install, about a minute and a half).
 */

/** Paths of the tarball that have no business in it (tarball paths start with package/). */
function unwantedFiles(files: string[]): string[] {
  const shipped = /^package\/(package\.json|README\.md|LICENSE|NOTICE|CHANGELOG\.md|bin\/pipeline-sidecars|lib\/.+\.(js|d\.ts))$/;
  const never = /(^|\/)(test|tests|bench|scripts|examples|node_modules|\.work|\.projen|dist|docs)\//;
  return files.filter(f => !shipped.test(f) || never.test(f.replace(/^package\//, '')) || /\.test\.(js|d\.ts)$/.test(f));
}

/** The page's code blocks that name a file (```ts file=redis.ts), by file name. */
function docFiles(): Record<string, string> {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'custom-kind.md'), 'utf8');
  return Object.fromEntries([...doc.matchAll(/```\w+ file=(\S+)\n([\s\S]*?)```/g)].map(m => [m[1], m[2]]));
}

const RUN_YAML = YAML.stringify({
  apiVersion: 'tekton.dev/v1', kind: 'PipelineRun',
  metadata: { name: 'tests-7', namespace: 'ci', annotations: { 'pipeline-sidecars.dev/sidecars': 'cache' } },
  spec: { pipelineRef: { name: 'integration-tests' } },
});

/** Every name the package promises, imported from it and used, so that tsc checks each has types. */
const API_TS = `import { App } from 'cdk8s';
import {
  BuildKitDaemon, ContainerSidecar, defaultKinds, defineKind, DockerDaemon, InstallBundle, IsolationPolicy, KindRegistry,
  loadKindModules, Operator, OperatorOptions, PipelineSidecar, PipelineSidecarObject, Postgres, Registry, synthesizeRun,
} from 'pipeline-sidecars';
import { InstallBundle as BundleOfSubpath, PipelineSidecar as SidecarOfSubpath } from 'pipeline-sidecars/constructs';

const constructs: Array<abstract new (...args: any[]) => unknown> = [PipelineSidecar, DockerDaemon, BuildKitDaemon, Postgres, Registry, ContainerSidecar, IsolationPolicy, InstallBundle, PipelineSidecarObject];
const start: (o: OperatorOptions) => Promise<void> = (o) => new Operator(o).start();
const load: (files: string[]) => KindRegistry = loadKindModules;

const app = new App();
new InstallBundle(app, 'bundle', { image: 'registry.example/operator:1', servedNamespaces: ['ci'] });
const kinds: KindRegistry = defaultKinds().register(defineKind({
  name: 'Echo',
  defaultPorts: [{ name: 'http', port: 5678 }],
  create: (scope, id, props) => new PipelineSidecar(scope, id, { ...props, containers: [{ name: 'echo', image: 'example.invalid/echo:1' }] }),
}));
const manifests = synthesizeRun({
  run: { name: 'build-1', namespace: 'ci', uid: '3e0d8a52-7c4b-4f1e-9a6d-5b2c1d0e9f8a', runId: 'a1b2c3d4', naming: 'runId' },
  sidecars: [{ name: 'db', spec: { kind: 'Postgres' }, material: { password: 'preview-only' } }, { name: 'echo', spec: { kind: 'Echo' }, material: {} }],
  allowPrivileged: false,
  kinds,
});
console.log(JSON.stringify({
  constructs: constructs.map(c => c.name),
  subpathSameClasses: SidecarOfSubpath === PipelineSidecar && BundleOfSubpath === InstallBundle,
  functions: [typeof start, typeof load],
  bundle: [...new Set(app.charts.flatMap(c => c.toJson()).map(o => o.kind))].sort(),
  run: manifests.map(m => m.kind + '/' + m.metadata.name),
}));
`;

describe('the npm package, installed outside the repository', () => {
  let tmp: string;
  let tarball: string;
  let files: string[];
  let project: string;
  const node = (args: string[], env: Record<string, string> = {}) => sh(process.execPath, args, { cwd: project, env: userEnv(env) });
  const cli = (args: string[], env: Record<string, string> = {}) =>
    node([path.join(project, 'node_modules', 'pipeline-sidecars', 'bin', 'pipeline-sidecars'), ...args], env);

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-pack-'));
    tarball = packTarball(tmp);
    files = sh('tar', ['-tzf', tarball]).split('\n').filter(Boolean).sort();
    process.stderr.write(`[pack] ${path.basename(tarball)}: ${fs.statSync(tarball).size} bytes packed, ${files.length} files\n`);

    project = path.join(tmp, 'my-kinds');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'my-kinds', version: '1.0.0', private: true }));
    sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball,
      `constructs@${versionOf('constructs')}`, `cdk8s@${versionOf('cdk8s')}`, `typescript@${versionOf('typescript')}`], { cwd: project, env: userEnv() });
  }, 900_000);

  afterAll(() => { if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

  test('the tarball holds the compiled library, the CLI and the notices, and nothing else', () => {
    expect(unwantedFiles(files)).toEqual([]);
    for (const f of ['lib/src/index.js', 'lib/src/index.d.ts', 'lib/constructs/index.d.ts', 'lib/src/cli.js', 'bin/pipeline-sidecars', 'README.md', 'LICENSE', 'NOTICE', 'CHANGELOG.md', 'package.json']) {
      expect(files).toContain(`package/${f}`);
    }
    const installed = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'pipeline-sidecars', 'package.json'), 'utf8'));
    expect({ version: installed.version, license: installed.license }).toEqual({ version: PKG.version, license: 'Apache-2.0' });
  });

  test('the file-list check flags test, bench, scripts, examples and source files (the control)', () => {
    const bad = ['package/test/cli/help.unit.test.ts', 'package/bench/synth.ts', 'package/scripts/node.sh', 'package/lib/test/pack.test.js',
      'package/examples/custom-kind/node_modules/x/index.js', 'package/src/cli.ts', 'package/.work/log.txt', 'package/lib/scripts/demo.js', 'package/lib/src/x.test.js'];
    expect(unwantedFiles([...bad, 'package/lib/src/cli.js', 'package/LICENSE'])).toEqual(bad);
  });

  test('the installed CLI runs the compiled library without ts-node: --version, --help', () => {
    expect(fs.existsSync(path.join(project, 'node_modules', 'ts-node'))).toBe(false);
    expect(fs.existsSync(path.join(project, 'node_modules', 'pipeline-sidecars', 'src'))).toBe(false);
    expect(cli(['--version'])).toBe(`${PKG.version}\n`);
    expect(cli(['render', '--help'])).toMatch(/^usage: pipeline-sidecars render /);
  });

  test('every public name compiles with its types (node16 and node10 resolution) and synthesizes a bundle and a run', () => {
    fs.writeFileSync(path.join(project, 'api.ts'), API_TS);
    for (const module of ['node16', 'commonjs']) {
      fs.writeFileSync(path.join(project, `tsconfig.${module}.json`), JSON.stringify({
        compilerOptions: { module, target: 'es2020', strict: true, skipLibCheck: true, outDir: `out-${module}` }, files: ['api.ts'],
      }));
      node([path.join('node_modules', 'typescript', 'bin', 'tsc'), '-p', `tsconfig.${module}.json`]);
    }
    const out = JSON.parse(node([path.join('out-node16', 'api.js')]));
    expect(out).toEqual({
      constructs: ['PipelineSidecar', 'DockerDaemon', 'BuildKitDaemon', 'Postgres', 'Registry', 'ContainerSidecar', 'IsolationPolicy', 'InstallBundle', 'PipelineSidecarObject'],
      subpathSameClasses: true,
      functions: ['function', 'function'],
      bundle: expect.arrayContaining(['CustomResourceDefinition', 'Deployment', 'MutatingWebhookConfiguration', 'Namespace']),
      run: expect.arrayContaining(['Deployment/db-a1b2c3d4', 'Secret/db-a1b2c3d4-client', 'Deployment/echo-a1b2c3d4']),
    });
  });

  test('docs/custom-kind.md: its code compiles as written, check-redis runs, render --kinds renders its PipelineSidecar', () => {
    const doc = docFiles();
    expect(Object.keys(doc).sort()).toEqual(['cache.yaml', 'check-redis.ts', 'redis.ts', 'tsconfig.json']);
    for (const [f, text] of Object.entries(doc)) fs.writeFileSync(path.join(project, f), text);
    fs.writeFileSync(path.join(project, 'run.yaml'), RUN_YAML);
    node([path.join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
    expect(node(['check-redis.js'])).toBe('ServiceAccount cache-x7k2m9qa\nService cache-x7k2m9qa\nNetworkPolicy cache-x7k2m9qa-isolation\nDeployment cache-x7k2m9qa\n');

    const started = process.hrtime.bigint();
    const out = cli(['render', '--kinds', './redis.js', '-f', 'cache.yaml', '-f', 'run.yaml']);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    process.stderr.write(`[pack] pipeline-sidecars render --kinds ./redis.js (installed package, one call): ${seconds.toFixed(2)} s\n`);
    const docs = YAML.parseAllDocuments(out).map(d => d.toJS());
    const run = docs.find(d => d.kind === 'PipelineRun');
    const deployment = docs.find(d => d.kind === 'Deployment');
    expect(deployment.spec.template.spec.containers[0]).toMatchObject({ image: 'redis:7-alpine', args: ['--port', '6379', '--maxmemory', '256mb'] });
    expect(run.spec.params).toEqual([{ name: 'redis-address', value: `${deployment.metadata.name}.ci.svc:6379` }]);
  });

  test('in the operator image\'s layout, PIPELINE_SIDECARS_KINDS alone serves the kind; a module outside it is refused', () => {
    // The Dockerfile's runtime stage: /app holds package.json, lib/, bin/ and node_modules/ (the
    // dependencies, not pipeline-sidecars itself); the docs' FROM recipe adds /app/kinds/redis.js.
    const app = path.join(tmp, 'app');
    const installed = path.join(project, 'node_modules', 'pipeline-sidecars');
    for (const f of ['package.json', 'lib', 'bin']) fs.cpSync(path.join(installed, f), path.join(app, f), { recursive: true });
    fs.mkdirSync(path.join(app, 'node_modules'));
    for (const dep of fs.readdirSync(path.join(project, 'node_modules'))) {
      if (dep !== 'pipeline-sidecars' && dep !== '.bin') fs.symlinkSync(path.join(project, 'node_modules', dep), path.join(app, 'node_modules', dep));
    }
    fs.mkdirSync(path.join(app, 'kinds'));
    fs.copyFileSync(path.join(project, 'redis.js'), path.join(app, 'kinds', 'redis.js'));
    const inImage = (kinds: string) => spawnSync(process.execPath, [path.join(app, 'bin', 'pipeline-sidecars'), 'render', '-f', 'cache.yaml', '-f', 'run.yaml'],
      { cwd: project, encoding: 'utf8', env: userEnv({ PIPELINE_SIDECARS_KINDS: kinds }) });

    const served = inImage(path.join(app, 'kinds', 'redis.js'));
    expect(served.stderr).toBe('');
    expect(YAML.parseAllDocuments(served.stdout).map(d => d.toJS().kind)).toContain('Deployment');

    const outside = path.join(tmp, 'elsewhere', 'redis.js');
    fs.mkdirSync(path.dirname(outside));
    fs.copyFileSync(path.join(project, 'redis.js'), outside);
    const refused = inImage(outside);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`^render: kinds module ${outside}: loading it failed: Cannot find module 'pipeline-sidecars'.*put the module inside ${app} `, 's'));
  });
});
