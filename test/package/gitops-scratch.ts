import * as fs from 'node:fs';
import * as path from 'node:path';
import { copyRepoFiles, repoFiles, sh, userEnv, versionOf } from './scratch-project';

/**
 * examples/gitops-repo as a platform team has it: a copy outside this repository with its
 * dependencies installed, the pipeline-sidecars package among them from the packed tarball.
 */

export const GITOPS_EXAMPLE = 'examples/gitops-repo';
/** The chart files `cdk8s synth` writes, in apply order (the sidecars' chart depends on the bundle's). */
export const GITOPS_FILES = { bundle: '0000-pipeline-sidecars.k8s.yaml', sidecars: '0001-ci-sidecars.k8s.yaml' } as const;
/** The compiled kinds module, where `npm run build` (tsc) puts it and Dockerfile.operator copies it from. */
export const KINDS_MODULE = 'build/kinds/web-server.js';

export interface GitopsRepo {
  /** The copy's directory. */
  readonly dir: string;
  /** `npm run build`: tsc type-checks main.ts and the kinds module against the installed package and emits build/. */
  build(): void;
  /** Synthesizes as `cdk8s synth` does into `outdir`; returns each file's bytes by name and the time it took. */
  synth(outdir: string, env?: Record<string, string>): { files: Record<string, Buffer>; ms: number };
  /** The installed pipeline-sidecars CLI, run in the copy. */
  cli(args: string[], env?: Record<string, string>): string;
}

/**
 * Copies the example to `dir` (the files a clone has: no node_modules/, build/ or other ignored
 * files) and installs its dependencies with `npm install`, offline from the cache where it can:
 *  - pipeline-sidecars is the tarball (its ^0.1.0 is what a published release would satisfy);
 *  - cdk8s, constructs, typescript, ts-node, @types/node are pinned to this repository's installed
 *    versions, which the example's ranges (checked to be the repository's own) accept, and which
 *    the cache `npm ci` filled holds;
 *  - cdk8s-cli is left out: it is not in that cache, and it is the jsii toolchain (jsii-pacmak,
 *    jsii-rosetta, cdk8s-plus-33, ...) for `cdk8s import`, of which `cdk8s synth` needs nothing:
 *    synth() below runs the app command of cdk8s.yaml exactly as `cdk8s synth` does.
 */
export function installGitopsRepo(dir: string, tarball: string): GitopsRepo {
  copyRepoFiles(repoFiles(GITOPS_EXAMPLE), dir, `${GITOPS_EXAMPLE}/`);
  const pkgFile = path.join(dir, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
  const pin = (deps: Record<string, string>) => Object.fromEntries(Object.keys(deps).filter((d) => d !== 'cdk8s-cli')
    .map((d) => [d, d === 'pipeline-sidecars' ? `file:${tarball}` : versionOf(d)]));
  fs.writeFileSync(pkgFile, JSON.stringify({ ...pkg, dependencies: pin(pkg.dependencies), devDependencies: pin(pkg.devDependencies) }, null, 2));
  sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, env: userEnv() });

  const app = /^app:\s*(.+)$/m.exec(fs.readFileSync(path.join(dir, 'cdk8s.yaml'), 'utf8'))?.[1];
  if (!app) throw new Error(`${GITOPS_EXAMPLE}/cdk8s.yaml has no app: line`);
  return {
    dir,
    build: () => { sh('npm', ['run', 'build'], { cwd: dir, env: userEnv() }); },
    synth: (outdir, env = {}) => {
      // cdk8s-cli's synth: empty the output directory, run `app` in a shell with CDK8S_OUTDIR set
      // (and construct metadata off, as it is without validation plugins), list what it wrote.
      fs.rmSync(outdir, { recursive: true, force: true });
      const t0 = Date.now();
      sh('sh', ['-c', app], { cwd: dir, env: userEnv({ ...env, CDK8S_OUTDIR: outdir, CDK8S_RECORD_CONSTRUCT_METADATA: 'false' }) });
      const ms = Date.now() - t0;
      const files = Object.fromEntries(fs.readdirSync(outdir).sort().map((f) => [f, fs.readFileSync(path.join(outdir, f))]));
      return { files, ms };
    },
    cli: (args, env = {}) => sh(process.execPath, [path.join(dir, 'node_modules', 'pipeline-sidecars', 'bin', 'pipeline-sidecars'), ...args],
      { cwd: dir, env: userEnv(env) }),
  };
}
