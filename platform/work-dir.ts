/**
 * The repository's ignored work folder, .work/, and what the platform keeps there for operators it
 * starts: their logs, and the operator compiled to JavaScript for child processes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..');
export const WORK_DIR = path.join(REPO, '.work');

/**
 * One folder per test file of operator logs. The failure reporter (test/jest/failure-reporter.js)
 * removes a file's folder when every test in it passed, so only the logs of failures stay.
 */
export const TEST_LOGS_ROOT = path.join(WORK_DIR, 'test-logs');

/**
 * The folder (created) for operator logs: inside a jest test file, that file's folder under
 * TEST_LOGS_ROOT; anywhere else (bench, chaos, demo), `.work/<outside>`.
 */
export function operatorLogDir(outside = 'operator-logs'): string {
  // A global lookup, not an import: the bench and the demo run without jest.
  const testPath: string | undefined = (globalThis as any).expect?.getState?.().testPath;
  const dir = testPath
    ? path.join(TEST_LOGS_ROOT, path.relative(REPO, testPath).replace(/[\\/]/g, '__'))
    : path.join(WORK_DIR, outside);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

const JS_ROOT = path.join(WORK_DIR, 'operator-js');
const compiled = new Set<string>();

/**
 * Transpiles the top-level `folders` (swc, no type check) to CommonJS under
 * .work/operator-js/<pid>/, each once per process, so an operator child runs compiled code as an
 * installed operator does: no TypeScript compiler in its memory (ts-node adds ~100 MiB of RSS) and
 * a fast start. Returns the compiled tree's root. The tree goes when this process exits; trees of
 * processes that died without exiting (SIGKILL) go at the next process's first build.
 */
export function buildOperatorJs(folders: readonly string[]): string {
  const out = path.join(JS_ROOT, String(process.pid));
  if (compiled.size === 0) {
    removeDeadTrees();
    process.once('exit', () => fs.rmSync(out, { recursive: true, force: true }));
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const swc = require('@swc/core') as typeof import('@swc/core');
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(REPO, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) { walk(r); continue; }
      if (!e.name.endsWith('.ts') || e.name.endsWith('.d.ts')) continue;
      const { code } = swc.transformFileSync(path.join(REPO, r), {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' }, sourceMaps: false, swcrc: false, configFile: false,
      });
      const dest = path.join(out, r.replace(/\.ts$/, '.js'));
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.writeFileSync(dest, code);
    }
  };
  for (const folder of folders) {
    if (compiled.has(folder)) continue;
    walk(folder);
    compiled.add(folder);
  }
  return out;
}

/** Removes the compiled trees of processes that are gone. */
function removeDeadTrees(): void {
  if (!fs.existsSync(JS_ROOT)) return;
  for (const name of fs.readdirSync(JS_ROOT)) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    fs.rmSync(path.join(JS_ROOT, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}
