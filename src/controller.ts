import type { KubeConfig } from '@kubernetes/client-node';
import { API_VERSION, KIND, LABELS, PipelineSidecarResource } from '../constructs/api/spec';
import { KindRegistry } from '../constructs/kinds';
import { validateSidecarSpec } from '../constructs/synthesize';
import { EventRecorder, REASONS } from './events';
import { Informer, KubeObject, MultiNamespaceInformer, ObjectCache, keyOf } from './k8s/informer';
import { ApiError, RawClient, isNotFound } from './k8s/raw';
import { collectionPath, objectPath } from './k8s/resources';
import type { Logger } from './log';
import type { OperatorMetrics } from './metrics';
import { WorkQueue } from './queue';
import { timerDelay } from './timers';
import { Caches, isDone, OWNED_KINDS, OWNED_SELECTOR, Reconciler, runIdentity } from './reconcile';
import { hasCrashed, healthKeyOf, SidecarHealth } from './sidecar-health';

export interface ControllerOptions {
  readonly kubeConfig: KubeConfig;
  readonly client: RawClient;
  readonly kinds: KindRegistry;
  readonly log: Logger;
  readonly metrics: OperatorMetrics;
  readonly events: EventRecorder;
  readonly concurrency?: number;
  /** How often to look for objects whose run is gone or done (default 60 s). */
  readonly sweepIntervalMs?: number;
  readonly allowPrivilegedEverywhere?: boolean;
  readonly startupTimeoutDefaultMs?: number;
  /** Serve only these namespaces (default: all). */
  readonly watchNamespaces?: string[];
  /** A watch that delivers nothing (not even a bookmark) for this long is re-opened (default 150 s). */
  readonly watchIdleTimeoutMs?: number;
}

const RUN = 'run:';
const SIDECAR = 'psc:';
const HEALTH = 'crash:';
/** Delay that batches PipelineSidecar status writes caused by its Deployments changing. */
const STATUS_COALESCE_MS = 2000;

/**
 * Informers feeding one work queue. Keys are `run:<ns>/<name>` (a PipelineRun reconcile) and
 * `psc:<ns>/<name>` (a PipelineSidecar status update). Started when this replica becomes leader,
 * stopped when it stops being one.
 */
export class Controller {
  readonly caches: Caches;
  readonly reconciler: Reconciler;
  private readonly health: SidecarHealth;
  private readonly queue: WorkQueue;
  private sweepTimer?: NodeJS.Timeout;
  private running = false;
  private reconciling = false;
  /** Reconciles done (tests and benchmarks read it). */
  reconciles = 0;

  constructor(private readonly o: ControllerOptions) {
    const served = o.watchNamespaces?.length ? [...new Set(o.watchNamespaces)] : undefined;
    // Serving a list of namespaces: watch namespaced kinds in each of them (the install's RBAC grants
    // Secrets and writes only there), never cluster-wide.
    const inf = (name: string, apiVersion: string, kind: string, labelSelector?: string): ObjectCache => served
      ? new MultiNamespaceInformer(o.kubeConfig, o.client, served, (ns) => collectionPath(apiVersion, kind, ns), { name, labelSelector, log: o.log, watchIdleTimeoutMs: o.watchIdleTimeoutMs })
      : new Informer(o.kubeConfig, o.client, { name, path: collectionPath(apiVersion, kind), labelSelector, log: o.log, watchIdleTimeoutMs: o.watchIdleTimeoutMs });
    const owned = new Map<string, ObjectCache>();
    for (const k of OWNED_KINDS) owned.set(`${k.apiVersion}/${k.kind}`, inf(k.kind, k.apiVersion, k.kind, OWNED_SELECTOR));
    this.caches = {
      runs: inf('PipelineRun', 'tekton.dev/v1', 'PipelineRun'),
      sidecars: inf('PipelineSidecar', API_VERSION, KIND),
      pipelines: inf('Pipeline', 'tekton.dev/v1', 'Pipeline'),
      namespaces: new Informer(o.kubeConfig, o.client, {
        name: 'Namespace', path: collectionPath('v1', 'Namespace'), log: o.log,
        filter: served ? (obj: KubeObject) => served.includes(obj.metadata.name) : undefined,
      }),
      pods: inf('Pod', 'v1', 'Pod', OWNED_SELECTOR),
      owned,
    };
    this.reconciler = new Reconciler({
      client: o.client, caches: this.caches, kinds: o.kinds, events: o.events, log: o.log, metrics: o.metrics,
      allowPrivilegedEverywhere: o.allowPrivilegedEverywhere, startupTimeoutDefaultMs: o.startupTimeoutDefaultMs,
    });
    this.health = new SidecarHealth({
      client: o.client, runs: this.caches.runs, pods: this.caches.pods, deployments: owned.get('apps/v1/Deployment')!, events: o.events, log: o.log,
    });
    // Reconciles wait on the API server, not the CPU: 4 workers queued runs for seconds at 10 runs/s
    // on a loaded API server (docs/benchmarks.md), so the default is 16.
    this.queue = new WorkQueue({ concurrency: o.concurrency ?? 16, onDepth: (d) => o.metrics.queueDepth.set(d) });
    this.wire();
  }

  private enqueueRunsOf(namespace: string | undefined): void {
    for (const r of this.caches.runs.list(namespace)) if (!isDone(r)) this.queue.add(RUN + keyOf(r));
  }

  private wire(): void {
    const c = this.caches;
    c.runs.on((_t, run) => this.queue.add(RUN + keyOf(run)));
    // #10.6: a sidecar container that died is reported on its run (sidecar-health.ts).
    c.pods.on((t, pod) => {
      const key = t !== 'delete' && hasCrashed(pod) ? healthKeyOf(pod) : undefined;
      if (key) this.queue.add(HEALTH + key);
    });
    c.sidecars.on((t, cr, old) => {
      this.queue.add(SIDECAR + keyOf(cr));
      // A new, changed or deleted PipelineSidecar may change what pending runs of its namespace get.
      // Not its status: the operator writes activeRuns there on every sidecar Deployment change, and
      // re-queuing every run of the namespace each time made reconciles grow with runs² (docs/benchmarks.md).
      if (t === 'update' && old && old.metadata.generation === cr.metadata.generation) return;
      this.enqueueRunsOf(cr.metadata.namespace);
    });
    c.namespaces.on((t, ns, old) => {
      if (t === 'update' && ns.metadata.labels?.[LABELS.allowPrivileged] !== old?.metadata.labels?.[LABELS.allowPrivileged]) this.enqueueRunsOf(ns.metadata.name);
    });
    for (const [kind, informer] of c.owned) {
      informer.on((_t, obj) => {
        const owner = (obj.metadata as any).ownerReferences?.find((r: any) => r.kind === 'PipelineRun');
        if (owner && obj.metadata.namespace) this.queue.add(`${RUN}${obj.metadata.namespace}/${owner.name}`);
        if (kind === 'apps/v1/Deployment') {
          const sc = obj.metadata.labels?.[LABELS.sidecar];
          // activeRuns in the PipelineSidecar's status: at most one write per 2 s per PipelineSidecar
          // (addAfter coalesces), not one per Deployment change: that was 7 of 16 requests per run.
          if (sc && obj.metadata.namespace) this.queue.addAfter(`${SIDECAR}${obj.metadata.namespace}/${sc}`, STATUS_COALESCE_MS);
          this.o.metrics.activeSidecars.set(informer.list().length);
        }
      });
    }
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const all = [this.caches.runs, this.caches.sidecars, this.caches.pipelines, this.caches.namespaces, this.caches.pods, ...this.caches.owned.values()];
    try {
      await Promise.all(all.map((i) => i.start()));
    } catch (e) {
      if (!this.running) return; // stopped while the caches synced (leadership lost): not a failure
      throw e;
    }
    // Stopped while the caches synced: never start reconciling.
    if (!this.running) return;
    this.reconciling = true;
    this.queue.start((key) => this.handle(key), (key, e, retryIn) => {
      this.o.metrics.errors.inc({ reason: errorReason(e) });
      this.o.log.error('reconcile failed; retrying', { key, retryInMs: retryIn, error: e });
      void this.reportFailure(key, e, retryIn);
    });
    const every = this.o.sweepIntervalMs ?? 60_000;
    const tick = () => {
      this.sweep().catch((e) => this.o.log.error('sweep failed', { error: e })).finally(() => {
        if (this.running) { this.sweepTimer = setTimeout(tick, timerDelay(every)); this.sweepTimer.unref?.(); }
      });
    };
    // The first sweep runs right after the caches synced: it catches what changed while no leader ran.
    this.sweepTimer = setTimeout(tick, 0);
    this.sweepTimer.unref?.();
    this.o.log.info('controller started', { caches: all.length });
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.reconciling = false;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    await this.queue.stop();
    const all = [this.caches.runs, this.caches.sidecars, this.caches.pipelines, this.caches.namespaces, this.caches.pods, ...this.caches.owned.values()];
    await Promise.all(all.map((i) => i.stop()));
  }

  /** Caches synced and reconciling (false while the caches still sync). */
  get synced(): boolean { return this.reconciling; }

  /**
   * A reconcile that fails (quota, RBAC, admission policy, API errors) shows on the run itself, not
   * only in the operator's logs. One Event per distinct error: the message is part of its name.
   */
  private async reportFailure(key: string, e: unknown, retryInMs: number): Promise<void> {
    if (!key.startsWith(RUN)) return;
    const [ns, name] = key.slice(RUN.length).split('/');
    const run = this.caches.runs.get(ns, name);
    if (!run) return;
    const message = e instanceof Error ? e.message : String(e);
    await this.o.events.emit(run, 'Warning', REASONS.reconcileFailed,
      `could not provide the sidecars yet, retrying (next in ${Math.max(1, Math.round(retryInMs / 1000))} s): ${message}`, message);
  }

  private async handle(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const end = this.o.metrics.reconcileDuration.startTimer();
    try {
      const r = key.startsWith(RUN) ? await this.reconciler.reconcile(key.slice(RUN.length))
        : key.startsWith(HEALTH) ? await this.health.check(key.slice(HEALTH.length))
          : await this.sidecarStatus(key.slice(SIDECAR.length));
      this.reconciles++;
      end({ result: r?.requeueAfterMs !== undefined ? 'requeue' : 'ok' });
      return r;
    } catch (e) {
      end({ result: 'error' });
      throw e;
    }
  }

  /**
   * Deletes objects whose run is gone or done: covers a missed event, a restart while a run was
   * deleted or finished, and GC not running. Candidate runs are confirmed on the server first.
   */
  async sweep(): Promise<number> {
    // Group by run id, not by owner: objects orphaned on purpose (delete --cascade=orphan) have lost
    // their ownerReferences, and the run-name label may be truncated; the run id always identifies the run.
    const groups = new Map<string, { ns: string; runId: string }>();
    for (const o of this.reconciler.ownedObjects(undefined, () => true)) {
      const runId = o.metadata.labels?.[LABELS.runId];
      if (runId && o.metadata.namespace) groups.set(`${o.metadata.namespace}/${runId}`, { ns: o.metadata.namespace, runId });
    }
    const liveRuns = new Map<string, Array<Record<string, any>>>();
    let deleted = 0;
    for (const g of groups.values()) {
      const cached = this.caches.runs.list(g.ns).find((r) => runIdentity(r).runId === g.runId);
      if (cached && !isDone(cached)) continue;
      // Confirm on the server: the cache may not have seen a run created a moment ago.
      if (!liveRuns.has(g.ns)) liveRuns.set(g.ns, (await this.o.client.get(collectionPath('tekton.dev/v1', 'PipelineRun', g.ns))).items ?? []);
      const live = liveRuns.get(g.ns)!.find((r) => runIdentity(r).runId === g.runId);
      if (live && !isDone(live)) continue;
      await this.reconciler.deleteByRunId(g.ns, g.runId);
      this.o.log.info('sweep deleted objects of a finished or missing run', { namespace: g.ns, runId: g.runId, run: live?.metadata?.name ?? '(gone)' });
      deleted++;
    }
    return deleted;
  }

  /** status of one PipelineSidecar: Valid / Ready conditions, activeRuns, observedGeneration. */
  private async sidecarStatus(key: string): Promise<void> {
    const [ns, name] = key.split('/');
    const cr = this.caches.sidecars.get(ns, name) as unknown as PipelineSidecarResource | undefined;
    if (!cr) return;
    let problems: string[];
    try {
      problems = validateSidecarSpec(name, cr.spec, this.o.kinds).map((p) => p.message);
    } catch (e) {
      problems = [`cannot be validated: ${(e as Error).message}`];
    }
    const deployments = this.caches.owned.get('apps/v1/Deployment')!.list(ns).filter((d) => d.metadata.labels?.[LABELS.sidecar] === name);
    const activeRuns = new Set(deployments.map((d) => d.metadata.labels?.[LABELS.runId])).size;
    const gen = cr.metadata.generation;
    const now = new Date().toISOString();
    const prev = new Map((cr.status?.conditions ?? []).map((c) => [c.type, c]));
    const cond = (type: string, ok: boolean, reason: string, message: string) => {
      const p = prev.get(type);
      const status = ok ? 'True' : 'False';
      return { type, status, reason, message, observedGeneration: gen, lastTransitionTime: p && p.status === status && p.lastTransitionTime ? p.lastTransitionTime : now };
    };
    const valid = problems.length === 0;
    const conditions = [
      cond('Valid', valid, valid ? 'SpecValid' : 'SpecInvalid', valid ? 'the spec is valid' : problems.join('; ')),
      cond('Ready', valid, valid ? 'Ready' : 'SpecInvalid', valid ? 'runs that ask for this sidecar get it' : 'runs that ask for this sidecar are rejected until the spec is fixed (see Valid)'),
    ];
    const desired = { observedGeneration: gen, activeRuns, conditions };
    const strip = (s: any) => JSON.stringify({ ...s, conditions: (s?.conditions ?? []).map(({ lastTransitionTime: _l, ...rest }: any) => rest) });
    if (strip(cr.status ?? {}) === strip(desired)) return;
    try {
      await this.o.client.mergePatch(`${objectPath(cr as any)}/status`, { status: desired });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

function errorReason(e: unknown): string {
  if (e instanceof ApiError) return e.statusCode === 0 ? 'api_unreachable' : `api_${e.statusCode}`;
  if (e instanceof Error && e.name === 'SidecarSpecError') return 'spec';
  return 'internal';
}

export type { KubeObject };
