/**
 * `npm run bench -- [--runs N] [--rate R] [--finished-runs F] [--repeat K] [--idle-seconds S] [--skip-baseline] [--json out.json] [--profile]`
 *
 * On a fresh local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok, and
 * the real Tekton controller and webhook), each timed phase after the same quiet wait (the control
 * plane settled, then S idle seconds):
 * 1. Bare-client baseline (bench/fair-baseline.ts): the operator's whole job for N runs at R/s with
 *    no operator logic in the timed path: pending create, the objects in two apply waves, wait for
 *    Ready, release, tasks released, objects deleted once Tekton reports the run done.
 * 2. Operator, empty cluster (bench/operator-phase.ts; K times with --repeat): `pipeline-sidecars
 *    run` serving every namespace does the same for N runs at R/s.
 * 3. With --finished-runs F: F finished PipelineRuns (bench/cluster-state.ts) in M namespaces; the
 *    time the control plane takes to digest them; then the bare client and the operator again, in
 *    that state. The headline is the operator's created → applied p50 over the bare client's there.
 * Conversion webhook calls are counted per phase from kube-apiserver's /metrics
 * (bench/conversion-calls.ts). Every per-run time is stamped with the local clock when a watch
 * event arrives (ms resolution).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { PipelineSidecarSpec } from '../constructs/api/spec';
import { ControlPlane } from '../platform/control-plane';
import { clearBaseline, createFinishedRuns, quiet, QuietWait, settle } from './cluster-state';
import { ConversionLedger } from './conversion-calls';
import { BaselineResult, fairBaseline } from './fair-baseline';
import { ratio } from './figures';
import { compareTable, CompareRow, connectWithTekton, dist, dockerDaemonSidecar, prepareNamespace, REPO, Row, table } from './lib';
import { operatorPhase, Phase, printPhase } from './operator-phase';

const NS = 'bench';
const BASE_NS = 'bench-baseline';
const BASE_FINISHED_NS = 'bench-baseline-finished';

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
    'idle-seconds': { type: 'string', default: '10' },
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
const IDLE_MS = Number(flags['idle-seconds']) * 1000;
const USAGE = 'usage: npm run bench -- [--runs N (default 200)] [--rate R runs/s (default 20)] [--finished-runs F (default 0)] [--finished-namespaces M (default 50)] [--repeat K (default 1)] ' +
  '[--idle-seconds S (default 10)] [--skip-baseline] [--json out.json] [--profile] [--verbose] [--operator-args "FLAGS"] [--node-args "FLAGS"]\n';
if (flags.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (!Number.isInteger(N) || N < 1 || !(RATE > 0) || !Number.isInteger(FINISHED) || FINISHED < 0 || !Number.isInteger(FINISHED_NS) || FINISHED_NS < 1 ||
  !Number.isInteger(REPEAT) || REPEAT < 1 || !(IDLE_MS >= 0)) {
  process.stderr.write(USAGE);
  process.exit(2);
}
const say = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const p50 = (v: number[] | undefined) => (v ? dist(v)?.p50 : undefined);

/** The bare client and the operator in one cluster state, side by side. */
function comparison(base: BaselineResult | undefined, p: Phase, headline: boolean): CompareRow[] {
  const f = p.figures;
  const bProv = p50(base?.provisionMs);
  const bRel = p50(base?.releaseMs);
  const provRatio = ratio(f.createdToAppliedP50Ms, bProv);
  return [
    { figure: 'created → applied p50', unit: 'ms', bare: bProv, operator: f.createdToAppliedP50Ms, ratio: provRatio, target: headline ? '≤ 1.3' : undefined, ok: headline && provRatio !== undefined ? provRatio <= 1.3 : undefined },
    { figure: 'created → released (unpended) p50', unit: 'ms', bare: bRel, operator: f.createdToUnpendedP50Ms, ratio: ratio(f.createdToUnpendedP50Ms, bRel) },
    { figure: `runs provisioned / s (offered ${RATE}/s)`, unit: 'runs/s', bare: base?.provisionThroughput, operator: f.throughputRunsPerS, ratio: ratio(f.throughputRunsPerS, base?.provisionThroughput) },
    { figure: `runs released / s (offered ${RATE}/s)`, unit: 'runs/s', bare: base?.releaseThroughput, operator: f.releaseThroughputRunsPerS, ratio: ratio(f.releaseThroughputRunsPerS, base?.releaseThroughput) },
    { figure: 'applied → Ready p50', unit: 'ms', bare: p50(base?.appliedToReadyMs), operator: p50(p.raw.appliedToReady) },
    { figure: 'Ready → released p50', unit: 'ms', bare: p50(base?.readyToReleaseMs), operator: f.readyToUnpendP50Ms },
    { figure: 'done → objects deleted p50', unit: 'ms', bare: p50(base?.doneToDeletedMs), operator: f.doneToDeletedP50Ms },
    { figure: 'API requests / run: provision + start', unit: 'req', bare: base?.requestsPerRunProvision, operator: f.requestsPerRunProvision, target: 'operator ≤ 8.0', ok: f.requestsPerRunProvision <= 8.0 },
    { figure: 'API requests / run: clean-up', unit: 'req', bare: base?.requestsPerRunCleanup, operator: f.requestsPerRunCleanup },
    { figure: 'conversion webhook calls / run', unit: 'calls', bare: base?.conversionCallsPerRun, operator: f.conversionCallsPerRun, ratio: ratio(f.conversionCallsPerRun, base?.conversionCallsPerRun) },
  ];
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
    const ledger = new ConversionLedger(cp, say);
    const waits: Record<string, QuietWait> = {};
    /** The same quiet wait before every timed phase, its conversion calls counted too. */
    const quietBefore = async (what: string) => {
      await ledger.begin(`quiet wait before ${what}`);
      waits[what] = await quiet(cp, IDLE_MS, say);
      await ledger.end(`quiet wait before ${what}`);
    };
    const pids = () => ({ ...cp.state.pids, 'bench (load, watches)': process.pid });
    const runBaseline = async (ns: string, label: string): Promise<BaselineResult> => {
      await prepareNamespace(client, ns);
      await quietBefore(`baseline (${label})`);
      await ledger.begin(`baseline (${label})`);
      const b = await fairBaseline({ kc, namespace: ns, runs: N, rate: RATE, spec, say, pids });
      b.conversionCallsPerRun = (await ledger.end(`baseline (${label})`, N))?.callsPerRun;
      // The operator that comes next serves every namespace: it must find nothing of ours to adopt.
      await ledger.begin(`clearing baseline (${label})`);
      await clearBaseline(client, ns, say);
      await ledger.end(`clearing baseline (${label})`);
      return b;
    };
    const phaseOf = (label: string, ns: string, base: BaselineResult | undefined) => operatorPhase({
      cp, kc, client, label, namespace: ns, base, objectsPerRun: base?.objectsPerRun ?? 6, runs: N, rate: RATE, ledger, say,
      operatorArgs: flags['operator-args'] ? flags['operator-args'].split(/\s+/) : [],
      nodeArgs: [...(flags.profile ? ['--cpu-prof', '--cpu-prof-dir={profileDir}'] : []), ...(flags['node-args'] ? flags['node-args'].split(/\s+/) : [])],
      beforeLoad: () => quietBefore(`operator (${label})`),
    });

    const base = flags['skip-baseline'] ? undefined : await runBaseline(BASE_NS, 'empty cluster');
    const phases: Phase[] = [];
    // Each phase's key figures go to stderr as soon as it ends: a long invocation stopped half-way keeps them.
    const done = (p: Phase) => { say(`[${p.label}] ${JSON.stringify(p.figures)}`); return p; };
    for (let k = 1; k <= REPEAT; k++) {
      phases.push(done(await phaseOf(REPEAT > 1 ? `empty cluster, ${k} of ${REPEAT}` : 'empty cluster', REPEAT > 1 ? `${NS}-${k}` : NS, base)));
    }
    let finishedInfo: { ms: number; finished: number; digestMs: number } | undefined;
    let baseFinished: BaselineResult | undefined;
    if (FINISHED > 0) {
      say(`creating ${FINISHED} finished PipelineRuns in ${FINISHED_NS} namespaces`);
      await ledger.begin('creating the finished runs');
      const made = await createFinishedRuns(client, FINISHED, FINISHED_NS, say);
      await ledger.end('creating the finished runs', FINISHED);
      // How long Tekton and the API server take to digest the burst: until the control plane is quiet.
      await ledger.begin('digesting the finished runs (settle)');
      const digestMs = await settle(cp, say);
      await ledger.end('digesting the finished runs (settle)');
      finishedInfo = { ...made, digestMs };
      say(`${made.finished} of ${FINISHED} runs finished (${made.ms} ms to create, control plane settled ${digestMs} ms later)`);
      // The bare client and the operator in the same state, each after the same quiet wait.
      if (base) baseFinished = await runBaseline(BASE_FINISHED_NS, `${FINISHED} finished runs`);
      phases.push(done(await phaseOf(`${FINISHED} finished runs present`, `${NS}-finished`, baseFinished)));
    }

    const empty = phases[0];
    const fin = FINISHED > 0 ? phases[phases.length - 1] : undefined;
    const operatorFinOverEmpty = ratio(fin?.figures.createdToAppliedP50Ms, empty.figures.createdToAppliedP50Ms);
    const baselineFinOverEmpty = ratio(p50(baseFinished?.provisionMs), p50(base?.provisionMs));
    const finishedHeadline = fin ? fin.figures.provisionBaselineRatio : undefined;
    process.stdout.write(`\npipeline-sidecars bench: ${N} runs at ${RATE}/s, one TLS DockerDaemon each (${base?.objectsPerRun ?? 6} objects per run)` +
      `${FINISHED ? `; ${FINISHED} finished runs in ${FINISHED_NS} namespaces for the last phases` : ''}; ${IDLE_MS / 1000} s idle before each timed phase\n`);
    process.stdout.write(`${new Date().toISOString()}; ${os.cpus().length} cores shared by etcd, kube-apiserver, controller-manager, scheduler, kwok, Tekton, the operator and this load generator` +
      ` (load average at the end ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})\n`);
    for (const p of phases) printPhase(p);

    process.stdout.write(`\n## bare client and operator, side by side: empty cluster\n\n${compareTable(comparison(base, empty, !fin))}\n`);
    if (fin) process.stdout.write(`\n## bare client and operator, side by side: ${FINISHED} finished runs present (the headline)\n\n${compareTable(comparison(baseFinished, fin, true))}\n`);
    const summary: Row[] = [
      ...(fin ? [
        { figure: `created → applied p50, operator / bare client, ${FINISHED} finished runs`, unit: 'x', value: finishedHeadline, target: '≤ 1.3', ok: finishedHeadline !== undefined && finishedHeadline <= 1.3 },
        { figure: `(informational) operator created → applied p50: ${FINISHED} finished / empty`, unit: 'x', value: operatorFinOverEmpty },
        { figure: `(informational) bare client created → applied p50: ${FINISHED} finished / empty`, unit: 'x', value: baselineFinOverEmpty },
        { figure: `control plane digesting ${FINISHED} finished runs (created → settled)`, unit: 'ms', value: finishedInfo!.digestMs, target: `creating them: ${finishedInfo!.ms} ms` },
        { figure: `operator RSS peak with ${FINISHED} finished runs`, unit: 'MiB', value: fin.figures.rssPeakMiB, target: '≤ 200', ok: fin.figures.rssPeakMiB <= 200 },
        { figure: `operator heap used at the end, ${FINISHED} finished runs`, unit: 'MiB', value: fin.figures.heapUsedEndMiB },
        { figure: `operator start → caches synced, ${FINISHED} finished runs / empty`, unit: 'ms', value: fin.figures.cachesSyncedMs, target: `empty: ${empty.figures.cachesSyncedMs}` },
      ] : []),
      ...phases.map((p) => ({ figure: `[${p.label}] RSS peak`, unit: 'MiB', value: p.figures.rssPeakMiB, target: N >= 1000 ? '≤ 180 at 1,000 live' : undefined, ok: N >= 1000 ? p.figures.rssPeakMiB <= 180 : undefined })),
      ...phases.map((p) => ({ figure: `[${p.label}] provisioning requests / run`, unit: 'req', value: p.figures.requestsPerRunProvision, target: '≤ 8.0', ok: p.figures.requestsPerRunProvision <= 8.0 })),
      ...(base ? phases.map((p) => ({ figure: `[${p.label}] provision / baseline p50`, unit: 'x', value: p.figures.provisionBaselineRatio, target: '≤ 1.3', ok: (p.figures.provisionBaselineRatio ?? Infinity) <= 1.3 })) : []),
    ];
    process.stdout.write(`\n## summary\n\n${table(summary)}\n`);
    process.stdout.write(`\nconversion webhook calls per phase (kube-apiserver /metrics; "invocations" include conversions with nothing to send):\n${ledger.report()}`);
    process.stdout.write(`\nquiet waits (settled, then ${IDLE_MS / 1000} s idle; what the control plane still used while idle):\n` + Object.entries(waits).map(([k, w]) =>
      `  before ${k}: settled in ${(w.settleMs / 1000).toFixed(1)} s; idle: ${Object.entries(w.idleCores).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([c, v]) => `${c} ${(v * 100).toFixed(0)}%`).join(', ')} of a core`).join('\n') + '\n');
    const bases = [['empty', base], [`${FINISHED} finished`, baseFinished]].filter((x): x is [string, BaselineResult] => x[1] !== undefined);
    if (bases.length) {
      const kinds = [...new Set(bases.flatMap(([, b]) => [...b.byKind.keys()]))];
      const kindRows: Row[] = kinds.flatMap((k) => bases.map(([label, b]) => ({ figure: `[${label}] ${k}`, unit: 'ms', dist: dist(b.byKind.get(k) ?? []) })));
      process.stdout.write(`\nbare client's request latency, by request (the API server's answer time under this load; compare the states for what stays slower):\n${table(kindRows)}\n`);
      for (const [label, b] of bases) process.stdout.write(`\nCPU while the bare client provisioned (${label}: first create until every run was seen released):\n${b.cpu}`);
    }
    const violations = [
      ...phases.flatMap((p) => p.violations.map((v) => `[${p.label}] ${v}`)),
      ...bases.flatMap(([label, b]) => b.violations.map((v) => `[baseline, ${label}] ${v}`)),
    ];
    if (flags.json) {
      const conversionCallsPerRun = Object.fromEntries(Object.entries(ledger.phases).filter(([, p]) => p.callsPerRun !== undefined).map(([k, p]) => [k, p.callsPerRun]));
      const out = {
        date: new Date().toISOString(), cores: os.cpus().length, loadAverageAtEnd: os.loadavg(), runs: N, rate: RATE, objectsPerRun: base?.objectsPerRun ?? 6,
        finishedRuns: FINISHED, finishedNamespaces: FINISHED_NS, repeat: REPEAT, idleSeconds: IDLE_MS / 1000,
        figures: {
          offeredRatePerS: RATE,
          // Empty cluster, operator against the fair bare client.
          provisionBaselineP50Ratio: empty.figures.provisionBaselineRatio,
          releaseBaselineP50Ratio: empty.figures.releaseBaselineRatio,
          operatorCreatedToAppliedP50Ms: empty.figures.createdToAppliedP50Ms, baselineCreatedToAppliedP50Ms: p50(base?.provisionMs),
          operatorCreatedToReleasedP50Ms: empty.figures.createdToUnpendedP50Ms, baselineCreatedToReleasedP50Ms: p50(base?.releaseMs),
          operatorThroughputRunsPerS: empty.figures.throughputRunsPerS, baselineThroughputRunsPerS: base?.provisionThroughput,
          throughputRatio: ratio(empty.figures.throughputRunsPerS, base?.provisionThroughput),
          operatorReleaseThroughputRunsPerS: empty.figures.releaseThroughputRunsPerS, baselineReleaseThroughputRunsPerS: base?.releaseThroughput,
          releaseThroughputRatio: ratio(empty.figures.releaseThroughputRunsPerS, base?.releaseThroughput),
          emptyCreatedToAppliedP50Ms: empty.figures.createdToAppliedP50Ms, emptyCreatedToAppliedP99Ms: empty.figures.createdToAppliedP99Ms,
          provisioningRequestsPerRun: empty.figures.requestsPerRunProvision, cleanupRequestsPerRun: empty.figures.requestsPerRunCleanup,
          baselineProvisioningRequestsPerRun: base?.requestsPerRunProvision,
          admissionP50Ms: empty.figures.admissionP50Ms, admissionP99Ms: empty.figures.admissionP99Ms,
          // The finished-runs state: the headline is the operator against the bare client, both in that state.
          finishedOperatorBaselineP50Ratio: finishedHeadline,
          finishedReleaseOperatorBaselineP50Ratio: fin?.figures.releaseBaselineRatio,
          finishedOperatorCreatedToAppliedP50Ms: fin?.figures.createdToAppliedP50Ms, finishedOperatorCreatedToAppliedP99Ms: fin?.figures.createdToAppliedP99Ms,
          finishedBaselineCreatedToAppliedP50Ms: p50(baseFinished?.provisionMs),
          finishedOperatorCreatedToReleasedP50Ms: fin?.figures.createdToUnpendedP50Ms, finishedBaselineCreatedToReleasedP50Ms: p50(baseFinished?.releaseMs),
          finishedOperatorThroughputRunsPerS: fin?.figures.throughputRunsPerS, finishedBaselineThroughputRunsPerS: baseFinished?.provisionThroughput,
          finishedThroughputRatio: ratio(fin?.figures.throughputRunsPerS, baseFinished?.provisionThroughput),
          finishedProvisioningRequestsPerRun: fin?.figures.requestsPerRunProvision, finishedCleanupRequestsPerRun: fin?.figures.requestsPerRunCleanup,
          finishedDigestMs: finishedInfo?.digestMs,
          finishedOperatorRssPeakMiB: fin?.figures.rssPeakMiB, finishedOperatorRssEndMiB: fin?.figures.rssEndMiB, finishedOperatorHeapUsedEndMiB: fin?.figures.heapUsedEndMiB,
          finishedStartupToSyncedCachesMs: fin?.figures.cachesSyncedMs, emptyStartupToSyncedCachesMs: empty.figures.cachesSyncedMs,
          finishedRunsCachedAtStart: fin?.figures.runsCachedAtStart,
          // Not targets: how much each slows down from the empty cluster to the finished-runs state.
          informationalOperatorFinishedOverEmptyCreatedToAppliedP50: operatorFinOverEmpty,
          informationalBaselineFinishedOverEmptyCreatedToAppliedP50: baselineFinOverEmpty,
          conversionCallsPerPhase: ledger.phases,
          conversionCallsPerRun,
          rssPeakMiBPerPhase: phases.map((p) => p.figures.rssPeakMiB),
        },
        finishedRunsSetup: finishedInfo,
        quietWaits: waits,
        phases, violations,
        baseline: base ? { ...base, byKind: Object.fromEntries(base.byKind), cpu: undefined } : undefined,
        baselineWithFinishedRuns: baseFinished ? { ...baseFinished, byKind: Object.fromEntries(baseFinished.byKind), cpu: undefined } : undefined,
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
