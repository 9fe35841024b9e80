/**
 * `npm run bench -- [--runs N] [--rate R] [--json out.json] [--profile]`
 *
 * On a fresh local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok, and
 * the real Tekton controller and webhook):
 * 1. Baseline: a bare client creates N PipelineRuns at R/s and server-side applies, for each, the
 *    objects synthesizeRun makes for one TLS DockerDaemon (synthesized before the clock starts: no
 *    operator logic in the timed path), one request per object in the operator's two parallel waves,
 *    in a namespace no operator serves.
 * 2. Operator: `pipeline-sidecars run` as a child process serves one namespace (webhook included);
 *    N runs that ask for a DockerDaemon are created at R/s; Tekton starts each once the operator
 *    unpends it, and its one task holds on the kwok node. Once all are provisioned and started (N
 *    live runs), the operator's RSS/CPU and API requests are read; then every run's task is
 *    released at R/s, Tekton finishes the runs, and the clean-up is timed.
 * Every per-run time is stamped with the local clock when a watch event arrives (ms resolution).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { PipelineSidecarSpec } from '../constructs/api/spec';
import { serviceDnsNames } from '../constructs/names';
import { synthesizeRun } from '../constructs/synthesize';
import { RawClient } from '../src/k8s/raw';
import { collectionPath, objectPath } from '../src/k8s/resources';
import { runIdFromUid } from '../src/runid';
import { mintRunTls } from '../src/tls';
import { ControlPlane } from '../test/harness/control-plane';
import { releaseTasks } from '../test/harness/runs';
import { benchRun, connectWithTekton, cpuSnapshot, dist, dockerDaemonSidecar, freePort, OperatorProcess, prepareNamespace, REPO, Row, SIDECAR, sleep, table, Tracker } from './lib';

const NS = 'bench';
const BASE_NS = 'bench-baseline';
const UID_PLACEHOLDER = '00000000-0000-4000-8000-000000000000';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '200' },
    rate: { type: 'string', default: '20' },
    json: { type: 'string' },
    profile: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    'operator-args': { type: 'string', default: '' },
    'node-args': { type: 'string', default: '' },
  },
  strict: true,
});
const N = Number(flags.runs);
const RATE = Number(flags.rate);
if (!Number.isInteger(N) || N < 1 || !(RATE > 0)) {
  process.stderr.write('usage: npm run bench -- [--runs N (default 200)] [--rate R runs/s (default 20)] [--json out.json] [--profile]\n');
  process.exit(2);
}
const say = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

/** Calls fn(i) for i in 0..n-1 at `rate` per second (open loop: a slow call does not delay the next). */
async function paced(n: number, rate: number, fn: (i: number) => Promise<void>): Promise<void> {
  const t0 = Date.now();
  const all: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    all.push(fn(i));
  }
  await Promise.all(all);
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) { if (cond()) return true; await sleep(50); }
  say(`timed out waiting for ${what}`);
  return false;
}

async function baseline(kc: KubeConfig, spec: PipelineSidecarSpec): Promise<{ provisionMs: number[]; synthMs: number[]; requests: number; objectsPerRun: number; byKind: Map<string, number[]> }> {
  say(`baseline: ${N} runs at ${RATE}/s, a bare client applying synthesizeRun's objects (no operator)`);
  const tls = await mintRunTls({ hosts: serviceDnsNames(`${SIDECAR}-x`, BASE_NS) });
  const synthMs: number[] = [];
  const prepared: Array<{ name: string; runId: string; json: string }> = [];
  for (let i = 0; i < N; i++) {
    const name = `base-${String(i).padStart(4, '0')}`;
    const runId = runIdFromUid(`${BASE_NS}/${name}`);
    const t = performance.now();
    const manifests = synthesizeRun({ run: { name, namespace: BASE_NS, uid: UID_PLACEHOLDER, runId, naming: 'runId' }, sidecars: [{ name: SIDECAR, spec, material: { tls } }], allowPrivileged: true });
    synthMs.push(performance.now() - t);
    prepared.push({ name, runId, json: JSON.stringify(manifests) });
  }
  const expected = JSON.parse(prepared[0].json).length;
  const tracker = new Tracker(kc, BASE_NS, expected);
  await tracker.start();
  const bare = new RawClient(kc);
  const byKind = new Map<string, number[]>();
  await paced(N, RATE, async (i) => {
    const p = prepared[i];
    const r = tracker.run(p.name);
    r.createStart = Date.now();
    const tc = performance.now();
    const run = await bare.create(collectionPath('tekton.dev/v1', 'PipelineRun', BASE_NS), benchRun(BASE_NS, p.name));
    r.created = Date.now();
    if (!byKind.has('create PipelineRun')) byKind.set('create PipelineRun', []);
    byKind.get('create PipelineRun')!.push(performance.now() - tc);
    r.runId = p.runId;
    const manifests = JSON.parse(p.json.split(UID_PLACEHOLDER).join(run.metadata.uid));
    // The same two waves the operator uses (src/reconcile.ts apply): everything but the Deployment in
    // parallel, then the Deployment, so the ratio measures the operator's overhead, not its request order.
    const applyOne = async (m: any) => {
      const t = performance.now();
      await bare.apply(objectPath(m), m, 'bench-baseline', { force: false });
      const k = `apply ${m.kind}`;
      if (!byKind.has(k)) byKind.set(k, []);
      byKind.get(k)!.push(performance.now() - t);
    };
    await Promise.all(manifests.filter((m: any) => m.kind !== 'Deployment').map(applyOne));
    await Promise.all(manifests.filter((m: any) => m.kind === 'Deployment').map(applyOne));
  });
  await waitFor('baseline objects', () => prepared.every((p) => tracker.objects(p.runId).applied !== undefined), 60_000);
  const provisionMs = prepared.map((p) => tracker.objects(p.runId).applied! - tracker.run(p.name).created!);
  await tracker.stop();
  const requests = bare.requests;
  bare.close();
  return { provisionMs, synthMs, requests, objectsPerRun: expected, byKind };
}

/** CPU seconds per process between two snapshots, as a small table (cores: what the machine has). */
function cpuTable(before: Record<string, number>, after: Record<string, number>, wallS: number): string {
  const machine = '(machine: all processes)';
  const rows = Object.keys(after).filter((k) => k !== machine).map((k) => ({ k, s: after[k] - (before[k] ?? 0) })).sort((a, b) => b.s - a.s);
  const sum = rows.reduce((a, r) => a + r.s, 0);
  const all = (after[machine] ?? 0) - (before[machine] ?? 0);
  const cores = require('node:os').cpus().length;
  const line = (k: string, sec: number) => `  ${k.padEnd(34)} ${sec.toFixed(1).padStart(6)} s  ${(100 * sec / wallS).toFixed(0).padStart(4)}% of a core`;
  return `  (${wallS.toFixed(1)} s wall, ${(cores * wallS).toFixed(1)} core-seconds on ${cores} cores)\n${rows.map((r) => line(r.k, r.s)).join('\n')}\n${line('total (ours)', sum)}\n${line('other processes on the machine', Math.max(0, all - sum))}\n`;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const workLogs = path.join(REPO, '.work', 'bench');
  fs.mkdirSync(workLogs, { recursive: true });
  const cp = await ControlPlane.start({ verbose: flags.verbose });
  let op: OperatorProcess | undefined;
  const shutdown = async () => { await op?.stop().catch(() => undefined); await cp.stop(); };
  process.on('SIGINT', () => { say('interrupted'); void shutdown().then(() => process.exit(130)); });
  try {
    say(`control plane up in ${cp.state.startedMs} ms`);
    const { kc, client } = await connectWithTekton(cp);
    await prepareNamespace(client, BASE_NS);
    await prepareNamespace(client, NS);
    const spec = dockerDaemonSidecar(NS).spec as PipelineSidecarSpec;

    const bpids = () => ({ ...cp.state.pids, 'bench (load, watches)': process.pid });
    const bcpu0 = cpuSnapshot(bpids());
    const tb0 = Date.now();
    const base = await baseline(kc, spec);
    const baseCpu = cpuTable(bcpu0, cpuSnapshot(bpids()), (Date.now() - tb0) / 1000);
    const baseDist = dist(base.provisionMs)!;
    say(`baseline created→applied p50 ${baseDist.p50} ms, p99 ${baseDist.p99} ms`);

    // --- The operator ------------------------------------------------------------------------
    const logFile = path.join(workLogs, 'operator.log');
    fs.rmSync(logFile, { force: true });
    const profDir = path.join(workLogs, 'profile');
    op = new OperatorProcess({
      kubeconfig: cp.state.kubeconfig, namespace: NS, webhookPort: await freePort(), webhookConfig: 'pipeline-sidecars-bench', logFile,
      extraArgs: flags['operator-args'] ? flags['operator-args'].split(/\s+/) : [],
      nodeArgs: [...(flags.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...(flags['node-args'] ? flags['node-args'].split(/\s+/) : [])],
    });
    const started = await op.start();
    say(`operator process up in ${started.startMs} ms (pid ${op.pid}; log ${path.relative(REPO, logFile)})`);
    const expected = base.objectsPerRun;
    const tracker = new Tracker(kc, NS, expected);
    await tracker.start();
    const idle = op.procUsage()!;
    const s0 = await op.stats(true);

    say(`operator: ${N} runs at ${RATE}/s, each asking for one DockerDaemon`);
    const loader = new RawClient(kc);
    const names = Array.from({ length: N }, (_, i) => `run-${String(i).padStart(4, '0')}`);
    const createErrors: string[] = [];
    const pids = () => ({ ...cp.state.pids, operator: op!.pid, 'bench (load, watches)': process.pid });
    const cpu0 = cpuSnapshot(pids());
    const tLoad = Date.now();
    await paced(N, RATE, async (i) => {
      const r = tracker.run(names[i]);
      r.createStart = Date.now();
      try {
        const run = await loader.create(collectionPath('tekton.dev/v1', 'PipelineRun', NS), benchRun(NS, names[i]));
        r.created = Date.now();
        r.runId = run.metadata.annotations?.['pipeline-sidecars.dev/run-id'];
        if (!r.runId) createErrors.push(`${names[i]}: not gated by the webhook`);
      } catch (e) { createErrors.push(`${names[i]}: ${(e as Error).message}`); }
    });
    const allUnpended = await waitFor('every run started', () => names.every((n) => tracker.run(n).unpended !== undefined), 120_000 + (N / RATE) * 1000);
    const tProvisioned = Date.now();
    await sleep(1000); // let the last events settle before reading the process
    const cpu1 = cpuSnapshot(pids());
    const live = op.procUsage()!;
    const s1 = await op.stats(true, true);
    say(`all ${N} runs provisioned and started (${allUnpended ? 'all' : 'NOT all'}); RSS ${(live.rssBytes / 2 ** 20).toFixed(0)} MiB with ${N} live runs`);

    // --- Finish every run, time the clean-up ----------------------------------------------
    // Each run's one task was held running; releasing it lets Tekton finish the run.
    // Tekton creates a task's pod a moment after the run starts: wait for it (up to 60 s).
    await paced(N, RATE, async (i) => {
      for (let attempt = 0; ; attempt++) {
        const n = await releaseTasks(NS, names[i], { client: loader }).catch((e) => { createErrors.push(`finish ${names[i]}: ${(e as Error).message}`); return 1; });
        if (n > 0) return;
        if (attempt >= 240) { createErrors.push(`finish ${names[i]}: no held task pod after 60 s`); return; }
        await sleep(250);
      }
    });
    const runIds = names.map((n) => tracker.run(n).runId).filter((x): x is string => !!x);
    const allDeleted = await waitFor('every run\'s objects deleted', () => runIds.every((id) => tracker.objects(id).deleted !== undefined), 120_000);
    const end = op.procUsage()!;
    const s2 = await op.stats(true);
    let metricsText = '';
    try { metricsText = await (await fetch(`http://127.0.0.1:${started.healthPort}/metrics`)).text(); } catch { /* best effort */ }

    // --- Figures ---------------------------------------------------------------------------
    const per = names.map((n) => { const r = tracker.run(n); return { r, o: r.runId ? tracker.objects(r.runId) : undefined }; });
    const provision = per.map(({ r, o }) => (o?.applied ?? NaN) - (r.created ?? NaN));
    const readyToUnpend = per.map(({ r, o }) => (r.unpended ?? NaN) - (o?.ready ?? NaN));
    const createdToUnpend = per.map(({ r }) => (r.unpended ?? NaN) - (r.created ?? NaN));
    const appliedToReady = per.map(({ o }) => (o?.ready ?? NaN) - (o?.applied ?? NaN));
    const doneToDeleted = per.map(({ r, o }) => (o?.deleted ?? NaN) - (r.done ?? NaN));
    const createCall = per.map(({ r }) => (r.created ?? NaN) - (r.createStart ?? NaN));
    const admission = dist([...s1.admissionMs, ...s0.admissionMs]);
    const lastApplied = Math.max(...per.map(({ o }) => o?.applied ?? 0));
    const firstCreated = Math.min(...per.map(({ r }) => r.createStart ?? Infinity));
    const throughput = N / ((lastApplied - firstCreated) / 1000);
    const provDist = dist(provision);
    const ratio = provDist ? provDist.p50 / baseDist.p50 : NaN;
    const reqProvision = (s1.requests - s0.requests) / N;
    const reqCleanup = (s2.requests - s1.requests) / N;
    const cpuLoad = (live.cpuSeconds - idle.cpuSeconds) / ((tProvisioned - tLoad) / 1000);
    const mib = (b: number) => b / 2 ** 20;
    const ms = 'ms';
    // Where the operator's time goes, per run, from its own reconcile spans (same machine clock).
    const spanOf = (n: string) => s1.spans?.[`run:${NS}/${n}`] ?? [];
    const firstSpan = per.map(({ r }) => spanOf(r.name)[0]);
    const unpendSpan = per.map(({ r }) => { const l = spanOf(r.name).filter((x) => r.unpended !== undefined && x[1] <= r.unpended); return l[l.length - 1]; });
    const bd = (f: (i: number) => number) => dist(per.map((_, i) => f(i)));
    const breakdown: Row[] = [
      { figure: 'provision: created → run queued (watch)', unit: ms, dist: bd((i) => (firstSpan[i]?.[0] ?? NaN) - (per[i].r.created ?? NaN)) },
      { figure: 'provision: queued → worker starts (queue)', unit: ms, dist: bd((i) => (firstSpan[i]?.[1] ?? NaN) - (firstSpan[i]?.[0] ?? NaN)) },
      { figure: 'provision: first reconcile (mint, synth, 2 apply waves, Event)', unit: ms, dist: bd((i) => (firstSpan[i]?.[2] ?? NaN) - (firstSpan[i]?.[1] ?? NaN)) },
      // The run's key is often already queued (for an earlier event) when its sidecar turns Ready.
      { figure: 'unpend: Ready → a worker takes the run (watch + queue)', unit: ms, dist: bd((i) => (unpendSpan[i]?.[1] ?? NaN) - (per[i].o?.ready ?? NaN)) },
      { figure: 'unpend: reconcile until the run is seen unpended', unit: ms, dist: bd((i) => (per[i].r.unpended ?? NaN) - (unpendSpan[i]?.[1] ?? NaN)) },
      ...['material', 'synthesize', 'apply', 'gate'].map((step) => ({
        figure: `  first reconcile: ${step === 'material' ? 'material (TLS mint or read)' : step === 'apply' ? 'apply (2 waves + SidecarsApplied Event)' : step}`,
        unit: ms, dist: dist(Object.values(s1.stepMs?.[step] ?? {})),
      })),
      { figure: 'reconciles per run', unit: 'n', dist: dist(per.map(({ r }) => spanOf(r.name).length)) },
    ];
    const rows: Row[] = [
      { figure: 'admission (webhook\'s own time)', unit: ms, dist: admission },
      { figure: 'run create call (client, incl. admission)', unit: ms, dist: dist(createCall) },
      { figure: 'created → all sidecar objects applied', unit: ms, dist: provDist, target: 'p50 ≤ 30, p99 ≤ 150', ok: provDist ? provDist.p50 <= 30 && provDist.p99 <= 150 : false },
      { figure: 'baseline: created → applied (bare client)', unit: ms, dist: baseDist },
      { figure: 'provision / baseline (p50 ratio)', unit: 'x', value: ratio, target: '≤ 1.5', ok: ratio <= 1.5 },
      { figure: 'applied → sidecar Ready (kwok, controllers)', unit: ms, dist: dist(appliedToReady) },
      { figure: 'sidecar Ready → run unpended', unit: ms, dist: dist(readyToUnpend), target: 'p50 ≤ 50', ok: (dist(readyToUnpend)?.p50 ?? Infinity) <= 50 },
      { figure: 'created → run unpended (end to end)', unit: ms, dist: dist(createdToUnpend) },
      { figure: 'run done → objects deleted', unit: ms, dist: dist(doneToDeleted), target: 'p50 ≤ 100', ok: (dist(doneToDeleted)?.p50 ?? Infinity) <= 100 },
      { figure: 'throughput (runs provisioned / s)', unit: 'runs/s', value: throughput, target: `offered ${RATE}/s` },
      { figure: 'operator RSS idle (started, no runs)', unit: 'MiB', value: mib(idle.rssBytes) },
      { figure: `operator RSS, ${N} live runs`, unit: 'MiB', value: mib(live.rssBytes), target: N >= 1000 ? '≤ 200 (1,000 runs)' : '≤ 200 at 1,000', ok: N >= 1000 ? mib(live.rssBytes) <= 200 : undefined },
      { figure: 'operator RSS at the end (all done)', unit: 'MiB', value: mib(end.rssBytes) },
      { figure: 'operator heap used, live runs', unit: 'MiB', value: mib(s1.memory.heapUsed) },
      { figure: 'operator CPU during load (of 1 core)', unit: '%', value: cpuLoad * 100 },
      { figure: 'operator CPU total (start → end)', unit: 's', value: end.cpuSeconds },
      { figure: 'API requests / run: provision + start', unit: 'req', value: reqProvision },
      { figure: 'API requests / run: clean-up', unit: 'req', value: reqCleanup },
      { figure: 'baseline API requests / run', unit: 'req', value: base.requests / N },
      { figure: 'synthesizeRun (cdk8s) per run', unit: ms, dist: dist(base.synthMs) },
    ];
    const violations = [
      ...createErrors.slice(0, 10),
      ...(allUnpended ? [] : [`${names.filter((n) => tracker.run(n).unpended === undefined).length} runs never started`]),
      ...(allDeleted ? [] : [`${runIds.filter((id) => tracker.objects(id).deleted === undefined).length} runs kept objects`]),
    ];
    process.stdout.write(`\npipeline-sidecars bench: ${N} runs at ${RATE}/s, one TLS DockerDaemon each (${expected} objects per run)\n`);
    process.stdout.write(`${new Date().toISOString()}; ${require('node:os').cpus().length} cores shared by etcd, kube-apiserver, controller-manager, scheduler, kwok, the operator and this load generator\n\n`);
    process.stdout.write(table(rows) + '\n');
    process.stdout.write(`\nwhere the operator's time goes (its reconcile spans, wall clock of this machine):\n${table(breakdown)}\n`);
    const mix = (a: Record<string, number>, b: Record<string, number>) => Object.keys(a).map((k) => ({ k, n: (a[k] ?? 0) - (b[k] ?? 0) })).filter((x) => x.n > 0).sort((x, y) => y.n - x.n);
    process.stdout.write(`\noperator API requests per run, by request (provision + start | clean-up):\n` +
      [...new Set([...Object.keys(s1.requestsByKind), ...Object.keys(s2.requestsByKind)])]
        .map((k) => ({ k, p: ((s1.requestsByKind[k] ?? 0) - (s0.requestsByKind[k] ?? 0)) / N, c: ((s2.requestsByKind[k] ?? 0) - (s1.requestsByKind[k] ?? 0)) / N }))
        .filter((x) => x.p > 0 || x.c > 0).sort((x, y) => y.p + y.c - x.p - x.c)
        .map((x) => `  ${x.k.padEnd(44)} ${x.p.toFixed(2).padStart(6)} | ${x.c.toFixed(2).padStart(6)}`).join('\n') + '\n');
    void mix;
    const kindRows: Row[] = [...base.byKind].map(([k, v]) => ({ figure: `baseline: ${k}`, unit: 'ms', dist: dist(v) }));
    process.stdout.write(`\nbaseline client's request latency, by request (the API server's answer time under this load):\n${table(kindRows)}\n`);
    process.stdout.write(`\nCPU while the baseline client applied (until its last object was seen):\n${baseCpu}`);
    process.stdout.write(`\nCPU during the operator load phase (first create until every run started):\n${cpuTable(cpu0, cpu1, (tProvisioned - tLoad) / 1000)}`);
    if (violations.length) process.stdout.write(`\nproblems:\n  ${violations.join('\n  ')}\n`);
    process.stdout.write(`\noperator: ${s2.reconciles} reconciles, ${s2.lists} informer lists, ${s2.watches} watch starts; log ${path.relative(REPO, logFile)}\n`);
    if (flags.json) {
      const out = {
        date: new Date().toISOString(), cores: require('node:os').cpus().length, runs: N, rate: RATE, objectsPerRun: expected,
        rows, breakdown, violations, cpuLoadPhase: { wallSeconds: (tProvisioned - tLoad) / 1000, before: cpu0, after: cpu1 }, operator: { idle, live, end, stats: { ...s2, admissionMs: undefined, spans: undefined } },
        reconcileMetrics: metricsText.split('\n').filter((l) => l.startsWith('pipeline_sidecars_reconcile_duration_seconds') || l.startsWith('pipeline_sidecars_errors_total')),
        raw: { provision, readyToUnpend, doneToDeleted, appliedToReady, admission: s1.admissionMs, baseline: base.provisionMs },
      };
      fs.writeFileSync(flags.json, JSON.stringify(out, null, 1));
      say(`wrote ${flags.json}`);
    }
    loader.close();
    client.close();
    await tracker.stop();
    await op.stop();
    if (flags.profile) say(`CPU profile in ${path.relative(REPO, profDir)}`);
    await cp.stop();
    say(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    process.exit(violations.length ? 1 : 0);
  } catch (e) {
    say(`failed: ${(e as Error).stack ?? e}`);
    await op?.stop().catch(() => undefined);
    await cp.stop({ keepLogs: true });
    say(`control plane logs kept in ${cp.state.workDir}/logs`);
    process.exit(1);
  }
}

void main();
