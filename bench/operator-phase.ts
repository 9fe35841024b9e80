/**
 * One operator phase of `npm run bench`: `pipeline-sidecars run` as a child process serving every
 * namespace (webhook included); N runs that ask for a DockerDaemon created at R/s; Tekton starts each
 * once the operator unpends it, and its one task holds on the kwok node. Once all have started (N
 * live runs) the operator's RSS/CPU and API requests are read; then every run's task is released at
 * R/s, Tekton finishes the runs, and the clean-up is timed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import type { ControlPlane } from '../platform/control-plane';
import { RawClient } from '../src/k8s/raw';
import { collectionPath } from '../src/k8s/resources';
import { ConversionLedger } from './conversion-calls';
import type { BaselineResult } from './fair-baseline';
import { completionRatePerS, ratio as ratio2 } from './figures';
import { benchRun, cpuSnapshot, cpuTable, dist, freePort, paced, releaseHeldTasks, prepareNamespace, REPO, Row, sleep, table, Tracker, waitFor } from './lib';
import { MeasuredOperator } from './measured-operator';

/** The sweep's status write of a PipelineSidecar, as the operator's request counter names it. */
const SIDECAR_STATUS_WRITE = 'PATCH pipelinesidecars/status';

const mib = (b: number) => b / 2 ** 20;

/** What one operator phase measured. */
export interface Phase {
  label: string;
  namespace: string;
  rows: Row[];
  breakdown: Row[];
  /** Per run, by request (`POST events`, `PATCH deployments (apply)`...): provision + start, and clean-up. */
  requestsByKind: { provision: Record<string, number>; cleanup: Record<string, number> };
  figures: {
    createdToAppliedP50Ms?: number; createdToAppliedP99Ms?: number; provisionBaselineRatio?: number;
    createdToUnpendedP50Ms?: number; createdToUnpendedP99Ms?: number; releaseBaselineRatio?: number;
    throughputRunsPerS?: number; releaseThroughputRunsPerS?: number; offeredRatePerS: number; conversionCallsPerRun?: number;
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

export interface PhaseOptions {
  cp: ControlPlane;
  kc: KubeConfig;
  client: RawClient;
  label: string;
  namespace: string;
  /** The bare client in the same cluster state, when measured. */
  base?: BaselineResult;
  objectsPerRun: number;
  runs: number;
  rate: number;
  operatorArgs: string[];
  nodeArgs: string[];
  ledger: ConversionLedger;
  /** Runs once the operator is up, right before the timed load (the same quiet wait the bare client had). */
  beforeLoad: () => Promise<void>;
  say: (s: string) => void;
}

export async function operatorPhase(o: PhaseOptions): Promise<Phase> {
  const { cp, kc, client, label, namespace: ns, base, objectsPerRun, runs: N, rate: RATE, say } = o;
  const workLogs = path.join(REPO, '.work', 'bench');
  await prepareNamespace(client, ns);
  const logFile = path.join(workLogs, `operator-${ns}.log`);
  fs.rmSync(logFile, { force: true });
  const profDir = path.join(workLogs, 'profile');
  const op = new MeasuredOperator({
    name: `operator-${ns}`, kubeconfig: cp.state.kubeconfig, namespace: ns, webhookPort: await freePort(), webhookConfig: 'pipeline-sidecars-bench', logFile, clusterWide: true,
    extraArgs: o.operatorArgs,
    nodeArgs: o.nodeArgs.map((a) => a.replace('{profileDir}', profDir)),
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
    await o.beforeLoad();
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
    await o.ledger.begin(`operator: ${label}`);
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
    const allUnpended = await waitFor('every run started', () => names.every((n) => tracker.run(n).unpended !== undefined), 120_000 + (N / RATE) * 1000, say);
    const tProvisioned = Date.now();
    await sleep(1000); // let the last events settle before reading the process
    const cpu1 = cpuSnapshot(pids());
    const live = op.procUsage()!;
    const s1 = await op.stats(true, true);
    say(`[${label}] all ${N} runs provisioned and started (${allUnpended ? 'all' : 'NOT all'}); RSS ${mib(live.rssBytes).toFixed(0)} MiB with ${N} live runs (peak ${mib(rssPeak).toFixed(0)})`);

    // Each run's one task was held running; releasing it lets Tekton finish the run.
    await releaseHeldTasks(loader, ns, names, RATE, createErrors);
    const runIds = names.map((n) => tracker.run(n).runId).filter((x): x is string => !!x);
    const allDeleted = await waitFor('every run\'s objects deleted', () => runIds.every((id) => tracker.objects(id).deleted !== undefined), 120_000, say);
    const conversions = await o.ledger.end(`operator: ${label}`, N);
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
    const throughput = completionRatePerS(per.map(({ o }) => o?.applied));
    const releaseThroughput = completionRatePerS(per.map(({ r }) => r.unpended));
    const provDist = dist(provision);
    const unpendDist = dist(createdToUnpend);
    const baseDist = base ? dist(base.provisionMs) : undefined;
    const baseReleaseDist = base ? dist(base.releaseMs) : undefined;
    const ratio = ratio2(provDist?.p50, baseDist?.p50);
    const releaseRatio = ratio2(unpendDist?.p50, baseReleaseDist?.p50);
    // The sweep refreshes each PipelineSidecar's status once a minute whatever the number of runs: a
    // cost per PipelineSidecar and minute, on a row of its own, not a request of any run.
    const periodic = (a: typeof s0, b: typeof s0) => (a.requestsByKind?.[SIDECAR_STATUS_WRITE] ?? 0) - (b.requestsByKind?.[SIDECAR_STATUS_WRITE] ?? 0);
    const reqProvision = (s1.requests - s0.requests - periodic(s1, s0)) / N;
    const reqCleanup = (s2.requests - s1.requests - periodic(s2, s1)) / N;
    const sidecarStatusWrites = periodic(s2, s0);
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
      ...(baseDist ? [{ figure: 'provision / baseline (p50 ratio)', unit: 'x', value: ratio, target: '≤ 1.3', ok: ratio !== undefined && ratio <= 1.3 }] : []),
      { figure: 'applied → sidecar Ready (kwok, controllers)', unit: ms, dist: dist(appliedToReady) },
      { figure: 'sidecar Ready → run unpended', unit: ms, dist: dist(readyToUnpend) },
      { figure: 'created → run unpended (end to end)', unit: ms, dist: unpendDist },
      ...(baseReleaseDist ? [{ figure: 'baseline: created → released (bare client)', unit: ms, dist: baseReleaseDist },
        { figure: 'release / baseline (p50 ratio)', unit: 'x', value: releaseRatio }] : []),
      { figure: 'run done → objects deleted', unit: ms, dist: dist(doneToDeleted) },
      { figure: 'throughput (runs provisioned / s)', unit: 'runs/s', value: throughput, target: `offered ${RATE}/s` },
      { figure: 'throughput (runs released / s)', unit: 'runs/s', value: releaseThroughput, target: `offered ${RATE}/s` },
      ...(base ? [{ figure: 'baseline throughput (provisioned | released / s)', unit: 'runs/s', value: base.provisionThroughput, target: `released ${base.releaseThroughput?.toFixed(2) ?? '-'}` }] : []),
      { figure: 'conversion webhook calls / run (API server)', unit: 'calls', value: conversions?.callsPerRun, target: base?.conversionCallsPerRun !== undefined ? `bare client: ${base.conversionCallsPerRun.toFixed(2)}` : undefined },
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
      { figure: 'PipelineSidecar status writes (the sweep, once a minute; not per run)', unit: 'n', value: sidecarStatusWrites },
      { figure: 'API requests / run: clean-up', unit: 'req', value: reqCleanup, target: '≤ 6', ok: reqCleanup <= 6 },
      ...(base ? [{ figure: 'baseline API requests / run: provision + start | clean-up', unit: 'req', value: base.requestsPerRunProvision, target: `clean-up ${base.requestsPerRunCleanup.toFixed(2)}` }] : []),
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
        createdToAppliedP50Ms: provDist?.p50, createdToAppliedP99Ms: provDist?.p99, provisionBaselineRatio: ratio,
        createdToUnpendedP50Ms: unpendDist?.p50, createdToUnpendedP99Ms: unpendDist?.p99, releaseBaselineRatio: releaseRatio,
        throughputRunsPerS: throughput, releaseThroughputRunsPerS: releaseThroughput, offeredRatePerS: RATE,
        conversionCallsPerRun: conversions?.callsPerRun,
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

export function printPhase(p: Phase): void {
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

