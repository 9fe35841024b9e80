import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { GitopsRepo, GITOPS_EXAMPLE, GITOPS_FILES, installGitopsRepo, KINDS_MODULE } from './gitops-scratch';
import { packTarball, PKG, ROOT } from './scratch-project';

/**
 * examples/gitops-repo as a platform team uses it, outside this repository: its dependencies
 * installed (pipeline-sidecars from the packed tarball), its TypeScript compiled, its cdk8s app
 * synthesized, and the result compared with the dist/ it commits for Argo CD. Needs no cluster.
 */

const EXAMPLE = path.join(ROOT, GITOPS_EXAMPLE);
const committed = (f: string) => fs.readFileSync(path.join(EXAMPLE, 'dist', f));
const docsOf = (text: Buffer | string) => YAML.parseAllDocuments(text.toString()).map((d) => d.toJS());

let tmp: string;
let repo: GitopsRepo;
const numbers: Record<string, number> = {};

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-gitops-'));
  repo = installGitopsRepo(path.join(tmp, 'ci-platform'), packTarball(tmp));
  const t0 = Date.now();
  repo.build();
  numbers.buildMs = Date.now() - t0;
}, 900_000);

afterAll(() => {
  process.stderr.write(`[gitops-repo] ${JSON.stringify(numbers)}\n`);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** Synthesizes with main.ts edited by `edit` (restored after); the edit must change the file. */
function synthEdited(edit: (main: string) => string, out: string): ReturnType<GitopsRepo['synth']> {
  const file = path.join(repo.dir, 'main.ts');
  const original = fs.readFileSync(file, 'utf8');
  const edited = edit(original);
  expect(edited).not.toBe(original);
  fs.writeFileSync(file, edited);
  try {
    return repo.synth(path.join(tmp, out));
  } finally {
    fs.writeFileSync(file, original);
  }
}

test('its dependencies are the ranges this repository uses, and this version\'s pipeline-sidecars', () => {
  const ours = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const theirs = JSON.parse(fs.readFileSync(path.join(EXAMPLE, 'package.json'), 'utf8'));
  expect(theirs.dependencies).toEqual({ 'pipeline-sidecars': `^${PKG.version}`, 'cdk8s': ours.dependencies.cdk8s, 'constructs': ours.dependencies.constructs });
  const { 'cdk8s-cli': cli, ...dev } = theirs.devDependencies;
  expect(cli).toMatch(/^\^2\./);
  expect(dev).toEqual({ '@types/node': ours.devDependencies['@types/node'], 'ts-node': ours.devDependencies['ts-node'], 'typescript': ours.devDependencies.typescript });
  expect(theirs.scripts.synth).toBe('cdk8s synth');
});

test('Dockerfile.operator is docs/custom-kind.md\'s recipe, for the compiled WebServer module', () => {
  const recipe = /```Dockerfile\n([\s\S]*?)```/.exec(fs.readFileSync(path.join(ROOT, 'docs', 'custom-kind.md'), 'utf8'));
  expect(recipe).not.toBeNull();
  const instructions = (text: string) => text.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  expect(instructions(fs.readFileSync(path.join(EXAMPLE, 'Dockerfile.operator'), 'utf8')))
    .toEqual(instructions(recipe![1]).map((l) => l.replace('COPY redis.js', `COPY ${KINDS_MODULE}`).replace(/redis\.js/g, 'web-server.js')));
});

test('cdk8s synth writes, byte for byte, the dist/ the example commits: one file per chart, bundle first', () => {
  const { files, ms } = repo.synth(path.join(tmp, 'out'));
  numbers.synthMs = ms;
  expect(Object.keys(files)).toEqual([GITOPS_FILES.bundle, GITOPS_FILES.sidecars]);
  const listed = fs.readdirSync(path.join(EXAMPLE, 'dist')).sort();
  const differ = [...new Set([...listed, ...Object.keys(files)])].filter((f) => !listed.includes(f) || !files[f] || !files[f].equals(committed(f)));
  // A change of the bundle or of the example shows here: keep the fresh output for the commit.
  const fresh = path.join(ROOT, '.work', 'gitops-repo-dist');
  if (differ.length > 0) {
    fs.rmSync(fresh, { recursive: true, force: true });
    fs.mkdirSync(fresh, { recursive: true });
    for (const [f, bytes] of Object.entries(files)) fs.writeFileSync(path.join(fresh, f), bytes);
  }
  expect({ differ, fix: differ.length ? `if the change is meant: rm ${GITOPS_EXAMPLE}/dist/* && cp .work/gitops-repo-dist/* ${GITOPS_EXAMPLE}/dist/` : '' })
    .toEqual({ differ: [], fix: '' });
  // What the files hold: the bundle with the team's image and namespace, then their two PipelineSidecars.
  const bundle = docsOf(files[GITOPS_FILES.bundle]);
  const deployment = bundle.find((o) => o.kind === 'Deployment');
  expect(deployment.spec.template.spec.containers[0].image).toBe('registry.example.com/platform-team/pipeline-sidecars-operator:0.1.0');
  expect(bundle.filter((o) => o.kind === 'RoleBinding' && o.metadata.namespace === 'ci')).toHaveLength(1);
  expect(docsOf(files[GITOPS_FILES.sidecars]).map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}/${o.spec.kind}`))
    .toEqual(['PipelineSidecar/ci/docker/DockerDaemon', 'PipelineSidecar/ci/fixture-site/WebServer']);
});

test('an edited main.ts synthesizes something else (the control of the comparison)', () => {
  const { files } = synthEdited((m) => m.replace('Hello from the platform team', 'Hello from someone else'), 'out-edited');
  expect(files[GITOPS_FILES.bundle].equals(committed(GITOPS_FILES.bundle))).toBe(true);
  expect(files[GITOPS_FILES.sidecars].equals(committed(GITOPS_FILES.sidecars))).toBe(false);
});

test('a WebServer spec its kind refuses fails the synth, naming the field and the fix', () => {
  let err: unknown;
  try {
    synthEdited((m) => m.replace('page: \'Hello from the platform team\\\'s WebServer sidecar\',', 'page: \'\','), 'out-invalid');
  } catch (e) {
    err = e;
  }
  expect(String(err)).toMatch(/PipelineSidecarObject "fixture-site" is not valid: .*spec\.webServer\.page.*1 to 4096 characters/);
});

test('OPERATOR_IMAGE puts another image in the bundle and changes nothing else', () => {
  const ref = 'pipeline-sidecars.local/operator-with-web-server:test';
  const { files } = repo.synth(path.join(tmp, 'out-image'), { OPERATOR_IMAGE: ref });
  expect(files[GITOPS_FILES.sidecars].equals(committed(GITOPS_FILES.sidecars))).toBe(true);
  const ours = docsOf(committed(GITOPS_FILES.bundle));
  const theirs = docsOf(files[GITOPS_FILES.bundle]);
  const image = (objs: any[]) => objs.find((o) => o.kind === 'Deployment').spec.template.spec.containers[0].image;
  expect(image(theirs)).toBe(ref);
  const withoutImage = (objs: any[]) => JSON.stringify(objs).split(image(objs)).join('IMAGE');
  expect(withoutImage(theirs)).toBe(withoutImage(ours));
});

test('render --kinds previews a run of the WebServer PipelineSidecar in dist/ with the compiled module; without it, render says what to load', () => {
  const run = {
    apiVersion: 'tekton.dev/v1', kind: 'PipelineRun',
    metadata: { name: 'integration-1', namespace: 'ci', annotations: { 'pipeline-sidecars.dev/sidecars': 'fixture-site' } },
    spec: { pipelineSpec: { params: [{ name: 'fixture-url' }], tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] } },
  };
  fs.writeFileSync(path.join(repo.dir, 'run.yaml'), YAML.stringify(run));
  const sidecars = path.join('dist', GITOPS_FILES.sidecars);
  const docs = docsOf(repo.cli(['render', '--kinds', `./${KINDS_MODULE}`, '-f', sidecars, '-f', 'run.yaml']));
  const admitted = docs.find((d) => d.kind === 'PipelineRun');
  const deployment = docs.find((d) => d.kind === 'Deployment');
  const runId = admitted.metadata.annotations['pipeline-sidecars.dev/run-id'];
  expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual([
    `Deployment/fixture-site-${runId}`, `NetworkPolicy/fixture-site-${runId}-isolation`, 'PipelineRun/integration-1',
    `Service/fixture-site-${runId}`, `ServiceAccount/fixture-site-${runId}`,
  ]);
  expect(admitted.spec.params).toEqual([{ name: 'fixture-url', value: `http://fixture-site-${runId}.ci.svc:8080/` }]);
  const c = deployment.spec.template.spec.containers[0];
  expect(c).toMatchObject({
    image: 'pipeline-sidecars.local/busybox:1.38',
    env: [{ name: 'PAGE', value: 'Hello from the platform team\'s WebServer sidecar' }],
    readinessProbe: { httpGet: { path: '/', port: 8080 } },
  });
  expect(() => repo.cli(['render', '-f', sidecars, '-f', 'run.yaml'])).toThrow(/has kind "WebServer", which render does not know .*--kinds MODULE/);
});
