/**
 * `ts-node bench/profile.ts FILE.cpuprofile [top]`: where a V8 CPU profile (node --cpu-prof, written
 * by `npm run bench -- --profile`) spent its time: self time by package/file and by function.
 */
import * as fs from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }

export function summarize(file: string, top = 25): string {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const where = (url: string) => {
    if (!url) return '(native/vm)';
    const nm = url.lastIndexOf('node_modules/');
    if (nm >= 0) { const rest = url.slice(nm + 13).split('/'); return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]; }
    if (url.startsWith('node:')) return url;
    const m = /operator-js\/\d+\/(.*)$/.exec(url);
    return m ? m[1] : url.replace(/^file:\/\//, '');
  };
  const byWhere = new Map<string, number>();
  const byFn = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const w = where(n.callFrame.url);
    byWhere.set(w, (byWhere.get(w) ?? 0) + us);
    const f = `${n.callFrame.functionName || '(anonymous)'}  ${w}:${n.callFrame.lineNumber + 1}`;
    byFn.set(f, (byFn.get(f) ?? 0) + us);
  }
  const fmt = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, us]) => `  ${(us / 1000).toFixed(0).padStart(7)} ms  ${(100 * us / total).toFixed(1).padStart(5)}%  ${k}`).join('\n');
  return `profile ${file}: ${(total / 1e6).toFixed(2)} s sampled\n\nself time by package / file:\n${fmt(byWhere)}\n\nself time by function:\n${fmt(byFn)}\n`;
}

if (require.main === module) {
  const [file, top] = process.argv.slice(2);
  if (!file) { process.stderr.write('usage: profile.ts FILE.cpuprofile [top]\n'); process.exit(2); }
  process.stdout.write(summarize(file, top ? Number(top) : 25));
}
