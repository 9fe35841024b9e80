import type { KubeAccess as KubeConfig } from './k8s/kube-access';
import { LABELS } from '../constructs/api/spec';
import { KindRegistry } from '../constructs/kinds';
import { EventRecorder, REASONS } from './events';
import { RUN_ID_INDEX, RUN_INDEX, SIDECAR_INDEX, runIdIndex, runIndex, sidecarIndex, slimPipelineRun, slimPod } from './cache-shapes';
import { UnionCache } from './k8s/cache-union';
import { SharedCaches, sharedCaches } from './shared-caches';
import { Informer, InformerOptions } from './k8s/informer';
import { NamespacedInformers } from './k8s/namespaced-informers';
import { InformerHandler, keyOf, KubeObject, ObjectCache } from './k8s/object-store';
import { RawClient } from './k8s/raw';
import { collectionPath } from './k8s/resources';
import type { Logger } from './log';
import { errorReason, OperatorMetrics } from './metrics';
import { deploymentReady } from './readiness';
import { WorkQueue } from './queue';
import { timerDelay } from './timers';
import { OWNED_KINDS, OWNED_SELECTOR } from './cleanup';
import { isDone, PENDING } from './pipelinerun';
import { Caches, Reconciler } from './reconcile';
import { sweepFinishedRuns } from './sweep';
import { hasCrashed, healthKeyOf, SidecarHealth } from './sidecar-health';
import { SidecarStatusWriter } from './sidecar-status';

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
  readonly privilegedNamespaces?: string[];
  readonly startupTimeoutDefaultMs?: number;
  /** Serve only these namespaces (default: all). */
  readonly watchNamespaces?: string[];
  /** A watch that delivers nothing (not even a bookmark) for this long is re-opened (default 150 s). */
  readonly watchIdleTimeoutMs?: number;
  /** PipelineSidecar and Pipeline caches shared with the webhook (started and stopped by their owner); built here when absent. */
  readonly shared?: SharedCaches;
}

const RUN = 'run:';
const SIDECAR = 'psc:';
const HEALTH = 'crash:';

/** One step of a pass over a queue key: it began, or it ended (done, or failed and will be retried). */
export type PassListener = (key: string, phase: 'begin' | 'done' | 'failed') => void;

/**
 * Informers feeding one work queue. Keys are `run:<ns>/<name>` (a PipelineRun reconcile),
 * `crash:<ns>/<run-id>/<sidecar>` (a crashed sidecar container to report) and `psc:<ns>/<name>` (a
 * PipelineSidecar status update). Started when this replica becomes leader, stopped when it stops.
 */
export class Controller {
  readonly caches: Caches;
  readonly reconciler: Reconciler;
  private readonly health: SidecarHealth;
  private readonly status: SidecarStatusWriter;
  private readonly passListeners = new Set<PassListener>();
  private readonly queue: WorkQueue;
  private readonly fallbackRuns: NamespacedInformers;
  private readonly ownShared: boolean;
  private sweepTimer?: NodeJS.Timeout;
  private running = false;
  private reconciling = false;
  /** Reconciles done (tests and benchmarks read it). */
  reconciles = 0;
  /** How long the caches took to sync at start (ms; benchmarks read it). */
  syncMs?: number;

  constructor(private readonly o: ControllerOptions) {
    const served = o.watchNamespaces?.length ? [...new Set(o.watchNamespaces)] : undefined;
    // Serving a list of namespaces: watch namespaced kinds in each of them (the install's RBAC grants
    // Secrets and writes only there), never cluster-wide.
    const inf = (name: string, apiVersion: string, kind: string, extra: Partial<InformerOptions> = {}): ObjectCache => served
      ? NamespacedInformers.fixed(o.kubeConfig, o.client, served, (ns) => collectionPath(apiVersion, kind, ns), { name, log: o.log, watchIdleTimeoutMs: o.watchIdleTimeoutMs, ...extra })
      : new Informer(o.kubeConfig, o.client, { name, path: collectionPath(apiVersion, kind), log: o.log, watchIdleTimeoutMs: o.watchIdleTimeoutMs, ...extra });
    const owned = new Map<string, ObjectCache>();
    for (const k of OWNED_KINDS) {
      owned.set(`${k.apiVersion}/${k.kind}`, inf(k.kind, k.apiVersion, k.kind, {
        labelSelector: OWNED_SELECTOR, indexers: { [RUN_INDEX]: runIndex, ...(k.kind === 'Deployment' ? { [SIDECAR_INDEX]: sidecarIndex } : {}) },
      }));
    }
    const shared = o.shared ?? sharedCaches(o);
    this.ownShared = !o.shared;
    // Runs, by two narrow paths (docs/operator.md, "Which runs the operator caches"): every run the
    // webhook admitted carries the admitted label, cluster-wide; a run the webhook did not see
    // (fallback mode) can only get sidecars in a namespace that holds a PipelineSidecar, so those
    // namespaces (and only those) are watched for runs without the label. A run never moves between
    // the two: only the webhook sets the label, at CREATE.
    const runOpts = { transform: slimPipelineRun, indexers: { [RUN_ID_INDEX]: runIdIndex }, log: o.log, watchIdleTimeoutMs: o.watchIdleTimeoutMs };
    const runPath = (ns?: string) => collectionPath('tekton.dev/v1', 'PipelineRun', ns);
    this.fallbackRuns = new NamespacedInformers(o.kubeConfig, o.client, runPath, { ...runOpts, name: 'PipelineRun(fallback)', labelSelector: `!${LABELS.admitted}` }, served);
    this.caches = {
      runs: new UnionCache([inf('PipelineRun', 'tekton.dev/v1', 'PipelineRun', { ...runOpts, labelSelector: LABELS.admitted }), this.fallbackRuns]),
      sidecars: shared.sidecars,
      pipelines: shared.pipelines,
      namespaces: new Informer(o.kubeConfig, o.client, {
        name: 'Namespace', path: collectionPath('v1', 'Namespace'), log: o.log,
        filter: served ? (obj: KubeObject) => served.includes(obj.metadata.name) : undefined,
      }),
      pods: inf('Pod', 'v1', 'Pod', { labelSelector: OWNED_SELECTOR, transform: slimPod, indexers: { [RUN_INDEX]: runIndex } }),
      owned,
    };
    this.reconciler = new Reconciler({
      client: o.client, caches: this.caches, kinds: o.kinds, events: o.events, log: o.log, metrics: o.metrics,
      allowPrivilegedEverywhere: o.allowPrivilegedEverywhere, privilegedNamespaces: o.privilegedNamespaces, startupTimeoutDefaultMs: o.startupTimeoutDefaultMs,
    });
    this.health = new SidecarHealth({
      client: o.client, runs: this.caches.runs, pods: this.caches.pods, deployments: owned.get('apps/v1/Deployment')!, events: o.events, log: o.log,
    });
    this.status = new SidecarStatusWriter({
      client: o.client, kinds: o.kinds, sidecars: this.caches.sidecars, deployments: owned.get('apps/v1/Deployment')!,
      // The same answer the reconciler gives a run of the namespace.
      privilegedAllowed: (ns) => !!o.allowPrivilegedEverywhere || !!o.privilegedNamespaces?.includes(ns) ||
        this.caches.namespaces.get(undefined, ns)?.metadata.labels?.[LABELS.allowPrivileged] === 'true',
    });
    // Reconciles wait on the API server, not the CPU: 4 workers queued runs for seconds at 10 runs/s
    // on a loaded API server (docs/benchmarks.md), so the default is 16.
    this.queue = new WorkQueue({ concurrency: o.concurrency ?? 16, onDepth: (d) => o.metrics.queueDepth.set(d) });
    this.wire();
  }

  /** The caches this controller starts and stops (shared ones live as long as the operator). */
  private get startable(): ObjectCache[] {
    const c = this.caches;
    return [c.runs, ...(this.ownShared ? [c.sidecars, c.pipelines] : []), c.namespaces, c.pods, ...c.owned.values()];
  }

  private enqueueRunsOf(namespace: string | undefined): void {
    for (const r of this.caches.runs.list(namespace)) if (!isDone(r)) this.queue.add(RUN + keyOf(r));
  }

  /** Handlers this controller registered on the shared caches, removed when it stops (leadership changes). */
  private readonly sharedHandlers: Array<[ObjectCache, InformerHandler]> = [];

  private wire(): void {
    const c = this.caches;
    c.runs.on((_t, run) => { this.queue.add(RUN + keyOf(run)); this.o.metrics.cachedRuns.set(c.runs.size); });
    // A sidecar container that died is reported on its run (sidecar-health.ts).
    c.pods.on((t, pod) => {
      const key = t !== 'delete' && hasCrashed(pod) ? healthKeyOf(pod) : undefined;
      if (key) this.queue.add(HEALTH + key);
    });
    const onSidecar: InformerHandler = (t, cr, old) => {
      if (!this.running) return;
      this.queue.add(SIDECAR + keyOf(cr));
      if (t !== 'delete' && cr.metadata.namespace) void this.fallbackRuns.ensure(cr.metadata.namespace);
      // A new, changed or deleted PipelineSidecar may change what pending runs of its namespace get.
      // Not its status: the operator writes that itself, and when it was written on every sidecar
      // Deployment change, re-queuing every run of the namespace each time made reconciles grow with
      // runs² (docs/benchmarks.md).
      if (t === 'update' && old && old.metadata.generation === cr.metadata.generation) return;
      this.enqueueRunsOf(cr.metadata.namespace);
    };
    c.sidecars.on(onSidecar);
    this.sharedHandlers.push([c.sidecars, onSidecar]);
    c.namespaces.on((t, ns, old) => {
      if (t !== 'update' || ns.metadata.labels?.[LABELS.allowPrivileged] === old?.metadata.labels?.[LABELS.allowPrivileged]) return;
      this.enqueueRunsOf(ns.metadata.name);
      // Whether the namespace's runs get its PipelineSidecars is their Ready condition.
      for (const cr of c.sidecars.list(ns.metadata.name)) this.queue.add(SIDECAR + keyOf(cr));
    });
    for (const [kind, informer] of c.owned) {
      informer.on((t, obj, old) => {
        const owner = (obj.metadata as any).ownerReferences?.find((r: any) => r.kind === 'PipelineRun');
        const ns = obj.metadata.namespace;
        if (t === 'delete') this.reconciler.objectDeleted(obj);
        // Objects of a fallback run keep its namespace's runs watched even if its PipelineSidecars go.
        if (ns && t === 'add') void this.fallbackRuns.ensure(ns);
        if (kind === 'apps/v1/Deployment') {
          // A sidecar that just became Ready lets a pending run start: a cheap reconcile (one patch)
          // that must not wait behind runs still being provisioned (their reconciles take round trips).
          const nowReady = t !== 'delete' && deploymentReady(obj) && !deploymentReady(old);
          const run = owner && ns ? this.caches.runs.get(ns, owner.name) : undefined;
          if (owner && ns) this.queue.add(`${RUN}${ns}/${owner.name}`, nowReady && run?.spec?.status === PENDING ? { priority: true } : undefined);
          // activeRuns in the PipelineSidecar's status is refreshed by the sweep (once a minute), not
          // on Deployment changes: one write per Deployment change was 7 of 16 requests per run, one
          // per 2 s still 0.4 of a run's requests at 5 runs/s.
          this.o.metrics.activeSidecars.set(informer.size);
        } else if (owner && ns) this.queue.add(`${RUN}${ns}/${owner.name}`);
      });
    }
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const began = Date.now();
    try {
      // The shared caches first: the namespaces holding PipelineSidecars are the ones whose
      // un-admitted (fallback) runs are watched.
      await Promise.all([this.caches.sidecars.start(), this.caches.pipelines.start()]);
      for (const cr of this.caches.sidecars.list()) {
        if (cr.metadata.namespace) void this.fallbackRuns.ensure(cr.metadata.namespace);
        // Shared caches synced before this controller's handlers existed: queue what they hold.
        this.queue.add(SIDECAR + keyOf(cr));
      }
      await Promise.all(this.startable.map((i) => i.start()));
      const ownedNs = new Set<string>();
      for (const inf of this.caches.owned.values()) for (const o of inf.list()) if (o.metadata.namespace) ownedNs.add(o.metadata.namespace);
      await Promise.all([...ownedNs].map((ns) => this.fallbackRuns.ensure(ns)));
    } catch (e) {
      if (!this.running) return; // stopped while the caches synced (leadership lost): not a failure
      throw e;
    }
    // Stopped while the caches synced: never start reconciling.
    if (!this.running) return;
    this.syncMs = Date.now() - began;
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
    this.o.log.info('controller started', { caches: this.startable.length, syncMs: this.syncMs, runsCached: this.caches.runs.size, fallbackNamespaces: this.fallbackRuns.namespaces.length });
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.reconciling = false;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    for (const [cache, h] of this.sharedHandlers.splice(0)) cache.off(h);
    await this.queue.stop();
    await Promise.all(this.startable.map((i) => i.stop()));
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

  /**
   * Observes each pass over a queue key as it begins and ends, until the returned function is called:
   * how a test knows the controller looked at an object since it changed, so that a check that nothing
   * happened means something. Listeners must not throw.
   */
  onPass(listener: PassListener): () => void {
    this.passListeners.add(listener);
    return () => this.passListeners.delete(listener);
  }

  private async handle(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const end = this.o.metrics.reconcileDuration.startTimer();
    const tell = (phase: 'begin' | 'done' | 'failed') => { for (const l of this.passListeners) l(key, phase); };
    tell('begin');
    try {
      const r = key.startsWith(RUN) ? await this.reconciler.reconcile(key.slice(RUN.length))
        : key.startsWith(HEALTH) ? await this.health.check(key.slice(HEALTH.length))
          : await this.status.write(key.slice(SIDECAR.length));
      this.reconciles++;
      end({ result: r?.requeueAfterMs !== undefined ? 'requeue' : 'ok' });
      tell('done');
      return r;
    } catch (e) {
      end({ result: 'error' });
      tell('failed');
      throw e;
    }
  }

  /** The sweep (sweep.ts), then each PipelineSidecar's status (activeRuns), written only when it changed. */
  async sweep(): Promise<number> {
    const deleted = await sweepFinishedRuns({
      client: this.o.client, runs: this.caches.runs, owned: () => this.reconciler.ownedObjects(undefined, () => true),
      deleteByRunId: (ns, runId) => this.reconciler.deleteByRunId(ns, runId), log: this.o.log,
    });
    for (const cr of this.caches.sidecars.list()) this.queue.add(SIDECAR + keyOf(cr));
    return deleted;
  }
}

