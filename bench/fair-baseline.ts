/**
 * The bare-client baseline: a client with no operator logic in its timed path doing the whole job
 * the operator does for a run, so that the operator's figures are read against the same work on
 * the same cluster:
 *
 * 1. create the run already pending (spec.status PipelineRunPending) with exactly what our webhook
 *    would have added (params, workspace, bookkeeping), computed before the clock starts;
 * 2. server-side apply synthesizeRun's objects (also synthesized before the clock) in the
 *    operator's two waves: everything but the Deployment in parallel, then the Deployment;
 * 3. wait for the Deployment to be Ready (kwok makes its pods Ready), seen by watch;
 * 4. release the run with the operator's own guarded spec.status patch (setRunStatus);
 * 5. once every run started, release the held tasks at the same rate as the operator phase, so
 *    Tekton does the same work in both;
 * 6. when Tekton reports the run done, delete the objects as the operator does (one collection
 *    delete per kind, by the run's uid).
 *
 * It leaves out what the operator adds on top of that job: Events and the provenance annotation.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { LABELS, MANAGED_BY, PipelineSidecarResource, PipelineSidecarSpec } from '../constructs/api/spec';
import { defaultKinds } from '../constructs/kinds';
import { serviceDnsNames } from '../constructs/names';
import { synthesizeRun } from '../constructs/synthesize';
import { admitPipelineRun } from '../src/admission';
import { OWNED_KINDS } from '../src/cleanup';
import { RawClient } from '../src/k8s/raw';
import { collectionPath, objectPath } from '../src/k8s/resources';
import type { PipelineRun } from '../src/pipelinerun';
import { runIdFromUid } from '../src/runid';
import { setRunStatus } from '../src/run-status';
import { mintRunTls } from '../src/tls';
import { completionRatePerS } from './figures';
import { benchPipeline, benchRun, cpuSnapshot, cpuTable, dist, dockerDaemonSidecar, paced, releaseHeldTasks, SIDECAR, sleep, Tracker, waitFor } from './lib';

const UID_PLACEHOLDER = '00000000-0000-4000-8000-000000000000';
const MANAGER = 'bench-baseline';

export interface BaselineOptions {
  kc: KubeConfig;
  namespace: string;
  runs: number;
  rate: number;
  spec: PipelineSidecarSpec;
  say: (s: string) => void;
  /** The processes whose CPU the phase reports. */
  pids: () => Record<string, number | undefined>;
}

export interface BaselineResult {
  namespace: string;
  /** created → all objects seen, per run (ms). */
  provisionMs: number[];
  /** created → seen released (no spec.status, started annotation). */
  releaseMs: number[];
  appliedToReadyMs: number[];
  readyToReleaseMs: number[];
  doneToDeletedMs: number[];
  /** Runs provisioned (all objects seen) and released per second, first to last completion. */
  provisionThroughput?: number;
  releaseThroughput?: number;
  synthMs: number[];
  /** The bare client's requests per run: create, applies and the release patch; then the deletes. */
  requestsPerRunProvision: number;
  requestsPerRunCleanup: number;
  objectsPerRun: number;
  /** Client-side latency of each request, by request. */
  byKind: Map<string, number[]>;
  cpu: string;
  violations: string[];
  /** Conversion webhook calls per run while it ran, when the API server's metrics could be read (set by the caller). */
  conversionCallsPerRun?: number;
}

/** What the webhook would have made of benchRun, and the run's objects, both before the clock. */
async function prepare(namespace: string, runs: number, spec: PipelineSidecarSpec): Promise<{ synthMs: number[]; prepared: Array<{ name: string; runId: string; body: Record<string, any>; json: string }> }> {
  const tls = await mintRunTls({ hosts: serviceDnsNames(`${SIDECAR}-x`, namespace) });
  const sidecar = { ...dockerDaemonSidecar(namespace), spec } as unknown as PipelineSidecarResource;
  const pipeline = benchPipeline(namespace);
  const kinds = defaultKinds();
  const synthMs: number[] = [];
  const prepared = [];
  for (let i = 0; i < runs; i++) {
    const name = `base-${String(i).padStart(4, '0')}`;
    const runId = runIdFromUid(`${namespace}/${name}`);
    const admitted = admitPipelineRun({ run: benchRun(namespace, name), namespace, pipeline, sidecars: [sidecar], kinds, runId });
    if (!admitted.allowed || !admitted.mutated) throw new Error(`the baseline's run would not be admitted: ${admitted.allowed ? 'not mutated' : admitted.message}`);
    const t = performance.now();
    const manifests = synthesizeRun({ run: { name, namespace, uid: UID_PLACEHOLDER, runId, naming: 'runId' }, sidecars: [{ name: SIDECAR, spec, material: { tls } }], allowPrivileged: true });
    synthMs.push(performance.now() - t);
    prepared.push({ name, runId, body: admitted.mutated, json: JSON.stringify(manifests) });
  }
  return { synthMs, prepared };
}

export async function fairBaseline(o: BaselineOptions): Promise<BaselineResult> {
  const { namespace: ns, runs: N, rate: RATE, say } = o;
  say(`baseline (${ns}): ${N} runs at ${RATE}/s, a bare client doing the operator's job (pending create, 2 apply waves, Ready, release, delete when done)`);
  const { synthMs, prepared } = await prepare(ns, N, o.spec);
  const expected = JSON.parse(prepared[0].json).length;
  const tracker = new Tracker(o.kc, ns, expected);
  await tracker.start();
  const bare = new RawClient(o.kc);
  const loader = new RawClient(o.kc);
  const byKind = new Map<string, number[]>();
  const timed = async <T>(k: string, f: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    const v = await f();
    if (!byKind.has(k)) byKind.set(k, []);
    byKind.get(k)!.push(performance.now() - t);
    return v;
  };
  const violations: string[] = [];
  const cleanups: Promise<void>[] = [];
  const cpu0 = cpuSnapshot(o.pids());
  const tLoad = Date.now();
  const READY_TIMEOUT_MS = 120_000;

  await paced(N, RATE, async (i) => {
    const p = prepared[i];
    const r = tracker.run(p.name);
    r.runId = p.runId;
    r.createStart = Date.now();
    let run: PipelineRun;
    try {
      run = await timed('create PipelineRun (pending)', () => bare.create(collectionPath('tekton.dev/v1', 'PipelineRun', ns), p.body));
    } catch (e) { violations.push(`${p.name}: create: ${(e as Error).message}`); return; }
    r.created = Date.now();
    const manifests = JSON.parse(p.json.split(UID_PLACEHOLDER).join(run.metadata.uid));
    const applyOne = (m: any) => timed(`apply ${m.kind}`, () => bare.apply(objectPath(m), m, MANAGER, { force: false }));
    try {
      await Promise.all(manifests.filter((m: any) => m.kind !== 'Deployment').map(applyOne));
      await Promise.all(manifests.filter((m: any) => m.kind === 'Deployment').map(applyOne));
    } catch (e) { violations.push(`${p.name}: apply: ${(e as Error).message}`); return; }
    const o2 = tracker.objects(p.runId);
    const ready = await Promise.race([tracker.until(() => o2.ready !== undefined).then(() => true), sleep(READY_TIMEOUT_MS).then(() => false)]);
    if (!ready) { violations.push(`${p.name}: Deployment not Ready in ${READY_TIMEOUT_MS / 1000} s`); return; }
    const stored = await timed('release (spec.status patch)', () => setRunStatus(bare, run, 'start', Date.now())).catch((e) => { violations.push(`${p.name}: release: ${(e as Error).message}`); return undefined; });
    if (!stored) { violations.push(`${p.name}: the release patch found the run no longer pending`); return; }
    // Done → delete, as the operator's clean-up does it (src/cleanup.ts deleteBySelector).
    cleanups.push(tracker.until(() => r.done !== undefined).then(async () => {
      const labelSelector = `${LABELS.managedBy}=${MANAGED_BY},${LABELS.runUid}=${run.metadata.uid}`;
      await Promise.all(OWNED_KINDS.map((k) => timed(`delete ${k.kind} (collection)`, () => bare.delete(collectionPath(k.apiVersion, k.kind, ns), { labelSelector, propagationPolicy: 'Background' }))));
    }).catch((e) => { violations.push(`${p.name}: delete: ${(e as Error).message}`); }));
  });
  const names = prepared.map((p) => p.name);
  const allReleased = await waitFor('every baseline run seen released', () => names.every((n) => tracker.run(n).unpended !== undefined), 60_000, say);
  const tReleased = Date.now();
  const cpu1 = cpuSnapshot(o.pids());
  const requestsProvision = bare.requests;
  if (!allReleased) violations.push(`${names.filter((n) => tracker.run(n).unpended === undefined).length} runs never seen released`);

  // The same task release as the operator phase: Tekton runs the same work in both.
  await releaseHeldTasks(loader, ns, names, RATE, violations);
  await Promise.race([Promise.all(cleanups), sleep(120_000)]);
  const allDeleted = await waitFor('every baseline run\'s objects deleted', () => prepared.every((p) => tracker.objects(p.runId).deleted !== undefined), 60_000, say);
  if (!allDeleted) violations.push(`${prepared.filter((p) => tracker.objects(p.runId).deleted === undefined).length} runs kept objects`);

  const per = prepared.map((p) => ({ r: tracker.run(p.name), o: tracker.objects(p.runId) }));
  const result: BaselineResult = {
    namespace: ns,
    provisionMs: per.map(({ r, o }) => (o.applied ?? NaN) - (r.created ?? NaN)),
    releaseMs: per.map(({ r }) => (r.unpended ?? NaN) - (r.created ?? NaN)),
    appliedToReadyMs: per.map(({ o }) => (o.ready ?? NaN) - (o.applied ?? NaN)),
    readyToReleaseMs: per.map(({ r, o }) => (r.unpended ?? NaN) - (o.ready ?? NaN)),
    doneToDeletedMs: per.map(({ r, o }) => (o.deleted ?? NaN) - (r.done ?? NaN)),
    provisionThroughput: completionRatePerS(per.map(({ o }) => o.applied)),
    releaseThroughput: completionRatePerS(per.map(({ r }) => r.unpended)),
    synthMs,
    requestsPerRunProvision: requestsProvision / N,
    requestsPerRunCleanup: (bare.requests - requestsProvision) / N,
    objectsPerRun: expected,
    byKind,
    cpu: cpuTable(cpu0, cpu1, (tReleased - tLoad) / 1000),
    violations: violations.slice(0, 20),
  };
  await tracker.stop();
  bare.close();
  loader.close();
  const d = dist(result.provisionMs);
  say(`baseline (${ns}): created→applied p50 ${d?.p50} ms, created→released p50 ${dist(result.releaseMs)?.p50} ms, ${result.provisionThroughput?.toFixed(2)} provisioned/s`);
  return result;
}
