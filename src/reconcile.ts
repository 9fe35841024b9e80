import { ANNOTATIONS, LABELS, PipelineSidecarSpec } from '../constructs/api/spec';
import { SidecarSpecError } from '../constructs/errors';
import { KindRegistry } from '../constructs/kinds';
import type { RunCleaner } from './cleanup';
import { RunCleaner as Cleaner } from './cleanup';
import { parseDuration } from './duration';
import { EventRecorder, REASONS } from './events';
import { GateActions, ReconcileResult } from './gate-actions';
import { KubeObject, ObjectCache } from './k8s/object-store';
import { RawClient } from './k8s/raw';
import type { Logger } from './log';
import { MaterialStore, RunSidecar } from './material';
import type { OperatorMetrics } from './metrics';
import { MissingSidecars } from './missing-sidecars';
import { PENDING, PipelineRun, hasStarted, lifecycle, releasableByUs, runIdentity } from './pipelinerun';
import { SidecarApplier, resourceVersionNewer } from './sidecar-apply';
import { Refusal, SidecarResolver } from './sidecar-resolution';

export interface Caches {
  readonly runs: ObjectCache;
  readonly sidecars: ObjectCache;
  readonly pipelines: ObjectCache;
  readonly namespaces: ObjectCache;
  readonly pods: ObjectCache;
  /** One cache per OWNED_KINDS entry, keyed `apiVersion/kind`. */
  readonly owned: ReadonlyMap<string, ObjectCache>;
}

export interface ReconcilerOptions {
  readonly client: RawClient;
  readonly caches: Caches;
  readonly kinds: KindRegistry;
  readonly events: EventRecorder;
  readonly log: Logger;
  readonly metrics?: OperatorMetrics;
  /** Privileged kinds anywhere, not only in labelled namespaces. */
  readonly allowPrivilegedEverywhere?: boolean;
  /** Namespaces where privileged kinds may run besides labelled ones (the install bundle names them). */
  readonly privilegedNamespaces?: readonly string[];
  /** startupTimeout when a PipelineSidecar sets none (default 5 min). */
  readonly startupTimeoutDefaultMs?: number;
  /** Clock (tests). */
  readonly now?: () => number;
}

export type { ReconcileResult };

/**
 * The reconcile of one PipelineRun, level-triggered and idempotent, as a short sequence of steps,
 * each in its own file: the run's lifecycle (pipelinerun.ts); which sidecars it gets
 * (sidecar-resolution.ts); their material (material.ts); synthesis and apply (sidecar-apply.ts);
 * the gate and what it does to the run (gate-actions.ts, deciding with gate.ts); clean-up
 * (cleanup.ts, shared with the sweep). Everything it needs is re-read from the caches and the
 * cluster; nothing it decides lives only in memory.
 */
export class Reconciler {
  private readonly now: () => number;
  readonly cleaner: RunCleaner;
  private readonly resolver: SidecarResolver;
  private readonly material: MaterialStore;
  private readonly applier: SidecarApplier;
  private readonly actions: GateActions;
  /** `ns/name` → the run as our last spec.status patch returned it, until the cache catches up (freshest()). */
  private readonly patchedRuns = new Map<string, KubeObject>();
  /** `ns/name` → uid of runs with something in memory, so a run that is gone is forgotten too. */
  private readonly uids = new Map<string, string>();

  constructor(private readonly o: ReconcilerOptions) {
    this.now = o.now ?? Date.now;
    this.cleaner = new Cleaner(o.client, o.caches.owned, o.events, o.log);
    this.resolver = new SidecarResolver({ client: o.client, sidecars: o.caches.sidecars, pipelines: o.caches.pipelines, kinds: o.kinds });
    this.material = new MaterialStore(o.client, o.caches.owned.get('v1/Secret'), o.kinds);
    this.applier = new SidecarApplier(o.client, o.caches.owned, o.kinds, o.events);
    const defaultTimeoutMs = o.startupTimeoutDefaultMs ?? 300_000;
    this.actions = new GateActions({
      client: o.client, pods: o.caches.pods, deployments: o.caches.owned.get('apps/v1/Deployment')!, events: o.events, cleaner: this.cleaner,
      metrics: o.metrics, now: this.now, defaultTimeoutMs,
      timeoutOf: (spec: PipelineSidecarSpec) => parseDuration(spec.lifecycle?.startupTimeout) ?? defaultTimeoutMs,
      patched: (run, stored) => this.patchedRuns.set(`${run.metadata.namespace}/${run.metadata.name}`, stored),
      forget: (run) => this.forget(run),
    });
  }

  /** Per-run entries held in memory (material minted but not cached yet, synthesis memo). */
  get memoryEntries(): number { return this.material.size + this.applier.size + this.uids.size + this.actions.size + this.patchedRuns.size; }

  /** Owned objects in `namespace` matching `pred`, from the caches (the sweep uses it). */
  ownedObjects(namespace: string | undefined, pred: (o: KubeObject) => boolean): KubeObject[] {
    return this.cleaner.objects(namespace, pred);
  }

  /** An owned object was seen deleted: forget what our own write of it returned (sidecar-apply.ts). */
  objectDeleted(obj: KubeObject): void { this.applier.objectDeleted(obj); }

  /** Deletes every object of one run id (the sweep, for runs that are gone or done). */
  deleteByRunId(namespace: string, runId: string): Promise<void> {
    return this.cleaner.deleteRun(namespace, { runId });
  }

  /** The sidecar names a run gets: what the webhook recorded, or (fallback mode) a fresh selection. */
  requestedSidecars(run: PipelineRun): { names: string[]; unknown: string[] } {
    return this.resolver.requested(run);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const run = this.freshest(key, this.o.caches.runs.get(namespace, name)) as unknown as PipelineRun | undefined;
    if (!run) {
      const uid = this.uids.get(key);
      if (uid) this.forget({ metadata: { name, namespace, uid } });
      const stillThere = await this.cleaner.runGone(namespace, name);
      return stillThere ? { requeueAfterMs: 1000 } : {};
    }
    const ident = runIdentity(run);
    const life = lifecycle(run);
    if (life.kind === 'remove') return this.remove(run, life.why);

    const { names, unknown } = this.requestedSidecars(run);
    if (names.length === 0 && unknown.length === 0) return this.remove(run, 'the run asks for no sidecars');

    this.uids.set(key, run.metadata.uid);
    const pending = run.spec?.status === PENDING;
    // Once a run is out of pending its tasks may run: what it got is frozen, whoever released it.
    // (A run admitted without the gate gets its first objects like any other.)
    const existing = this.cleaner.ofRun(run);
    const frozen = (!pending || hasStarted(run)) && existing.length > 0;
    const log = this.o.log.child({ run: key, runId: ident.runId });

    if (!pending && !hasStarted(run) && run.spec?.status === undefined && ident.naming === 'runName' && run.metadata.annotations?.[ANNOTATIONS.started] === undefined) {
      await this.o.events.emit(run, 'Warning', REASONS.notGated,
        `this run asks for sidecars (${names.join(', ')}) but was admitted without the pipeline-sidecars webhook (was it down?) and is not pending, ` +
        'so its tasks may start before the sidecars are ready; they are being created now. Set spec.status: PipelineRunPending at creation to be safe.');
    }

    let sidecars: RunSidecar[];
    try {
      sidecars = await this.resolver.resolve(run, names, unknown, frozen ? existing : []);
    } catch (e) {
      if (e instanceof MissingSidecars) return this.actions.waitForSidecars(run, frozen, e, log);
      if (e instanceof Refusal || e instanceof SidecarSpecError) return this.actions.refuse(run, frozen, e instanceof Refusal ? e.reason : REASONS.refused, e.message, log);
      throw e;
    }

    const m = await this.material.resolve(ident, sidecars, frozen);
    if (m.restart) return { requeueAfterMs: 0 };
    for (const l of m.lost) {
      await this.o.events.emit(run, 'Warning', REASONS.materialLost,
        `Secret ${l.secret} of sidecar "${l.sidecar}" was deleted while the run was using it and cannot be restored (${l.why}); ` +
        'it is not re-minted, because the sidecar and its clients would then hold two different CAs. Pods already running keep their mounted copy; re-run the pipeline if tasks fail to mount it.', l.secret);
    }

    let manifests: Array<Record<string, any>>;
    try {
      manifests = this.applier.manifests(ident, sidecars, m.material, this.privilegedAllowed(namespace));
    } catch (e) {
      if (e instanceof SidecarSpecError) return this.actions.refuse(run, frozen, REASONS.refused, e.message, log);
      throw e;
    }
    if (!frozen) {
      const refused = await this.resolver.unconsentedInputs(namespace, manifests);
      if (refused) return this.actions.refuse(run, frozen, REASONS.refused, refused, log);
    }
    try {
      const out = await this.applier.apply(run, manifests, { frozen, skip: new Set(m.lost.map((l) => l.secret)), log });
      if (out.lostRace) return { requeueAfterMs: 0 };
      if (out.written > 0 && !frozen) {
        log.info('applied sidecar objects', { written: out.written, total: manifests.length });
        // A run we gate hears about its objects once: in SidecarsReady when they come up quickly, or
        // in SidecarsApplied once they have been waited for a while (the gate). One Event per run, not
        // two, on the common path: Events are a third of the writes a run costs.
        if (!(pending && releasableByUs(run))) {
          await this.o.events.emit(run, 'Normal', REASONS.sidecarsApplied, `created ${manifests.map((x) => `${x.kind} ${x.metadata.name}`).join(', ')}`, ident.runId);
        }
      }
    } catch (e) {
      return this.actions.applyFailed(run, ident, sidecars, pending, e, log);
    }
    return this.actions.gate(run, ident, sidecars, pending, log);
  }

  private privilegedAllowed(namespace: string): boolean {
    if (this.o.allowPrivilegedEverywhere || this.o.privilegedNamespaces?.includes(namespace)) return true;
    return this.o.caches.namespaces.get(undefined, namespace)?.metadata.labels?.[LABELS.allowPrivileged] === 'true';
  }

  private async remove(run: PipelineRun, why: string): Promise<ReconcileResult> {
    await this.cleaner.cleanup(run, why);
    this.forget(run);
    return {};
  }

  /**
   * The cached run, or what our own spec.status patch returned when the cache has not caught up with
   * it yet: otherwise a reconcile right after the unpend would try it again (a refused patch and a
   * repeated Event: requests for nothing). Never brings back a run the cache no longer has.
   */
  private freshest(key: string, cached: KubeObject | undefined): KubeObject | undefined {
    const mine = this.patchedRuns.get(key);
    if (!mine) return cached;
    if (cached && resourceVersionNewer(mine, cached)) return mine;
    this.patchedRuns.delete(key);
    return cached;
  }

  /** Drops everything held in memory for the run. */
  private forget(run: Pick<PipelineRun, 'metadata'>): void {
    this.uids.delete(`${run.metadata.namespace}/${run.metadata.name}`);
    this.patchedRuns.delete(`${run.metadata.namespace}/${run.metadata.name}`);
    this.actions.forget(run.metadata.uid);
    this.material.forget(run.metadata.uid);
    this.applier.forget(run.metadata.uid);
  }
}
