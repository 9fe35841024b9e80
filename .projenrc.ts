import { javascript, typescript, YamlFile } from 'projen';

const project = new typescript.TypeScriptProject({
  name: 'pipeline-sidecars',
  description: 'Pipeline-level sidecars for Tekton (TEP-0130): a Kubernetes operator on cdk8s',
  defaultReleaseBranch: 'main',
  projenrcTs: true,
  packageManager: javascript.NodePackageManager.NPM,
  minNodeVersion: '20.19.0',
  typescriptVersion: '~5.9.0',
  github: false,
  release: false,
  eslint: false,
  sampleCode: false,
  // The standard Apache-2.0 text in LICENSE (projen writes it); the copyright notice is in NOTICE.
  licensed: true,
  license: 'Apache-2.0',
  copyrightOwner: 'The pipeline-sidecars authors',
  authorName: 'The pipeline-sidecars authors',
  authorOrganization: true,
  srcdir: 'src',
  libdir: 'lib',
  entrypoint: 'lib/src/index.js',
  bin: { 'pipeline-sidecars': 'bin/pipeline-sidecars' },
  deps: [
    'cdk8s@~2.70.0',
    'cdk8s-plus-27@~2.9.5',
    'constructs@^10.5.0',
    '@kubernetes/client-node@~1.4.0',
    '@peculiar/x509@^1.12.0',
    'reflect-metadata@^0.2.2',
    'prom-client@^15.1.0',
    'yaml@^2.5.0',
  ],
  devDeps: ['@swc/core', '@swc/jest', 'ts-node@^10.9.2', '@types/node@^20'],
  jest: true,
  package: false,
  tsJestOptions: { transformPattern: '^.+\\.tsx?$' },
  jestOptions: {
    jestVersion: '^30',
    coverageText: false,
    junitReporting: false,
    passWithNoTests: false,
    updateSnapshot: javascript.UpdateSnapshot.NEVER,
    jestConfig: {
      testTimeout: 120_000,
      maxWorkers: 2,
      coverageProvider: 'v8',
      collectCoverage: false,
      reporters: [new javascript.JestReporter('<rootDir>/test/jest/failure-reporter.js')],
    },
  },
  tsconfig: {
    include: ['src/**/*.ts', 'constructs/**/*.ts'],
    compilerOptions: { rootDir: '.', outDir: 'lib', experimentalDecorators: true, emitDecoratorMetadata: true, skipLibCheck: true },
  },
  tsconfigDev: {
    // projen places this file in test/, so paths are relative to test/.
    include: ['../src/**/*.ts', '../constructs/**/*.ts', '../scripts/**/*.ts', '../bench/**/*.ts', '../platform/**/*.ts'],
    compilerOptions: { rootDir: '..', experimentalDecorators: true, emitDecoratorMetadata: true, skipLibCheck: true },
  },
  gitignore: ['/.work/', '*.log'],
});

// ts-jest 29 is the newest ts-jest; pin it beside jest 30.
project.addDevDeps('ts-jest@^29.4.0', '@types/jest@^30');

// dist/ is the committed install bundle that Argo CD syncs, not a build artefact.
project.gitignore.include('/dist/');
project.npmignore?.exclude('/dist/');

new YamlFile(project, 'cdk8s.yaml', {
  obj: {
    language: 'typescript',
    app: 'npx ts-node --prefer-ts-exts constructs/bundle/main.ts',
    output: 'dist',
  },
});

// projen's own `package` task would write the tarball to dist/js, inside the committed install
// bundle; `npm pack` (compiled first by the prepack task below) makes the tarball instead.
project.tasks.tryFind('package')?.reset();

// The npm package: what platform engineers install to add sidecar kinds without a fork.
project.package.addVersion('0.1.0');
// An allowlist, so nothing but the compiled library, the CLI and the notices is shipped (no sources,
// tests, benches, scripts or examples); npm adds package.json, README.md and LICENSE itself.
project.package.addField('files', ['lib/**/*.js', 'lib/**/*.d.ts', 'bin/', 'README.md', 'LICENSE', 'NOTICE', 'CHANGELOG.md']);
// The public API. `.` has everything (constructs, kind registry, synthesizeRun, the Operator);
// `./constructs` is the constructs alone, without the operator runtime and its Kubernetes client.
// typesVersions gives the subpath's types to TypeScript setups that ignore `exports` (moduleResolution node10).
project.package.addField('exports', {
  '.': { types: './lib/src/index.d.ts', default: './lib/src/index.js' },
  './constructs': { types: './lib/constructs/index.d.ts', default: './lib/constructs/index.js' },
  './package.json': './package.json',
});
project.package.addField('typesVersions', { '*': { constructs: ['lib/constructs/index.d.ts'] } });
// lib/ is not committed: `npm pack` and `npm publish` compile it first, also from a clean clone.
project.addTask('prepack', { description: 'compile lib/ before npm pack or publish', steps: [{ spawn: 'compile' }] });

// Two jest projects. `unit`: every test that needs no cluster (constructs, decision tables, parsing,
// render, CLI, bundle), named *.unit.test.ts beside the tests of the same code, with no globalSetup,
// so a change to a construct is checked in seconds. `integration`: everything else, against the real
// control plane and Tekton that its globalSetup starts (jest runs a project's globalSetup only when
// one of its tests is selected). `npm test` runs both.
const pkg = project.tryFindObjectFile('package.json')!;
const jestShared = {
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'test/tsconfig.json' }],
    '^.+\\.m?js$': '@swc/jest',
  },
  // client-node 1.x and its auth chain are ESM-only: let swc turn them into CJS for jest.
  transformIgnorePatterns: ['/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose)/)'],
  clearMocks: true,
  testTimeout: 120_000,
  // jest's runner, but the real-node files (test/node, one node per machine behind a file lock) run
  // one after another on one worker while the rest use the other(s). Every project names it: jest
  // runs projects with different runners one runner after the other, not side by side.
  runner: '<rootDir>/test/jest/real-node-runner.js',
};
// The unit project transpiles with swc (no type check per file: seconds instead of a minute);
// `npm run typecheck`, a step of `npm test`, checks the types of everything.
// Class fields as tsc emits them for this project's target (assigned after parameter properties).
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2020', transform: { useDefineForClassFields: false } }, module: { type: 'commonjs' } }];
pkg.addOverride('jest.projects', [
  { ...jestShared, displayName: 'unit', testMatch: ['<rootDir>/test/**/*.unit.test.ts'], transform: { '^.+\\.tsx?$': swc, '^.+\\.m?js$': '@swc/jest' } },
  {
    ...jestShared,
    displayName: 'integration',
    testMatch: ['<rootDir>/test/**/*.test.ts'],
    testPathIgnorePatterns: ['/node_modules/', '\\.unit\\.test\\.ts$'],
    globalSetup: '<rootDir>/test/jest/global-setup.ts',
    globalTeardown: '<rootDir>/test/jest/global-teardown.ts',
  },
]);
for (const k of ['testMatch', 'transform', 'transformIgnorePatterns', 'globalSetup', 'globalTeardown', 'clearMocks', 'testPathIgnorePatterns']) {
  pkg.addDeletionOverride(`jest.${k}`);
}

// `npm test` must work on a fresh machine: the control plane is built (once, cached outside
// the repo) before jest starts, so jest's globalSetup only has to start it.
// The real-node tier (test/node: a kubelet node with containerd, CoreDNS and kube-router, images
// built locally) needs root; `test:fast` runs everything else.
const test = project.tasks.tryFind('test')!;
test.reset('bash scripts/control-plane.sh >/dev/null', { name: 'build or reuse the local control plane' });
test.exec('bash scripts/node.sh >/dev/null', { name: 'build or reuse the real-node tier' });
// The in-cluster install test (test/node/operator-install.test.ts) builds the operator image from the
// Dockerfile with the real-node tier's dockerd, and runs kubectl: each cached on its own key, built
// here so that jest's timeouts never include a build (the test calls the same scripts, then cached).
test.exec('bash scripts/operator-image.sh >/dev/null', { name: 'build or reuse the operator image' });
test.exec('bash scripts/kubectl.sh >/dev/null', { name: 'build or reuse kubectl' });
// The real Argo CD (test/node/argocd.test.ts), cached like the rest: about 13 minutes cold.
test.exec('bash scripts/argocd.sh >/dev/null', { name: 'build or reuse Argo CD' });
test.spawn(project.addTask('typecheck', {
  description: 'type-check src, constructs, scripts, bench and every test (the unit project transpiles without checking)',
  exec: 'tsc --noEmit -p test/tsconfig.json',
}));
test.exec('jest --ci --selectProjects unit integration', { receiveArgs: true });
// The real Argo CD file alone (it is also part of `npm test`), for work on the GitOps path.
project.addTask('test:argocd', {
  description: 'only the real Argo CD syncing a platform team\'s GitOps repo on the real node (part of npm test too)',
  steps: [
    { exec: 'bash scripts/control-plane.sh >/dev/null', name: 'build or reuse the local control plane' },
    { exec: 'bash scripts/node.sh >/dev/null', name: 'build or reuse the real-node tier' },
    { exec: 'bash scripts/operator-image.sh >/dev/null', name: 'build or reuse the operator image' },
    { exec: 'bash scripts/argocd.sh >/dev/null', name: 'build or reuse Argo CD' },
    { exec: 'jest --ci --selectProjects integration -- test/node/argocd.test.ts', receiveArgs: true },
  ],
});
project.addTask('test:unit', {
  description: 'every test that needs no cluster (test/**/*.unit.test.ts): no build, no control plane',
  steps: [{ exec: 'jest --ci --selectProjects unit', receiveArgs: true }],
});
project.addTask('test:fast', {
  description: 'everything except the real-node tier (test/node)',
  steps: [
    { exec: 'bash scripts/control-plane.sh >/dev/null', name: 'build or reuse the local control plane' },
    { exec: 'jest --ci --testPathIgnorePatterns /test/node/', receiveArgs: true },
  ],
});

// What a killed run of the platform left behind (processes, network namespaces, mounts, cgroups),
// found by the records each control plane and node writes as it starts, removed, and listed.
project.addTask('platform:stop', {
  description: 'stop and remove what a killed test run, demo or bench left of the local platform (never a run still in use)',
  exec: 'ts-node --transpile-only --project test/tsconfig.json platform/stop.ts',
});

// The main job, end to end on a local control plane (built on first use, like `npm test`).
project.addTask('demo', {
  description: 'Start a local control plane and the operator, run a TEP-0130 pipeline, print its timeline',
  steps: [
    { exec: 'bash scripts/control-plane.sh >/dev/null', name: 'build or reuse the local control plane' },
    { exec: 'ts-node --transpile-only --project test/tsconfig.json scripts/demo.ts' },
  ],
});

// Prints warm synth time per run (p50/p99) and heap growth; numbers only, no assertions.
// Transpile-only: the benchmark measures synthesis, not the type checker; --expose-gc for honest heap numbers.
project.addTask('bench:synth', {
  description: 'benchmark synthesizeRun (warm per-run time, heap after 10,000 runs)',
  exec: 'node --expose-gc -r ts-node/register bench/synth.ts',
  env: { TS_NODE_PROJECT: 'tsconfig.json', TS_NODE_TRANSPILE_ONLY: 'true' },
});

// The install bundle (dist/, committed): `synth` writes it with the same app cdk8s.yaml runs;
// `synth:check` synthesizes into a temp dir and fails if the committed dist/ differs.
const synthApp = 'ts-node --prefer-ts-exts constructs/bundle/main.ts';
project.addTask('synth', { description: 'write the install bundle to dist/', exec: synthApp });
project.addTask('synth:check', {
  description: 'fail if the committed dist/ differs from a fresh synth',
  exec: `bash -c 'tmp=$(mktemp -d) && trap "rm -rf $tmp" EXIT && CDK8S_OUTDIR=$tmp ${synthApp} >/dev/null && diff -ru dist "$tmp" && echo "dist/ matches a fresh synth"'`,
});

// Issue 6: latency/scale benchmark and crash-safety chaos run, each on its own fresh local control
// plane (docs/benchmarks.md). Both print numbers and end by themselves; chaos exits non-zero on a violation.
project.addTask('bench', {
  description: 'operator latency, throughput, RSS/CPU and API requests vs a bare-client baseline (--runs N --rate R --json FILE)',
  steps: [
    { exec: 'bash scripts/control-plane.sh >/dev/null', name: 'build or reuse the local control plane' },
    { exec: 'ts-node --transpile-only --project test/tsconfig.json bench/bench.ts', receiveArgs: true },
  ],
});
// Issue 10: gate latency on the real node (needs root; scripts/node.sh builds or reuses the node cache).
project.addTask('bench:gate-node', {
  description: 'created -> unpended p50/p99 and the daemon-ready part over N TEP runs on the real node (--runs N, default 20; --json FILE)',
  steps: [
    { exec: 'bash scripts/control-plane.sh >/dev/null', name: 'build or reuse the local control plane' },
    { exec: 'ts-node --transpile-only --project test/tsconfig.json bench/gate-node.ts', receiveArgs: true },
  ],
});
project.addTask('chaos', {
  description: 'create runs while SIGKILLing the operator, cutting its watches and restarting the API server; verify (--runs M --kills K)',
  steps: [
    { exec: 'bash scripts/control-plane.sh >/dev/null', name: 'build or reuse the local control plane' },
    { exec: 'ts-node --transpile-only --project test/tsconfig.json bench/chaos.ts', receiveArgs: true },
  ],
});

project.synth();
