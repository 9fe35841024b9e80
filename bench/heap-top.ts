/**
 * `npx ts-node --transpile-only bench/heap-top.ts FILE.heapsnapshot [--top N]`: what holds a V8 heap
 * snapshot's memory, without opening DevTools. Prints
 *
 * - self size by constructor (what the heap is made of);
 * - retained size by constructor, each instance counted once even when nested in another instance
 *   of the same constructor (what owns the heap: an Informer's store, a Map of per-run memos);
 * - the largest single retainers with their dominator chain (who keeps them);
 * - compiled code and sources by npm package (what loading a module costs).
 *
 * Retained sizes come from the dominator tree over strong edges (Cooper, Harvey and Kennedy's
 * iterative algorithm), as DevTools computes them; weak edges do not retain. Take snapshots with
 * `node --heapsnapshot-signal=SIG...` (the bench's `--node-args`) and `kill -SIG... PID`.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] }; node_count: number };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const MiB = (b: number) => (b / 2 ** 20).toFixed(2).padStart(7);

function main(): void {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true });
  if (positionals.length !== 1) { process.stderr.write('usage: heap-top.ts FILE.heapsnapshot [--top N]\n'); process.exit(2); }
  const top = Number(values.top);
  const s = JSON.parse(fs.readFileSync(positionals[0], 'utf8')) as Snapshot;
  const m = s.snapshot.meta;
  const NF = m.node_fields.length, EF = m.edge_fields.length;
  const fType = m.node_fields.indexOf('type'), fName = m.node_fields.indexOf('name'), fSize = m.node_fields.indexOf('self_size'), fEdges = m.node_fields.indexOf('edge_count');
  const eType = m.edge_fields.indexOf('type'), eName = m.edge_fields.indexOf('name_or_index'), eTo = m.edge_fields.indexOf('to_node');
  const nodeTypes = m.node_types[0], edgeTypes = m.edge_types[0];
  const N = s.nodes.length / NF;
  const type = (i: number) => nodeTypes[s.nodes[i * NF + fType]];
  const name = (i: number) => s.strings[s.nodes[i * NF + fName]];
  const size = (i: number) => s.nodes[i * NF + fSize];
  const firstEdge = new Uint32Array(N + 1);
  for (let i = 0; i < N; i++) firstEdge[i + 1] = firstEdge[i] + s.nodes[i * NF + fEdges];
  const WEAK = edgeTypes.indexOf('weak'), SHORTCUT = edgeTypes.indexOf('shortcut');
  const edgeName = (e: number) => {
    const t = edgeTypes[s.edges[e * EF + eType]];
    const v = s.edges[e * EF + eName];
    return t === 'element' || t === 'hidden' ? `[${v}]` : s.strings[v];
  };
  const strong = (e: number) => { const t = s.edges[e * EF + eType]; return t !== WEAK && t !== SHORTCUT; };
  const to = (e: number) => s.edges[e * EF + eTo] / NF;
  /** A readable label: objects by constructor, closures by function name, the rest by type. */
  const label = (i: number) => {
    const t = type(i);
    if (t === 'object' || t === 'closure' || t === 'native') return `${name(i)}${t === 'closure' ? '()' : ''}`;
    if (t === 'string' || t === 'concatenated string' || t === 'sliced string') return '(string)';
    return `(${t}${t === 'hidden' || t === 'code' || t === 'array' ? ` ${name(i).slice(0, 40)}` : ''})`;
  };

  let total = 0;
  for (let i = 0; i < N; i++) total += size(i);
  console.log(`${positionals[0]}: ${N} nodes, ${MiB(total).trim()} MiB self size in all`);

  // Self size by constructor.
  const selfBy = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < N; i++) {
    const k = label(i);
    const a = selfBy.get(k) ?? { size: 0, count: 0 };
    a.size += size(i); a.count++;
    selfBy.set(k, a);
  }
  console.log(`\nself size by constructor (top ${top}):`);
  for (const [k, a] of [...selfBy].sort((x, y) => y[1].size - x[1].size).slice(0, top)) console.log(`${MiB(a.size)} MiB  ${String(a.count).padStart(8)}  ${k}`);

  // Dominator tree: reverse postorder from the root (node 0), then the iterative algorithm.
  const order = new Int32Array(N).fill(-1); // node → postorder number
  const post: number[] = [];
  const stack: number[] = [0], edgeAt: number[] = [firstEdge[0]];
  order[0] = -2;
  while (stack.length) {
    const n = stack[stack.length - 1];
    const e = edgeAt[edgeAt.length - 1];
    if (e < firstEdge[n + 1]) {
      edgeAt[edgeAt.length - 1]++;
      if (!strong(e)) continue;
      const t = to(e);
      if (order[t] !== -1) continue;
      order[t] = -2; stack.push(t); edgeAt.push(firstEdge[t]);
    } else {
      stack.pop(); edgeAt.pop();
      order[n] = post.length; post.push(n);
    }
  }
  const R = post.length;
  // Predecessors over strong edges, among reachable nodes, by postorder number.
  const predCount = new Uint32Array(R + 1);
  for (let n = 0; n < N; n++) {
    if (order[n] < 0) continue;
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e++) if (strong(e) && order[to(e)] >= 0) predCount[order[to(e)] + 1]++;
  }
  for (let i = 0; i < R; i++) predCount[i + 1] += predCount[i];
  const preds = new Uint32Array(predCount[R]);
  const fill = predCount.slice(0, R);
  for (let n = 0; n < N; n++) {
    if (order[n] < 0) continue;
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e++) if (strong(e) && order[to(e)] >= 0) preds[fill[order[to(e)]]++] = order[n];
  }
  const idom = new Int32Array(R).fill(-1);
  const rootPo = R - 1;
  idom[rootPo] = rootPo;
  for (let changed = true; changed;) {
    changed = false;
    for (let b = R - 2; b >= 0; b--) {
      let d = -1;
      for (let p = predCount[b]; p < predCount[b + 1]; p++) {
        let q = preds[p];
        if (idom[q] === -1) continue;
        if (d === -1) { d = q; continue; }
        let x = d;
        while (x !== q) { while (x < q) x = idom[x]; while (q < x) q = idom[q]; }
        d = x;
      }
      if (d !== -1 && idom[b] !== d) { idom[b] = d; changed = true; }
    }
  }
  // Retained sizes: children before parents in postorder.
  const retained = new Float64Array(R);
  for (let b = 0; b < R; b++) retained[b] += size(post[b]);
  for (let b = 0; b < R - 1; b++) if (idom[b] >= 0 && idom[b] !== b) retained[idom[b]] += retained[b];

  // Retained by constructor, outermost instances only.
  const retBy = new Map<string, { size: number; count: number }>();
  for (let b = 0; b < R - 1; b++) {
    const t = type(post[b]);
    if (t !== 'object' && t !== 'closure') continue;
    const k = label(post[b]);
    let nested = false;
    for (let x = idom[b]; x !== rootPo && x >= 0; x = idom[x]) if (label(post[x]) === k) { nested = true; break; }
    if (nested) continue;
    const a = retBy.get(k) ?? { size: 0, count: 0 };
    a.size += retained[b]; a.count++;
    retBy.set(k, a);
  }
  console.log(`\nretained size by constructor, outermost instances (top ${top}):`);
  for (const [k, a] of [...retBy].sort((x, y) => y[1].size - x[1].size).slice(0, top)) console.log(`${MiB(a.size)} MiB  ${String(a.count).padStart(8)}  ${k}`);

  // Retaining paths as DevTools shows them: from each object, its retainer nearest to the roots.
  const dist = new Int32Array(N).fill(-1);
  const nearest = new Int32Array(N).fill(-1); // the edge from that retainer
  dist[0] = 0;
  const queue = new Int32Array(N);
  let head = 0, tail = 0;
  queue[tail++] = 0;
  while (head < tail) {
    const n = queue[head++];
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e++) {
      if (!strong(e)) continue;
      const t = to(e);
      if (dist[t] !== -1) continue;
      dist[t] = dist[n] + 1; nearest[t] = e; queue[tail++] = t;
    }
  }
  const from = (e: number) => { // the node an edge leaves: the last node whose edges start at or before it
    let lo = 0, hi = N - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (firstEdge[mid] <= e) lo = mid; else hi = mid - 1; }
    while (firstEdge[lo + 1] === firstEdge[lo] && lo < N - 1 && firstEdge[lo + 1] <= e) lo++;
    return lo;
  };
  const chain = (b: number) => {
    const parts: string[] = [];
    for (let n = post[b]; nearest[n] >= 0 && parts.length < 14; ) {
      const e = nearest[n];
      const p = from(e);
      if (type(p) === 'synthetic') { parts.unshift(`${name(p)}.${edgeName(e)}`); break; }
      parts.unshift(`${label(p)}.${edgeName(e)}`);
      n = p;
    }
    return parts.join(' > ');
  };
  /** An instance's own `name` (or its options' name): which Informer, which Map field. */
  const prop = (n: number, key: string) => {
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e++) if (edgeTypes[s.edges[e * EF + eType]] === 'property' && edgeName(e) === key) return to(e);
    return -1;
  };
  const describe = (n: number) => {
    if (type(n) !== 'object') return label(n);
    for (const holder of [n, prop(n, 'opts'), prop(n, 'o')]) {
      if (holder < 0) continue;
      const v = prop(holder, 'name');
      if (v >= 0 && type(v) === 'string' && name(v).length <= 60) return `${label(n)} "${name(v)}"`;
    }
    return label(n);
  };
  const candidates: number[] = [];
  for (let b = 0; b < R - 1; b++) if (type(post[b]) !== 'synthetic' && retained[b] > 256 * 1024) candidates.push(b);
  // Leaves of the "big" set first: a retainer whose whole size is one child is not news.
  candidates.sort((x, y) => retained[y] - retained[x]);
  console.log(`\nlargest retainers (> 0.25 MiB; top ${top}) and their dominator chain:`);
  for (const b of candidates.slice(0, top)) console.log(`${MiB(retained[b])} MiB  ${describe(post[b])}  ← ${chain(b)}`);

  // Code and sources by package: a SharedFunctionInfo's script names the file.
  const scriptName = new Map<number, string>();
  const byPackage = new Map<string, number>();
  const pkgOf = (file: string) => {
    const m2 = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    if (m2) return m2[1];
    if (file.startsWith('node:') || !file.includes('/')) return '(node internals)';
    return '(this project)';
  };
  for (let n = 0; n < N; n++) {
    if (type(n) !== 'code' || !/^(file:|node:|\/)/.test(name(n))) continue;
    const file = name(n);
    scriptName.set(n, file);
    let bytes = size(n);
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e++) if (edgeName(e) === 'source') bytes += size(to(e));
    const k = pkgOf(file);
    byPackage.set(k, (byPackage.get(k) ?? 0) + bytes);
  }
  for (let n = 0; n < N; n++) {
    if (type(n) !== 'code') continue;
    let script = -1;
    const own: number[] = [];
    for (let e = firstEdge[n]; e < firstEdge[n + 1]; e++) {
      const en = edgeName(e);
      if (en === 'script') script = to(e);
      else if (en === 'function_data' || en === 'bytecode' || en === 'code') own.push(to(e));
    }
    if (script < 0 || !scriptName.has(script)) continue;
    const k = pkgOf(scriptName.get(script)!);
    byPackage.set(k, (byPackage.get(k) ?? 0) + size(n) + own.reduce((a, c) => a + size(c), 0));
  }
  console.log('\ncode (functions, bytecode, scripts and their sources) by package:');
  for (const [k, v] of [...byPackage].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${MiB(v)} MiB  ${k}`);
}

main();
