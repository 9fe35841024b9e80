/**
 * Shared pieces of `npm run bench` and `npm run chaos`: CPU readings from /proc, a
 * watch-based tracker that timestamps what happens to runs and their sidecar objects (local clock,
 * millisecond resolution, not the servers' 1 s timestamps), percentiles and the table.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, KIND, LABELS } from '../constructs/api/spec';
import { pipelineSidecarCrd } from '../constructs/api/crd';
import { Informer } from '../src/k8s/informer';
import { KubeObject } from '../src/k8s/object-store';
import { ApiError, RawClient, isConflict } from '../src/k8s/raw';
import { TASK_LABELS } from '../platform/tekton';
import type { ControlPlane } from '../platform/control-plane';
import { collectionPath } from '../src/k8s/resources';
import { deploymentReady } from '../src/readiness';
import { OWNED_KINDS, OWNED_SELECTOR } from '../src/cleanup';
import { applyAll } from '../platform/bootstrap';
import { releaseTasks } from '../platform/runs';

export const REPO = path.resolve(__dirname, '..');
export const SIDECAR = 'docker-daemon';
export const PIPELINE = 'bench-pipeline';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDone } from '../src/pipelinerun';
export { sleep };

/** Ports for the operator's webhook and health servers: the harness's picker, below the ephemeral range, so a port survives operator restarts. */
export { freePort } from '../platform/control-plane';

/** CPU seconds (user+system) of a process from /proc, undefined when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(stat[11]) + Number(stat[12])) / 100;
  } catch { return undefined; }
}

/** CPU seconds the whole machine spent busy (all processes, /proc/stat), for comparing against ours. */
export function machineBusySeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}

/** CPU seconds of each named process now; diff two snapshots to see where a phase's CPU went. */
export function cpuSnapshot(pids: Record<string, number | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) { const s = pid ? cpuSeconds(pid) : undefined; if (s !== undefined) out[name] = s; }
  out['(machine: all processes)'] = machineBusySeconds();
  return out;
}

/** A DockerDaemon PipelineSidecar as in examples/docker-daemon, with a given startupTimeout. */
export function dockerDaemonSidecar(namespace: string, startupTimeout = '5m'): Record<string, any> {
  return {
    apiVersion: API_VERSION, kind: KIND, metadata: { name: SIDECAR, namespace },
    spec: {
      kind: 'DockerDaemon',
      dockerDaemon: { tls: true, storageDriver: 'overlay2' },
      ports: [{ name: 'docker', port: 2376 }],
      expose: { params: [{ name: 'docker-host', value: 'tcp://$(host):2376' }], workspace: 'docker-tls-certs' },
      isolation: { from: 'SameRun' },
      lifecycle: { startupTimeout, onSidecarFailure: 'Cancel' },
    },
  };
}

/**
 * A one-task Pipeline that declares what the sidecar exposes. Its task holds (the harness's kwok stage
 * keeps the pod running) until the bench or chaos driver releases it: the run stays live until then.
 */
export function benchPipeline(namespace: string): Record<string, any> {
  return {
    apiVersion: 'tekton.dev/v1', kind: 'Pipeline', metadata: { name: PIPELINE, namespace },
    spec: {
      params: [{ name: 'docker-host', type: 'string' }],
      workspaces: [{ name: 'docker-tls-certs' }],
      tasks: [{
        name: 'build', params: [{ name: 'docker-host', value: '$(params.docker-host)' }],
        workspaces: [{ name: 'docker-tls-certs', workspace: 'docker-tls-certs' }],
        taskSpec: {
          metadata: { labels: { [TASK_LABELS.hold]: 'true' } },
          params: [{ name: 'docker-host' }], workspaces: [{ name: 'docker-tls-certs' }],
          steps: [{ name: 'build', image: 'docker.io/library/docker:27', script: 'docker info' }],
        },
      }],
    },
  };
}

export function benchRun(namespace: string, name: string): Record<string, any> {
  return {
    apiVersion: 'tekton.dev/v1', kind: 'PipelineRun',
    metadata: { name, namespace, annotations: { 'pipeline-sidecars.dev/sidecars': SIDECAR } },
    spec: { pipelineRef: { name: PIPELINE } },
  };
}

/** The CRD, a namespace that allows privileged sidecars, the PipelineSidecar and the Pipeline. */
export async function prepareNamespace(client: RawClient, namespace: string, opts: { startupTimeout?: string; createNamespace?: boolean } = {}): Promise<void> {
  await applyAll(client, [pipelineSidecarCrd()], 'pipeline-sidecars-bench');
  if (opts.createNamespace ?? true) {
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { [LABELS.allowPrivileged]: 'true' } } })
      .catch((e) => { if (!isConflict(e)) throw e; });
  }
  await client.create(collectionPath(API_VERSION, KIND, namespace), dockerDaemonSidecar(namespace, opts.startupTimeout));
  await client.create(collectionPath('tekton.dev/v1', 'Pipeline', namespace), benchPipeline(namespace));
  // The default ServiceAccount (the controller-manager makes it) must exist before pods can be created.
  for (let i = 0; i < 100; i++) {
    if (await client.getOrUndefined(`/api/v1/namespaces/${namespace}/serviceaccounts/default`)) break;
    await sleep(100);
  }
}

/** Creates with retries: transport errors and webhook/apiserver outages are retried, 409 means it exists. */
export async function createRetrying(client: RawClient, path: string, body: any, timeoutMs = 120_000): Promise<{ obj?: any; attempts: number; existed: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (let attempts = 1; ; attempts++) {
    try {
      return { obj: await client.create(path, body), attempts, existed: false };
    } catch (e) {
      if (isConflict(e) && (e as ApiError).reason === 'AlreadyExists') return { attempts, existed: true };
      if (Date.now() > deadline) throw e;
      await sleep(100 + Math.random() * 200);
    }
  }
}

export interface RunTimes {
  name: string;
  runId?: string;
  uid?: string;
  createStart?: number;
  created?: number;
  unpended?: number;
  /** Local time Tekton was first seen to have started the run (status.startTime set). */
  tektonStarted?: number;
  /** How many times the run was seen to leave PipelineRunPending (more than 1 is a double start). */
  unpends: number;
  /** The last spec.status seen ('' for none). */
  lastStatus?: string;
  done?: number;
}

export interface RunObjects {
  /** (kind/name) → local time first seen */
  seen: Map<string, number>;
  /** (kind/name) currently present */
  live: Set<string>;
  applied?: number;
  ready?: number;
  deleted?: number;
  /** Deployment uids ever seen, and per Secret name the uids ever seen. */
  deploymentUids: Set<string>;
  secretUids: Map<string, Set<string>>;
  /** Secret uid → local time first seen; Deployment first seen. */
  uidSeenAt: Map<string, number>;
  deploymentSeen?: number;
  unpendedBeforeReady?: boolean;
  /** Deployment generation → local time first seen (a started run's sidecar must gain none). */
  deploymentGenerations: Map<number, number>;
  /** Local time a Deployment of the run was deleted. */
  deploymentDeleted?: number;
}

/**
 * Watches (through the repo's own Informer: list, watch, relist-and-diff after a drop) the runs and
 * the owned objects of one namespace and stamps each transition with the local clock when the
 * event arrives. `expected` is the number of objects one run gets (6 for one TLS DockerDaemon).
 */
export class Tracker {
  readonly runs = new Map<string, RunTimes>();
  readonly byRunId = new Map<string, RunObjects>();
  private readonly informers: Informer[] = [];
  private readonly client: RawClient;
  private readonly waiters = new Set<{ cond: () => boolean; resolve: () => void }>();

  constructor(kc: KubeConfig, readonly namespace: string, readonly expected: number) {
    this.client = new RawClient(kc);
    // Reconnect fast after an API server restart, so an object that lives only a few seconds is still seen.
    const backoff = { minBackoffMs: 100, maxBackoffMs: 500 };
    const runs = new Informer(kc, this.client, { name: 'runs', path: collectionPath('tekton.dev/v1', 'PipelineRun', namespace), ...backoff });
    runs.on((_t, run) => { this.onRun(run); this.wake(); });
    this.informers.push(runs);
    for (const k of OWNED_KINDS) {
      const inf = new Informer(kc, this.client, { name: k.kind, path: collectionPath(k.apiVersion, k.kind, namespace), labelSelector: OWNED_SELECTOR, ...backoff });
      inf.on((t, obj) => { this.onObject(k.kind, t, obj); this.wake(); });
      this.informers.push(inf);
    }
  }

  async start(): Promise<void> { await Promise.all(this.informers.map((i) => i.start())); }
  async stop(): Promise<void> { await Promise.all(this.informers.map((i) => i.stop())); this.client.close(); }

  /**
   * Resolves once cond() holds, checked as each watch event is handled: a client that acts on what
   * the tracker saw (the fair baseline) waits for no poll interval.
   */
  until(cond: () => boolean): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.add({ cond, resolve }));
  }

  private wake(): void {
    for (const w of this.waiters) if (w.cond()) { this.waiters.delete(w); w.resolve(); }
  }

  run(name: string): RunTimes {
    let r = this.runs.get(name);
    if (!r) { r = { name, unpends: 0 }; this.runs.set(name, r); }
    return r;
  }

  objects(runId: string): RunObjects {
    let o = this.byRunId.get(runId);
    if (!o) { o = { seen: new Map(), live: new Set(), deploymentUids: new Set(), secretUids: new Map(), uidSeenAt: new Map(), deploymentGenerations: new Map() }; this.byRunId.set(runId, o); }
    return o;
  }

  private onRun(run: KubeObject): void {
    const now = Date.now();
    const r = this.run(run.metadata.name);
    r.runId ??= run.metadata.annotations?.['pipeline-sidecars.dev/run-id'];
    r.uid ??= run.metadata.uid;
    const pending = run.spec?.status === 'PipelineRunPending';
    const status = run.spec?.status ?? '';
    if (r.lastStatus === 'PipelineRunPending' && !pending) r.unpends++;
    r.lastStatus = status;
    if (run.status?.startTime && r.tektonStarted === undefined) r.tektonStarted = now;
    if (!pending && r.unpended === undefined && run.metadata.annotations?.['pipeline-sidecars.dev/started']) {
      r.unpended = now;
      if (r.runId) { const o = this.objects(r.runId); if (o.ready === undefined) o.unpendedBeforeReady = true; }
    }
    const done = isDone(run);
    if (done && r.done === undefined) r.done = now;
  }

  private onObject(kind: string, type: 'add' | 'update' | 'delete', obj: KubeObject): void {
    const now = Date.now();
    const runId = obj.metadata.labels?.[LABELS.runId];
    if (!runId) return;
    const o = this.objects(runId);
    const key = `${kind}/${obj.metadata.name}`;
    if (type === 'delete') {
      if (kind === 'Deployment') o.deploymentDeleted ??= now;
      o.live.delete(key);
      if (o.live.size === 0 && o.applied !== undefined && o.deleted === undefined) o.deleted = now;
      return;
    }
    if (!o.seen.has(key)) o.seen.set(key, now);
    o.live.add(key);
    if (obj.metadata.uid) {
      if (!o.uidSeenAt.has(obj.metadata.uid)) o.uidSeenAt.set(obj.metadata.uid, now);
      if (kind === 'Deployment') {
        o.deploymentUids.add(obj.metadata.uid);
        o.deploymentSeen ??= now;
        const g = obj.metadata.generation;
        if (typeof g === 'number' && !o.deploymentGenerations.has(g)) o.deploymentGenerations.set(g, now);
      }
      if (kind === 'Secret') {
        let s = o.secretUids.get(obj.metadata.name);
        if (!s) { s = new Set(); o.secretUids.set(obj.metadata.name, s); }
        s.add(obj.metadata.uid);
      }
    }
    if (o.applied === undefined && o.seen.size >= this.expected) o.applied = now;
    if (kind === 'Deployment' && o.ready === undefined && deploymentReady(obj)) o.ready = now;
  }
}

/** Calls fn(i) for i in 0..n-1 at `rate` per second (open loop: a slow call does not delay the next). */
export async function paced(n: number, rate: number, fn: (i: number) => Promise<void>): Promise<void> {
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

/**
 * Releases each run's held task at `rate` per second (the same in every phase, so Tekton does the
 * same work), retrying while the task pod is not there yet; a run whose task pod never appears
 * within 60 s is reported in `problems`.
 */
export async function releaseHeldTasks(client: RawClient, ns: string, names: readonly string[], rate: number, problems: string[]): Promise<void> {
  await paced(names.length, rate, async (i) => {
    for (let attempt = 0; ; attempt++) {
      const n = await releaseTasks(ns, names[i], { client }).catch((e) => { problems.push(`finish ${names[i]}: ${(e as Error).message}`); return 1; });
      if (n > 0) return;
      if (attempt >= 240) { problems.push(`finish ${names[i]}: no held task pod after 60 s`); return; }
      await sleep(250);
    }
  });
}

/** Polls cond every 50 ms until it holds (true) or the timeout passes (false, and says what). */
export async function waitFor(what: string, cond: () => boolean, timeoutMs: number, say: (s: string) => void = () => undefined): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) { if (cond()) return true; await sleep(50); }
  say(`timed out waiting for ${what}`);
  return false;
}

/** CPU seconds per process between two snapshots, as a small table (cores: what the machine has). */
export function cpuTable(before: Record<string, number>, after: Record<string, number>, wallS: number): string {
  const machine = '(machine: all processes)';
  const rows = Object.keys(after).filter((k) => k !== machine).map((k) => ({ k, s: after[k] - (before[k] ?? 0) })).sort((a, b) => b.s - a.s);
  const sum = rows.reduce((a, r) => a + r.s, 0);
  const all = (after[machine] ?? 0) - (before[machine] ?? 0);
  const cores = require('node:os').cpus().length;
  const line = (k: string, sec: number) => `  ${k.padEnd(34)} ${sec.toFixed(1).padStart(6)} s  ${(100 * sec / wallS).toFixed(0).padStart(4)}% of a core`;
  return `  (${wallS.toFixed(1)} s wall, ${(cores * wallS).toFixed(1)} core-seconds on ${cores} cores)\n${rows.map((r) => line(r.k, r.s)).join('\n')}\n${line('total (ours)', sum)}\n${line('other processes on the machine', Math.max(0, all - sum))}\n`;
}

export interface Dist { n: number; p50: number; p90: number; p99: number; max: number; mean: number }

export function dist(values: number[]): Dist | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const q = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))];
  return { n: v.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: v[v.length - 1], mean: v.reduce((a, b) => a + b, 0) / v.length };
}

export interface Row {
  figure: string;
  unit: string;
  dist?: Dist;
  value?: number;
  target?: string;
  /** Whether the target is met (undefined: no target). */
  ok?: boolean;
}

function fmt(n: number | undefined, unit: string): string {
  if (n === undefined) return '-';
  if (unit === 'ms') return n < 10 ? n.toFixed(1) : n.toFixed(0);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  return n.toFixed(2);
}

/** One row per figure: p50/p90/p99/max where it is a distribution, the value otherwise; target and met. */
export function table(rows: Row[]): string {
  const head = ['figure', 'unit', 'n', 'p50', 'p90', 'p99', 'max', 'target', 'met'];
  const body = rows.map((r) => [
    r.figure, r.unit, r.dist ? String(r.dist.n) : '',
    r.dist ? fmt(r.dist.p50, r.unit) : fmt(r.value, r.unit),
    r.dist ? fmt(r.dist.p90, r.unit) : '', r.dist ? fmt(r.dist.p99, r.unit) : '', r.dist ? fmt(r.dist.max, r.unit) : '',
    r.target ?? '', r.ok === undefined ? '' : r.ok ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
  return [line(head), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...body.map(line)].join('\n');
}

/** An admin client for a started control plane (which runs the real Tekton). */
export async function connectWithTekton(cp: ControlPlane): Promise<{ kc: KubeConfig; client: RawClient }> {
  const kc = new KubeConfig();
  kc.loadFromFile(cp.state.kubeconfig);
  return { kc, client: new RawClient(kc) };
}

/** One figure measured for the bare client and the operator, with operator / bare client. */
export interface CompareRow {
  figure: string;
  unit: string;
  bare?: number;
  operator?: number;
  ratio?: number;
  target?: string;
  ok?: boolean;
}

/** The bare client and the operator side by side, one figure a row. */
export function compareTable(rows: CompareRow[]): string {
  const head = ['figure', 'unit', 'bare client', 'operator', 'operator / bare', 'target', 'met'];
  const body = rows.map((r) => [
    r.figure, r.unit, fmt(r.bare, r.unit), fmt(r.operator, r.unit), r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}x`,
    r.target ?? '', r.ok === undefined ? '' : r.ok ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
  return [line(head), '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|', ...body.map(line)].join('\n');
}
