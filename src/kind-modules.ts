import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { PIPELINE_SIDECAR_SPEC_SCHEMA } from '../constructs/api/crd';
import { defaultKinds, KindRegistry, optionsKeyOf, SidecarKind } from '../constructs/kinds';

/**
 * Kinds modules: how a platform adds sidecar kinds to the operator and to `render` without a fork.
 *
 * The contract (docs/custom-kind.md): a JavaScript module that require() can load (CommonJS, as tsc
 * emits it) whose `kinds` export is a non-empty array of kinds made with `defineKind`. Every path
 * that needs kinds loads the same modules: `run --kinds`, `render --kinds`, and both read
 * PIPELINE_SIDECARS_KINDS, so an image built FROM ours with a module and that ENV serves its kinds.
 */

/** Environment variable naming kinds modules, separated like PATH (":"). */
export const KINDS_ENV = 'PIPELINE_SIDECARS_KINDS';

/** A kinds module that cannot be used; the message names the file and what to fix. */
export class KindModuleError extends Error {
  constructor(readonly file: string, problem: string) {
    super(`kinds module ${file}: ${problem}`);
  }
}

/** The kinds modules to load: those in PIPELINE_SIDECARS_KINDS, then the flags', each file once. */
export function kindModulePaths(flags: readonly string[] = [], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string[] {
  const fromEnv = (env[KINDS_ENV] ?? '').split(path.delimiter).map((s) => s.trim()).filter((s) => s.length > 0);
  const seen = new Set<string>();
  return [...fromEnv, ...flags].filter((f) => {
    const abs = path.resolve(cwd, f);
    if (seen.has(abs)) return false;
    seen.add(abs);
    return true;
  });
}

/**
 * A registry of the built-in kinds plus those of `files` (relative to `cwd`). Throws KindModuleError
 * for a module that does not load, exports no usable `kinds`, or registers a name already taken.
 */
export function loadKindModules(files: readonly string[], cwd = process.cwd()): KindRegistry {
  const registry = defaultKinds();
  const builtIn = registry.names();
  const registeredBy = new Map<string, string>();
  for (const f of files) {
    for (const kind of kindsOf(f, path.resolve(cwd, f), builtIn)) {
      const other = registeredBy.get(kind.name);
      if (other !== undefined) {
        throw new KindModuleError(f, `registers kind "${kind.name}", which ${other === f ? 'it lists twice' : `${other} registers too`}: ` +
          'spec.kind names one kind, so load only one of them or rename one');
      }
      registry.register(kind);
      registeredBy.set(kind.name, f);
    }
  }
  return registry;
}

function kindsOf(shown: string, file: string, builtIn: string[]): Array<SidecarKind<unknown>> {
  if (!fs.existsSync(file)) throw new KindModuleError(shown, `no such file (${file})`);
  if (fs.statSync(file).isDirectory()) throw new KindModuleError(shown, 'is a directory: name the module\'s .js file');
  if (/\.[mc]?ts$/.test(file)) throw new KindModuleError(shown, 'is TypeScript: compile it to JavaScript (tsc) and pass the .js file');
  assertSameLibrary(shown, file);
  let mod: Record<string, unknown>;
  try {
    mod = require(file);
  } catch (e) {
    throw new KindModuleError(shown, `loading it failed: ${(e as Error)?.message ?? e}${loadHint(e)}`);
  }
  const kinds = mod?.kinds;
  if (kinds === undefined) {
    const found = mod && typeof mod === 'object' ? Object.keys(mod) : [];
    throw new KindModuleError(shown, 'exports no `kinds`: add `export const kinds = [MyKind];` with the kinds it adds, each made with defineKind' +
      (found.length ? ` (it exports ${found.join(', ')})` : ' (it exports nothing)'));
  }
  if (!Array.isArray(kinds) || kinds.length === 0) {
    throw new KindModuleError(shown, '`kinds` must be a non-empty array of kinds made with defineKind, e.g. `export const kinds = [MyKind];`');
  }
  return kinds.map((k, i) => checkedKind(shown, k, i, builtIn));
}

const KIND_FUNCTIONS = ['create', 'parse', 'needs', 'defaultPorts', 'privileged'] as const;

function checkedKind(shown: string, k: unknown, i: number, builtIn: string[]): SidecarKind<unknown> {
  const at = `kinds[${i}]`;
  if (!k || typeof k !== 'object') throw new KindModuleError(shown, `${at} is ${k === null ? 'null' : typeof k}, not a kind: make it with defineKind({ name, create })`);
  const kind = k as Record<string, unknown>;
  // The CRD decides which spec.kind values a PipelineSidecar may carry: a kind it refuses is unusable.
  const { pattern, maxLength } = PIPELINE_SIDECAR_SPEC_SCHEMA.properties.kind;
  if (typeof kind.name !== 'string' || !new RegExp(pattern).test(kind.name) || kind.name.length > maxLength) {
    throw new KindModuleError(shown, `${at} has name ${JSON.stringify(kind.name)}, which the CRD refuses in spec.kind: ` +
      `use an upper-camel-case name matching ${pattern}, at most ${maxLength} characters, e.g. Redis`);
  }
  if (builtIn.includes(kind.name)) {
    throw new KindModuleError(shown, `registers kind "${kind.name}", which is built in (${builtIn.join(', ')}): give yours another name`);
  }
  const missing = KIND_FUNCTIONS.filter((f) => typeof kind[f] !== 'function');
  if (missing.length > 0) {
    throw new KindModuleError(shown, `${at} (${kind.name}) has no ${missing.join(', ')}: pass its definition through defineKind({ ... })`);
  }
  const key = optionsKeyOf(kind as { name: string; optionsKey?: string });
  if (key in PIPELINE_SIDECAR_SPEC_SCHEMA.properties) {
    throw new KindModuleError(shown, `${at} (${kind.name}) reads its options from spec.${key}, a field the CRD already gives another meaning: set optionsKey to a key of its own`);
  }
  return kind as unknown as SidecarKind<unknown>;
}

/** The directory of the nearest package.json above `file`. */
function packageRootOf(file: string): string | undefined {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * A module that finds another copy of pipeline-sidecars would build its sidecars with other classes
 * than the operator's: its spec errors would not be recognised as such (a crash instead of a
 * status condition). Refuse it before loading.
 */
function assertSameLibrary(shown: string, file: string): void {
  let theirs: string;
  try {
    theirs = createRequire(file).resolve('pipeline-sidecars');
  } catch {
    return; // it does not import pipeline-sidecars by name (or cannot, which loading reports)
  }
  const theirRoot = packageRootOf(theirs);
  const ourRoot = packageRootOf(__filename);
  if (theirRoot !== ourRoot) {
    throw new KindModuleError(shown, `require('pipeline-sidecars') there finds another copy (${theirRoot}) than the one running (${ourRoot}): ` +
      `put the module inside ${ourRoot} (e.g. ${path.join(ourRoot ?? '', 'kinds')}/), or remove that copy, so it extends the running operator's classes`);
  }
}

function loadHint(e: unknown): string {
  const err = e as { code?: string; message?: string };
  if (err?.code === 'MODULE_NOT_FOUND' && /'pipeline-sidecars'/.test(err.message ?? '')) {
    const root = packageRootOf(__filename);
    return `; put the module inside ${root} (e.g. ${path.join(root ?? '', 'kinds')}/), where require('pipeline-sidecars') finds the running operator`;
  }
  if (err instanceof SyntaxError) return '; it must be JavaScript that require() loads (CommonJS, as tsc emits with "module": "commonjs")';
  return '';
}
