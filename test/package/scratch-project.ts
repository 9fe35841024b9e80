import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * What the package tests share: the npm package packed as a release packs it, and projects outside
 * the repository that install it the way a platform engineer does.
 */

export const ROOT = path.join(__dirname, '..', '..');
export const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

/** The versions this repository is built and tested with, so npm finds them in the cache `npm ci` filled. */
export const versionOf = (dep: string): string => JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', dep, 'package.json'), 'utf8')).version;

/** Runs a command; throws with its output unless it exits 0. */
export function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return String(r.stdout);
}

/** The environment of the user's commands: nothing of this repository's npm run or kinds setting leaks in. */
export function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_|^NODE_PATH$|^INIT_CWD$|^PIPELINE_SIDECARS_|^CDK8S_|^OPERATOR_IMAGE$/.test(k)));
  return { ...env, ...extra };
}

/** Files of the repository (or of `under`) as a clean clone has them: tracked, or new and not ignored. */
export function repoFiles(under = '.'): string[] {
  return sh('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', under], { cwd: ROOT })
    .split('\0').filter(Boolean).filter((f) => fs.existsSync(path.join(ROOT, f))); // not deleted in the working tree
}

/** Copies repository files (paths relative to ROOT) to `dest`, keeping their modes; `strip` is removed from the front of each path. */
export function copyRepoFiles(files: string[], dest: string, strip = ''): void {
  for (const f of files) {
    const to = path.join(dest, f.slice(strip.length));
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), to);
    fs.chmodSync(to, fs.statSync(path.join(ROOT, f)).mode);
  }
}

/**
 * `npm pack` of a clean clone in `tmp` (the files git would check out, no lib/, so prepack compiles
 * them as a release does); returns the tarball's path.
 */
export function packTarball(tmp: string): string {
  const clone = path.join(tmp, 'clone');
  copyRepoFiles(repoFiles(), clone);
  if (fs.existsSync(path.join(clone, 'lib'))) throw new Error('the clean clone has a lib/: is lib/ no longer ignored by git?');
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'));
  sh('npm', ['pack', '--pack-destination', tmp], { cwd: clone, env: userEnv() });
  return path.join(tmp, `pipeline-sidecars-${PKG.version}.tgz`);
}
