import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The rooms of the repository and which way their imports may run. Tests import everything; nothing
 * imports tests. The local platform (platform/) is what the tests, the bench and the demo share, so
 * it must not reach back into any of them, and the product (constructs/, src/) knows none of them.
 */
const REPO = path.resolve(__dirname, '..', '..');
const MAY_NOT_IMPORT: Record<string, string[]> = {
  constructs: ['src', 'platform', 'bench', 'scripts', 'test'],
  src: ['platform', 'bench', 'scripts', 'test'],
  platform: ['bench', 'scripts', 'test'],
  bench: ['scripts', 'test'],
  scripts: ['test'],
};

/** Every relative module specifier in a TS/JS source: import/export ... from, import(), require(). */
function specifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\b[^;'"]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g,
    /\bimport\s*['"](\.{1,2}\/[^'"]+)['"]/g,
    /\b(?:import|require|require\.resolve)\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]);
  return out;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) { if (e.name !== 'node_modules' && e.name !== 'k8s') walk(p); } else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The top-level room a specifier in `file` lands in. */
function roomOf(file: string, spec: string): string {
  return path.relative(REPO, path.resolve(path.dirname(file), spec)).split(path.sep)[0];
}

/** `from > to (spec)` for each import that runs the wrong way. */
function violations(room: string, files = sources(path.join(REPO, room)), read = (f: string) => fs.readFileSync(f, 'utf8')): string[] {
  const out: string[] = [];
  for (const f of files) {
    for (const spec of specifiers(read(f))) {
      const to = roomOf(f, spec);
      if (MAY_NOT_IMPORT[room].includes(to)) out.push(`${path.relative(REPO, f)} > ${to} (${spec})`);
    }
  }
  return out;
}

test.each(Object.keys(MAY_NOT_IMPORT))('no import runs from %s/ into a room above it', room => {
  const files = sources(path.join(REPO, room));
  expect(files.length).toBeGreaterThan(0);
  expect(violations(room, files)).toEqual([]);
});

test('the reader sees the imports it judges (negative controls)', () => {
  // Every form of import the repository uses is read...
  expect(specifiers([
    "import { a } from '../test/x';",
    "import type { B } from '../test/y';",
    "export { c } from '../test/z';",
    "import '../test/side-effect';",
    "const d = require('../test/w');",
    "const e = require.resolve('../test/v.js');",
    "const f = await import('../test/u');",
  ].join('\n'))).toEqual(['../test/x', '../test/y', '../test/z', '../test/side-effect', '../test/w', '../test/v.js', '../test/u']);
  // ...a file of bench/ that imported a test would be reported...
  const probe = path.join(REPO, 'bench', 'probe.ts');
  const read = (f: string) => f === probe ? "import { x } from '../test/operator/child';\n" : fs.readFileSync(f, 'utf8');
  expect(violations('bench', [...sources(path.join(REPO, 'bench')), probe], read)).toEqual(['bench/probe.ts > test (../test/operator/child)']);
  // ...and the platform really is imported by the tests, the bench and the demo.
  const importsPlatform = (room: string) => sources(path.join(REPO, room))
    .some(f => specifiers(fs.readFileSync(f, 'utf8')).some(s => roomOf(f, s) === 'platform'));
  expect(['test', 'bench', 'scripts'].filter(importsPlatform)).toEqual(['test', 'bench', 'scripts']);
});
