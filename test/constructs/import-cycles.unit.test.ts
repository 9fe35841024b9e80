import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../../constructs');

/** Relative imports of every .ts file under `dir` (type-only ones too, as madge counts them). */
function importGraph(dir: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const src = fs.readFileSync(p, 'utf8');
        const deps: string[] = [];
        for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?from\s+'(\.[^']+)'/g)) {
          const base = path.resolve(path.dirname(p), m[1]);
          const file = fs.existsSync(`${base}.ts`) ? `${base}.ts` : path.join(base, 'index.ts');
          deps.push(path.relative(ROOT, file));
        }
        graph.set(path.relative(ROOT, p), deps);
      }
    }
  };
  walk(dir);
  return graph;
}

/** Every cycle found by a depth-first walk, each as the files along it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const out: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === 'open') out.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return out;
}

test('constructs/ has no import cycle (names.ts and kinds.ts were one)', () => {
  const graph = importGraph(ROOT);
  expect(graph.get('names.ts')).toBeDefined();
  expect(cycles(graph).map(c => c.join(' > '))).toEqual([]);
});

test('the cycle finder finds a cycle when there is one (negative control)', () => {
  const g = new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', ['a.ts']]]);
  expect(cycles(g)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  // And the graph reader sees names.ts's imports (so an empty answer above is not a parsing miss).
  expect(importGraph(ROOT).get('names.ts')).toEqual(expect.arrayContaining(['api/spec.ts', 'errors.ts']));
});
