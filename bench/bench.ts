/**
 * `npm run bench -- [--runs N] [--rate R] [--finished-runs F] [--repeat K] [--skip-baseline] [--json out.json] [--profile]`
 *
 * On a fresh local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok, and
 * the real Tekton controller and webhook):
 * 1. Baseline: a bare client creates N PipelineRuns at R/s and server-side applies, for each, the
 *    objects synthesizeRun makes for one TLS DockerDaemon (synthesized before the clock starts: no
 *    operator logic in the timed path), one request per object in the operator's two parallel waves,
 *    in a namespace no operator serves. Its runs and objects are deleted afterwards (the operator
 *    serves every namespace and would otherwise adopt them).
 * 2. Operator, empty cluster (K times with --repeat, each a fresh process and namespace):
 *    `pipeline-sidecars run` as a child process serving every namespace (webhook included); N runs
 *    that ask for a DockerDaemon are created at R/s; Tekton starts each once the operator unpends
 *    it, and its one task holds on the kwok node. Once all are provisioned and started (N live
 *    runs), the operator's RSS/CPU and API requests are read; then every run's task is released at
 *    R/s, Tekton finishes the runs, and the clean-up is timed.
 * 3. With --finished-runs F: F finished PipelineRuns (created pending, then marked Succeeded through
 *    the status subresource, so Tekton never runs them) in --finished-namespaces M namespaces, then
 *    the operator is started afresh (start-up to synced caches timed) and step 2 runs again; the
 *    ratio of its created → applied p50 to the empty cluster's is the figure.
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
import { ControlPlane } from '../platform/control-plane';
import { releaseTasks } from '../platform/runs';
import { benchRun, connectWithTekton, cpuSnapshot, createRetrying, dist, dockerDaemonSidecar, freePort, prepareNamespace, REPO, Row, SIDECAR, sleep, table, Tracker } from './lib';
import { MeasuredOperator } from './measured-operator';
import { succeededCondition } from '../src/pipelinerun';

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
    'finished-runs': { type: 'string', default: '0' },
    'finished-namespaces': { type: 'string', default: '50' },
    repeat: { type: 'string', default: '1' },
    'skip-baseline': { type: 'boolean', default: false },
    'node-args': { type: 'string', default: '' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
const N = Number(flags.runs);
const RATE = Number(flags.rate);
const FINISHED = Number(flags['finished-runs']);
const FINISHED_NS = Number(flags['finished-namespaces']);
const REPEAT = Number(flags.repeat);
const USAGE = 'usage: npm run bench -- [--runs N (default 200)] [--rate R runs/s (default 20)] [--finished-runs F (default 0)] [--finished-namespaces M (default 50)] [--repeat K (default 1)] ' +
  '[--skip-baseline] [--json out.json] [--profile] [--verbose] [--operator-args "FLAGS"] [--node-args "FLAGS"]\n';
if (flags.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (!Number.isInteger(N) || N < 1 || !(RATE > 0) || !Number.isInteger(FINISHED) || FINISHED < 0 || !Number.isInteger(FINISHED_NS) || FINISHED_NS < 1 || !Number.isInteger(REPEAT) || REPEAT < 1) {
  process.stderr.write(USAGE);
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

type Baseline = Awaited<ReturnType<typeof baseline>>;

/** What one operator phase measured. */
interface Phase {
  label: string;
  namespace: string;
  rows: Row[];
  breakdown: Row[];
  /** Per run, by request (`POST events`, `PATCH deployments (apply)`...): provision + start, and clean-up. */
  requestsByKind: { provision: Record<string, number>; cleanup: Record<string, number> };
  figures: {
    createdToAppliedP50Ms?: number; createdToAppliedP99Ms?: number; provisionBaselineRatio?: number;
    requestsPerRunProvision: number; requestsPerRunCleanup: number;
    admissionP50Ms?: number; admissionP99Ms?: number; readyToUnpendP50Ms?: number; doneToDeletedP50Ms?: number;
    rssPeakMiB: number; rssLiveMiB: number; rssEndMiB: number; heapUsedEndMiB: number; heapUsedLiveMiB: number;
    operatorStartMs: number; cachesSyncedMs?: number; runsCachedAtStart: number; runsCachedLive: number; listPagesAtStart: number;
  };
  violations: string[];
  cpu: string;
  stats: Record<string, unknown>;
  raw: Record<string, number[]>;
  metrics: string[];
}

const mib = (b: number) => b / 2 ** 20;

/** Deletes the baseline's runs, objects and PipelineSidecar (the operator serves every namespace and would adopt them). */
async function clearBaseline(client: RawClient): Promise<void> {
  const sel = `app.kubernetes.io/managed-by=pipeline-sidecars`;
  for (const [apiVersion, kind, labelSelector] of [
    ['tekton.dev/v1', 'PipelineRun', undefined], ['pipeline-sidecars.dev/v1alpha1', 'PipelineSidecar', undefined],
    ['apps/v1', 'Deployment', sel], ['v1', 'Service', sel], ['v1', 'Secret', sel], ['v1', 'ServiceAccount', sel], ['networking.k8s.io/v1', 'NetworkPolicy', sel],
  ] as Array<[string, string, string | undefined]>) {
    // Best effort: a control plane slowed down by thousands of runs may time a collection delete out.
    await client.delete(collectionPath(apiVersion, kind, BASE_NS), { labelSelector, propagationPolicy: 'Background' })
      .catch((e) => say(`clearing the baseline namespace: ${(e as Error).message} (continuing)`));
  }
  for (let i = 0; i < 600; i++) {
    const left = (await client.get(collectionPath('tekton.dev/v1', 'PipelineRun', BASE_NS), { limit: 1 })).items?.length ?? 0;
    if (left === 0) return;
    await sleep(100);
  }
  say('baseline runs still there after 60 s');
}

/**
 * F finished PipelineRuns in M namespaces, as a cluster keeps them until a pruner removes them.
 * Created with spec.status PipelineRunPending (Tekton never starts them: no TaskRun, no pod), then
 * marked done through the status subresource (Succeeded True and a completion time; no startTime,
 * which Tekton's validation refuses next to a pending spec), which is all that "finished" means to a
 * reader of the run. They ask for no sidecars: the common case.
 */
async function createFinishedRuns(client: RawClient, total: number, namespaces: number): Promise<{ ms: number; finished: number }> {
  const t0 = Date.now();
  const nss = Array.from({ length: namespaces }, (_, i) => `finished-${String(i).padStart(2, '0')}`);
  for (const ns of nss) await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }).catch(() => undefined);
  let next = 0;
  let done = 0;
  let patchError: string | undefined;
  const spec = { tasks: [{ name: 'build', taskSpec: { steps: [{ name: 'build', image: 'docker.io/library/docker:27', script: 'docker build .' }] } }] };
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const ns = nss[i % namespaces];
      const name = `old-${String(i).padStart(5, '0')}`;
      const run = await createRetrying(client, collectionPath('tekton.dev/v1', 'PipelineRun', ns), {
        apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name, namespace: ns, labels: { app: 'finished-bench', 'tekton.dev/pipeline': 'build' } },
        spec: { status: 'PipelineRunPending', pipelineSpec: spec, params: [{ name: 'revision', value: 'x'.repeat(40) }] },
      });
      void run;
      const end = new Date(Date.now() - 300_000).toISOString();
      for (let attempt = 0; attempt < 10; attempt++) {
        try {
          await client.mergePatch(`${collectionPath('tekton.dev/v1', 'PipelineRun', ns)}/${name}/status`, {
            // No startTime: Tekton's validation refuses a started run whose spec still says pending.
            status: { completionTime: end, conditions: [{ type: 'Succeeded', status: 'True', reason: 'Succeeded', message: 'Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0', lastTransitionTime: end }] },
          });
          break;
        } catch (e) {
          if (!patchError) { patchError = (e as Error).message; say(`  marking a run finished failed (retrying): ${patchError}`); }
          await sleep(100);
        }
      }
      if (++done % 1000 === 0) say(`  ${done} finished runs`);
    }
  };
  await Promise.all(Array.from({ length: 24 }, worker));
  // Tekton's first reconcile of a pending run writes its own status over the whole status (knative
  // re-reads the run and replaces status), so some of ours are lost in that race: mend them, a few
  // rounds, once Tekton has digested the burst.
  let finished = 0;
  for (let round = 0; round < 4; round++) {
    finished = 0;
    const unfinished: Array<[string, string]> = [];
    for (const ns of nss) {
      let cont: string | undefined;
      do {
        const page = await client.get(collectionPath('tekton.dev/v1', 'PipelineRun', ns), { limit: 500, continue: cont });
        for (const r of page.items ?? []) {
          const ok = succeededCondition(r).status === 'True';
          if (ok) finished++; else unfinished.push([ns, r.metadata.name]);
        }
        cont = page.metadata?.continue || undefined;
      } while (cont);
    }
    if (unfinished.length === 0) break;
    say(`  ${unfinished.length} runs lost their finished status to Tekton's first reconcile: marking them again`);
    await sleep(5000);
    const end = new Date(Date.now() - 300_000).toISOString();
    let i = 0;
    await Promise.all(Array.from({ length: 24 }, async () => {
      for (;;) {
        const item = unfinished[i++];
        if (!item) return;
        await client.mergePatch(`${collectionPath('tekton.dev/v1', 'PipelineRun', item[0])}/${item[1]}/status`, {
          status: { completionTime: end, conditions: [{ type: 'Succeeded', status: 'True', reason: 'Succeeded', message: 'Tasks Completed: 1 (Failed: 0, Cancelled 0), Skipped: 0', lastTransitionTime: end }] },
        }).catch(() => undefined);
      }
    }));
  }
  return { ms: Date.now() - t0, finished };
}

/** Waits until the control plane's processes use less than `maxCores` over 3 s (Tekton done digesting a burst). */
async function settle(cp: ControlPlane, maxCores = 0.3, timeoutMs = 300_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const a = cpuSnapshot(cp.state.pids);
    await sleep(3000);
    const b = cpuSnapshot(cp.state.pids);
    const used = Object.keys(b).filter((k) => !k.startsWith('(')).reduce((n, k) => n + (b[k] - (a[k] ?? 0)), 0) / 3;
    if (used < maxCores) return Date.now() - t0;
  }
  say('control plane still busy after the settle timeout');
  return Date.now() - t0;
}

async function operatorPhase(cp: ControlPlane, kc: KubeConfig, client: RawClient, label: string, ns: string, base: Baseline | undefined, objectsPerRun: number): Promise<Phase> {
  const workLogs = path.join(REPO, '.work', 'bench');
  await prepareNamespace(client, ns);
  const logFile = path.join(workLogs, `operator-${ns}.log`);
  fs.rmSync(logFile, { force: true });
  const profDir = path.join(workLogs, 'profile');
  const op = new MeasuredOperator({
    name: `operator-${ns}`, kubeconfig: cp.state.kubeconfig, namespace: ns, webhookPort: await freePort(), webhookConfig: 'pipeline-sidecars-bench', logFile, clusterWide: true,
    extraArgs: flags['operator-args'] ? flags['operator-args'].split(/\s+/) : [],
    nodeArgs: [...(flags.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...(flags['node-args'] ? flags['node-args'].split(/\s+/) : [])],
  });
  try {
    const started = await op.start(300_000);
    const sStart = await op.stats();
    say(`[${label}] operator process up in ${started.startMs} ms, caches synced in ${sStart.syncMs} ms, ${sStart.runsCached} runs cached (pid ${op.pid}; log ${path.relative(REPO, logFile)})`);
    // A changed webhook configuration takes a moment to be used: dry-run creates until one is gated.
    for (let i = 0; i < 100; i++) {
      const r = await client.create(collectionPath('tekton.dev/v1', 'PipelineRun', ns), { ...benchRun(ns, 'probe'), metadata: { ...benchRun(ns, 'probe').metadata, name: undefined, generateName: 'probe-' } }, { dryRun: 'All' }).catch(() => undefined);
      if (r?.metadata?.annotations?.['pipeline-sidecars.dev/run-id']) break;
      await sleep(200);
    }
    const tracker = new Tracker(kc, ns, objectsPerRun);
    await tracker.start();
    const idle = op.procUsage()!;
    const s0 = await op.stats(true);
    let rssPeak = idle.rssBytes;
    const sampler = setInterval(() => { const u = op.procUsage(); if (u && u.rssBytes > rssPeak) rssPeak = u.rssBytes; }, 250);

    say(`[${label}] ${N} runs at ${RATE}/s, each asking for one DockerDaemon`);
    const loader = new RawClient(kc);
    const names = Array.from({ length: N }, (_, i) => `run-${String(i).padStart(4, '0')}`);
    const createErrors: string[] = [];
    const pids = () => ({ ...cp.state.pids, operator: op.pid, 'bench (load, watches)': process.pid });
    const cpu0 = cpuSnapshot(pids());
    const tLoad = Date.now();
    await paced(N, RATE, async (i) => {
      const r = tracker.run(names[i]);
      r.createStart = Date.now();
      try {
        const run = await loader.create(collectionPath('tekton.dev/v1', 'PipelineRun', ns), benchRun(ns, names[i]));
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
    say(`[${label}] all ${N} runs provisioned and started (${allUnpended ? 'all' : 'NOT all'}); RSS ${mib(live.rssBytes).toFixed(0)} MiB with ${N} live runs (peak ${mib(rssPeak).toFixed(0)})`);

    // Each run's one task was held running; releasing it lets Tekton finish the run.
    await paced(N, RATE, async (i) => {
      for (let attempt = 0; ; attempt++) {
        const n = await releaseTasks(ns, names[i], { client: loader }).catch((e) => { createErrors.push(`finish ${names[i]}: ${(e as Error).message}`); return 1; });
        if (n > 0) return;
        if (attempt >= 240) { createErrors.push(`finish ${names[i]}: no held task pod after 60 s`); return; }
        await sleep(250);
      }
    });
    const runIds = names.map((n) => tracker.run(n).runId).filter((x): x is string => !!x);
    const allDeleted = await waitFor('every run\'s objects deleted', () => runIds.every((id) => tracker.objects(id).deleted !== undefined), 120_000);
    await sleep(500);
    clearInterval(sampler);
    const end = op.procUsage()!;
    if (end.rssBytes > rssPeak) rssPeak = end.rssBytes;
    const s2 = await op.stats(true);
    let metricsText = '';
    try { metricsText = await (await fetch(`http://127.0.0.1:${started.healthPort}/metrics`)).text(); } catch { /* best effort */ }

    const per = names.map((n) => { const r = tracker.run(n); return { r, o: r.runId ? tracker.objects(r.runId) : undefined }; });
    const provision = per.map(({ r, o }) => (o?.applied ?? NaN) - (r.created ?? NaN));
    const readyToUnpend = per.map(({ r, o }) => (r.unpended ?? NaN) - (o?.ready ?? NaN));
    const createdToUnpend = per.map(({ r }) => (r.unpended ?? NaN) - (r.created ?? NaN));
    const appliedToReady = per.map(({ o }) => (o?.ready ?? NaN) - (o?.applied ?? NaN));
    const doneToDeleted = per.map(({ r, o }) => (o?.deleted ?? NaN) - (r.done ?? NaN));
    const createCall = per.map(({ r }) => (r.created ?? NaN) - (r.createStart ?? NaN));
    const admissionSamples = [...s1.admissionMs, ...s0.admissionMs];
    const admission = dist(admissionSamples);
    const lastApplied = Math.max(...per.map(({ o }) => o?.applied ?? 0));
    const firstCreated = Math.min(...per.map(({ r }) => r.createStart ?? Infinity));
    const throughput = N / ((lastApplied - firstCreated) / 1000);
    const provDist = dist(provision);
    const baseDist = base ? dist(base.provisionMs) : undefined;
    const ratio = provDist && baseDist ? provDist.p50 / baseDist.p50 : NaN;
    const reqProvision = (s1.requests - s0.requests) / N;
    const reqCleanup = (s2.requests - s1.requests) / N;
    const cpuLoad = (live.cpuSeconds - idle.cpuSeconds) / ((tProvisioned - tLoad) / 1000);
    const ms = 'ms';
    const spanOf = (n: string) => s1.spans?.[`run:${ns}/${n}`] ?? [];
    const firstSpan = per.map(({ r }) => spanOf(r.name)[0]);
    const unpendSpan = per.map(({ r }) => { const l = spanOf(r.name).filter((x) => r.unpended !== undefined && x[1] <= r.unpended); return l[l.length - 1]; });
    const bd = (f: (i: number) => number) => dist(per.map((_, i) => f(i)));
    const breakdown: Row[] = [
      { figure: 'provision: created → run queued (watch)', unit: ms, dist: bd((i) => (firstSpan[i]?.[0] ?? NaN) - (per[i].r.created ?? NaN)) },
      { figure: 'provision: queued → worker starts (queue)', unit: ms, dist: bd((i) => (firstSpan[i]?.[1] ?? NaN) - (firstSpan[i]?.[0] ?? NaN)) },
      { figure: 'provision: first reconcile (mint, synth, 2 apply waves)', unit: ms, dist: bd((i) => (firstSpan[i]?.[2] ?? NaN) - (firstSpan[i]?.[1] ?? NaN)) },
      { figure: 'unpend: Ready → a worker takes the run (watch + queue)', unit: ms, dist: bd((i) => (unpendSpan[i]?.[1] ?? NaN) - (per[i].o?.ready ?? NaN)) },
      { figure: 'unpend: reconcile until the run is seen unpended', unit: ms, dist: bd((i) => (per[i].r.unpended ?? NaN) - (unpendSpan[i]?.[1] ?? NaN)) },
      ...['material', 'synthesize', 'apply', 'gate'].map((step) => ({
        figure: `  first reconcile: ${step === 'material' ? 'material (TLS mint or read)' : step === 'apply' ? 'apply (2 waves)' : step}`,
        unit: ms, dist: dist(Object.values(s1.stepMs?.[step] ?? {})),
      })),
      { figure: 'reconciles per run', unit: 'n', dist: dist(per.map(({ r }) => spanOf(r.name).length)) },
    ];
    const rows: Row[] = [
      { figure: 'admission (webhook\'s own time)', unit: ms, dist: admission, target: RATE <= 5 ? 'p50 ≤ 2' : undefined, ok: RATE <= 5 && admission ? admission.p50 <= 2 : undefined },
      { figure: 'run create call (client, incl. admission)', unit: ms, dist: dist(createCall) },
      { figure: 'created → all sidecar objects applied', unit: ms, dist: provDist },
      ...(baseDist ? [{ figure: 'baseline: created → applied (bare client)', unit: ms, dist: baseDist }] : []),
      ...(baseDist ? [{ figure: 'provision / baseline (p50 ratio)', unit: 'x', value: ratio, target: '≤ 1.3', ok: ratio <= 1.3 }] : []),
      { figure: 'applied → sidecar Ready (kwok, controllers)', unit: ms, dist: dist(appliedToReady) },
      { figure: 'sidecar Ready → run unpended', unit: ms, dist: dist(readyToUnpend) },
      { figure: 'created → run unpended (end to end)', unit: ms, dist: dist(createdToUnpend) },
      { figure: 'run done → objects deleted', unit: ms, dist: dist(doneToDeleted) },
      { figure: 'throughput (runs provisioned / s)', unit: 'runs/s', value: throughput, target: `offered ${RATE}/s` },
      { figure: 'operator start → caches synced', unit: ms, value: sStart.syncMs },
      { figure: 'operator process start → ready (incl. sync)', unit: ms, value: started.startMs },
      { figure: 'PipelineRuns in the operator\'s cache at start / with live runs', unit: 'n', value: sStart.runsCached, target: `live: ${s1.runsCached}` },
      { figure: 'operator RSS idle (started, no runs)', unit: 'MiB', value: mib(idle.rssBytes) },
      { figure: `operator RSS, ${N} live runs`, unit: 'MiB', value: mib(live.rssBytes) },
      { figure: 'operator RSS peak (sampled every 250 ms)', unit: 'MiB', value: mib(rssPeak), target: N >= 1000 ? '≤ 180 at 1,000 live' : '≤ 200', ok: N >= 1000 ? mib(rssPeak) <= 180 : mib(rssPeak) <= 200 },
      { figure: 'operator RSS at the end (all done)', unit: 'MiB', value: mib(end.rssBytes) },
      { figure: 'operator heap used, live runs / end', unit: 'MiB', value: mib(s1.memory.heapUsed), target: `end: ${mib(s2.memory.heapUsed).toFixed(1)}` },
      { figure: 'operator CPU during load (of 1 core)', unit: '%', value: cpuLoad * 100 },
      { figure: 'API requests / run: provision + start', unit: 'req', value: reqProvision, target: '≤ 8.0', ok: reqProvision <= 8.0 },
      { figure: 'API requests / run: clean-up', unit: 'req', value: reqCleanup, target: '≤ 6', ok: reqCleanup <= 6 },
      ...(base ? [{ figure: 'baseline API requests / run', unit: 'req', value: base.requests / N }] : []),
    ];
    const byKind = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((k) => [k, ((a[k] ?? 0) - (b[k] ?? 0)) / N]).filter(([, v]) => (v as number) > 0));
    const violations = [
      ...createErrors.slice(0, 10),
      ...(allUnpended ? [] : [`${names.filter((n) => tracker.run(n).unpended === undefined).length} runs never started`]),
      ...(allDeleted ? [] : [`${runIds.filter((id) => tracker.objects(id).deleted === undefined).length} runs kept objects`]),
    ];
    loader.close();
    await tracker.stop();
    return {
      label, namespace: ns, rows, breakdown, violations,
      requestsByKind: { provision: byKind(s1.requestsByKind, s0.requestsByKind), cleanup: byKind(s2.requestsByKind, s1.requestsByKind) },
      figures: {
        createdToAppliedP50Ms: provDist?.p50, createdToAppliedP99Ms: provDist?.p99, provisionBaselineRatio: Number.isFinite(ratio) ? ratio : undefined,
        requestsPerRunProvision: reqProvision, requestsPerRunCleanup: reqCleanup,
        admissionP50Ms: admission?.p50, admissionP99Ms: admission?.p99, readyToUnpendP50Ms: dist(readyToUnpend)?.p50, doneToDeletedP50Ms: dist(doneToDeleted)?.p50,
        rssPeakMiB: mib(rssPeak), rssLiveMiB: mib(live.rssBytes), rssEndMiB: mib(end.rssBytes), heapUsedEndMiB: mib(s2.memory.heapUsed), heapUsedLiveMiB: mib(s1.memory.heapUsed),
        operatorStartMs: started.startMs, cachesSyncedMs: sStart.syncMs, runsCachedAtStart: sStart.runsCached, runsCachedLive: s1.runsCached, listPagesAtStart: sStart.listPages,
      },
      cpu: cpuTable(cpu0, cpu1, (tProvisioned - tLoad) / 1000),
      stats: { ...s2, admissionMs: undefined, spans: undefined, stepMs: undefined },
      raw: { provision, readyToUnpend, doneToDeleted, appliedToReady, admission: admissionSamples },
      metrics: metricsText.split('\n').filter((l) => /^pipeline_sidecars_(reconcile_duration_seconds|errors_total|cached_pipelineruns|admission_api_reads_total)/.test(l)),
    };
  } finally {
    await op.stop();
    // The next phase's operator registers the configuration again, with its own CA.
    await client.delete('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/pipeline-sidecars-bench').catch(() => undefined);
  }
}

function printPhase(p: Phase): void {
  process.stdout.write(`\n## ${p.label} (namespace ${p.namespace})\n\n${table(p.rows)}\n`);
  process.stdout.write(`\nwhere the operator's time goes (its reconcile spans, wall clock of this machine):\n${table(p.breakdown)}\n`);
  process.stdout.write(`\noperator API requests per run, by request (provision + start | clean-up):\n` +
    [...new Set([...Object.keys(p.requestsByKind.provision), ...Object.keys(p.requestsByKind.cleanup)])]
      .map((k) => ({ k, a: p.requestsByKind.provision[k] ?? 0, c: p.requestsByKind.cleanup[k] ?? 0 }))
      .sort((x, y) => y.a + y.c - x.a - x.c)
      .map((x) => `  ${x.k.padEnd(44)} ${x.a.toFixed(2).padStart(6)} | ${x.c.toFixed(2).padStart(6)}`).join('\n') + '\n');
  process.stdout.write(`\nCPU during the load phase (first create until every run started):\n${p.cpu}`);
  if (p.violations.length) process.stdout.write(`\nproblems:\n  ${p.violations.join('\n  ')}\n`);
}

async function main(): Promise<void> {
  const t0 = Date.now();
  fs.mkdirSync(path.join(REPO, '.work', 'bench'), { recursive: true });
  const cp = await ControlPlane.start({ verbose: flags.verbose });
  process.on('SIGINT', () => { say('interrupted'); void cp.stop().then(() => process.exit(130)); });
  try {
    say(`control plane up in ${cp.state.startedMs} ms`);
    const { kc, client } = await connectWithTekton(cp);
    const spec = dockerDaemonSidecar('x').spec as PipelineSidecarSpec;
    let base: Baseline | undefined;
    let baseCpu = '';
    let objectsPerRun = 6;
    if (!flags['skip-baseline']) {
      await prepareNamespace(client, BASE_NS);
      const bpids = () => ({ ...cp.state.pids, 'bench (load, watches)': process.pid });
      const bcpu0 = cpuSnapshot(bpids());
      const tb0 = Date.now();
      base = await baseline(kc, spec);
      baseCpu = cpuTable(bcpu0, cpuSnapshot(bpids()), (Date.now() - tb0) / 1000);
      objectsPerRun = base.objectsPerRun;
      say(`baseline created→applied p50 ${dist(base.provisionMs)!.p50} ms, p99 ${dist(base.provisionMs)!.p99} ms`);
      await clearBaseline(client);
      await settle(cp);
    }

    const phases: Phase[] = [];
    // Each phase's key figures go to stderr as soon as it ends: a long invocation stopped half-way keeps them.
    const done = (p: Phase) => { say(`[${p.label}] ${JSON.stringify(p.figures)}`); return p; };
    for (let k = 1; k <= REPEAT; k++) {
      phases.push(done(await operatorPhase(cp, kc, client, REPEAT > 1 ? `empty cluster, ${k} of ${REPEAT}` : 'empty cluster', REPEAT > 1 ? `${NS}-${k}` : NS, base, objectsPerRun)));
      await settle(cp);
    }
    let finishedInfo: { ms: number; finished: number; settleMs: number } | undefined;
    let baseFinished: Baseline | undefined;
    if (FINISHED > 0) {
      say(`creating ${FINISHED} finished PipelineRuns in ${FINISHED_NS} namespaces`);
      const made = await createFinishedRuns(client, FINISHED, FINISHED_NS);
      const settleMs = await settle(cp);
      finishedInfo = { ...made, settleMs };
      say(`${made.finished} of ${FINISHED} runs finished (${made.ms} ms to create, control plane settled ${settleMs} ms later)`);
      if (base) {
        // The same bare client in the cluster as it is now: what the finished runs cost the API server
        // itself, so the operator's ratio can be read against it.
        baseFinished = await baseline(kc, spec);
        say(`baseline with ${FINISHED} finished runs: created→applied p50 ${dist(baseFinished.provisionMs)!.p50} ms`);
        await clearBaseline(client);
        await settle(cp);
      }
      phases.push(done(await operatorPhase(cp, kc, client, `${FINISHED} finished runs present`, `${NS}-finished`, baseFinished ?? base, objectsPerRun)));
    }

    const empty = phases[0];
    const fin = FINISHED > 0 ? phases[phases.length - 1] : undefined;
    const finishedRatio = fin && empty.figures.createdToAppliedP50Ms ? fin.figures.createdToAppliedP50Ms! / empty.figures.createdToAppliedP50Ms : undefined;
    const baselineRatio = base && baseFinished ? dist(baseFinished.provisionMs)!.p50 / dist(base.provisionMs)!.p50 : undefined;
    process.stdout.write(`\npipeline-sidecars bench: ${N} runs at ${RATE}/s, one TLS DockerDaemon each (${objectsPerRun} objects per run)${FINISHED ? `; ${FINISHED} finished runs in ${FINISHED_NS} namespaces for the last phase` : ''}\n`);
    process.stdout.write(`${new Date().toISOString()}; ${require('node:os').cpus().length} cores shared by etcd, kube-apiserver, controller-manager, scheduler, kwok, Tekton, the operator and this load generator\n`);
    for (const p of phases) printPhase(p);
    const summary: Row[] = [
      ...(fin ? [
        { figure: `created → applied p50: ${FINISHED} finished runs / empty cluster`, unit: 'x', value: finishedRatio, target: '≤ 1.2', ok: finishedRatio !== undefined && finishedRatio <= 1.2 },
        ...(base && baseFinished ? [{ figure: `bare-client baseline created → applied p50: ${FINISHED} finished runs / empty`, unit: 'x', value: baselineRatio }] : []),
        { figure: `operator RSS peak with ${FINISHED} finished runs`, unit: 'MiB', value: fin.figures.rssPeakMiB, target: '≤ 200', ok: fin.figures.rssPeakMiB <= 200 },
        { figure: `operator heap used at the end, ${FINISHED} finished runs`, unit: 'MiB', value: fin.figures.heapUsedEndMiB },
        { figure: `operator start → caches synced, ${FINISHED} finished runs / empty`, unit: 'ms', value: fin.figures.cachesSyncedMs, target: `empty: ${empty.figures.cachesSyncedMs}` },
      ] : []),
      ...phases.map((p) => ({ figure: `[${p.label}] RSS peak`, unit: 'MiB', value: p.figures.rssPeakMiB, target: N >= 1000 ? '≤ 180 at 1,000 live' : undefined, ok: N >= 1000 ? p.figures.rssPeakMiB <= 180 : undefined })),
      ...phases.map((p) => ({ figure: `[${p.label}] provisioning requests / run`, unit: 'req', value: p.figures.requestsPerRunProvision, target: '≤ 8.0', ok: p.figures.requestsPerRunProvision <= 8.0 })),
      ...(base ? phases.map((p) => ({ figure: `[${p.label}] provision / baseline p50`, unit: 'x', value: p.figures.provisionBaselineRatio, target: '≤ 1.3', ok: (p.figures.provisionBaselineRatio ?? Infinity) <= 1.3 })) : []),
    ];
    process.stdout.write(`\n## summary\n\n${table(summary)}\n`);
    if (base) {
      const kindRows: Row[] = [...base.byKind].map(([k, v]) => ({ figure: `baseline: ${k}`, unit: 'ms', dist: dist(v) }));
      process.stdout.write(`\nbaseline client's request latency, by request (the API server's answer time under this load):\n${table(kindRows)}\n`);
      process.stdout.write(`\nCPU while the baseline client applied (until its last object was seen):\n${baseCpu}`);
    }
    const violations = phases.flatMap((p) => p.violations.map((v) => `[${p.label}] ${v}`));
    if (flags.json) {
      const out = {
        date: new Date().toISOString(), cores: require('node:os').cpus().length, runs: N, rate: RATE, objectsPerRun, finishedRuns: FINISHED, finishedNamespaces: FINISHED_NS, repeat: REPEAT,
        figures: {
          finishedOverEmptyCreatedToAppliedP50: finishedRatio,
          baselineFinishedOverEmptyCreatedToAppliedP50: baselineRatio,
          emptyCreatedToAppliedP50Ms: empty.figures.createdToAppliedP50Ms, emptyCreatedToAppliedP99Ms: empty.figures.createdToAppliedP99Ms,
          finishedCreatedToAppliedP50Ms: fin?.figures.createdToAppliedP50Ms, finishedCreatedToAppliedP99Ms: fin?.figures.createdToAppliedP99Ms,
          finishedOperatorRssPeakMiB: fin?.figures.rssPeakMiB, finishedOperatorRssEndMiB: fin?.figures.rssEndMiB, finishedOperatorHeapUsedEndMiB: fin?.figures.heapUsedEndMiB,
          finishedStartupToSyncedCachesMs: fin?.figures.cachesSyncedMs, emptyStartupToSyncedCachesMs: empty.figures.cachesSyncedMs,
          finishedRunsCachedAtStart: fin?.figures.runsCachedAtStart,
          provisioningRequestsPerRun: empty.figures.requestsPerRunProvision, cleanupRequestsPerRun: empty.figures.requestsPerRunCleanup,
          provisionBaselineP50Ratio: empty.figures.provisionBaselineRatio,
          admissionP50Ms: empty.figures.admissionP50Ms, admissionP99Ms: empty.figures.admissionP99Ms,
          rssPeakMiBPerPhase: phases.map((p) => p.figures.rssPeakMiB),
        },
        finishedRunsSetup: finishedInfo,
        phases, violations,
        baseline: base ? { provisionMs: base.provisionMs, requestsPerRun: base.requests / N } : undefined,
        baselineWithFinishedRuns: baseFinished ? { provisionMs: baseFinished.provisionMs } : undefined,
      };
      fs.writeFileSync(flags.json, JSON.stringify(out, null, 1));
      say(`wrote ${flags.json}`);
    }
    if (violations.length) process.stdout.write(`\nproblems:\n  ${violations.join('\n  ')}\n`);
    client.close();
    await cp.stop();
    say(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    process.exit(violations.length ? 1 : 0);
  } catch (e) {
    say(`failed: ${(e as Error).stack ?? e}`);
    await cp.stop({ keepLogs: true });
    say(`control plane logs kept in ${cp.state.workDir}/logs`);
    process.exit(1);
  }
}

void main();
