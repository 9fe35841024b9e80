import { ANNOTATIONS, API_VERSION, KIND, LABELS, PipelineSidecarResource, PipelineSidecarSpec, RunIdentity } from '../constructs/api/spec';
import { SidecarSpecError } from '../constructs/errors';
import { KindRegistry } from '../constructs/kinds';
import { objectName } from '../constructs/names';
import { validateSidecarSpec } from '../constructs/synthesize';
import { trustedRunId } from './bookkeeping';
import { RUN_INDEX, slimPipelineRun } from './cache-shapes';
import { OWNED_KINDS, OWNED_SELECTOR, RunCleaner, ownedByRun } from './cleanup';
import { parseDuration } from './duration';
import { EventRecorder, REASONS } from './events';
import { GateDecision, SidecarObservation, decide } from './gate';
import { KubeObject, ObjectCache } from './k8s/informer';
import { ApiError, RawClient } from './k8s/raw';
import { objectPath } from './k8s/resources';
import type { Logger } from './log';
import { MaterialStore, RunSidecar } from './material';
import type { OperatorMetrics } from './metrics';
import {
  CANCELLED, CANCELLED_ANNOTATION, PENDING, PipelineRun, hasStarted, isDone, lifecycle, releasableByUs, runIdentity,
} from './pipelinerun';
import { deploymentReady, notReadyCause } from './readiness';
import { annotatedSidecars, selectSidecars } from './selection';
import { APPLIED_AT, SPEC_SNAPSHOT, SidecarApplier, resourceVersionNewer } from './sidecar-apply';
import { SIDECAR_USE_LABEL, externalPodInputs } from './sidecar-inputs';

export { OWNED_KINDS, OWNED_SELECTOR, isDone, runIdentity, CANCELLED_ANNOTATION };

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
  /** startupTimeout when a PipelineSidecar sets none (default 5 min). */
  readonly startupTimeoutDefaultMs?: number;
  /** Clock (tests). */
  readonly now?: () => number;
}

export interface ReconcileResult { readonly requeueAfterMs?: number }

/**
 * How long a run we gate waits for its sidecars before a SidecarsApplied Event says what was created
 * and what it waits for; sidecars Ready sooner are reported by SidecarsReady alone.
 */
export const APPLIED_EVENT_AFTER_MS = 5_000;

/** The longest a reconcile asks to wait before looking again: a deadline further out is re-read then. */
const MAX_REQUEUE_MS = 10 * 60_000;

/** A reason to refuse the run's sidecars, with the Event reason to give. */
class Refusal extends Error {
  constructor(readonly reason: string, message: string) { super(message); }
}

/**
 * PipelineSidecars the run asks for that do not exist (yet, or any more). A GitOps sync that deletes
 * and re-creates one, or applies it a moment after the Pipeline, must not cost the runs in between:
 * a run that has not started waits for them until its start-up timeout, then is refused.
 */
class MissingSidecars extends Error {
  constructor(readonly names: string[], namespace: string) {
    super(`PipelineSidecar ${names.map((n) => `"${n}"`).join(', ')} does not exist in namespace ${namespace}`);
  }
}

/**
 * The reconcile of one PipelineRun (design §3), level-triggered and idempotent. Each step is its
 * own part: the run's lifecycle (pipelinerun.ts), its material (material.ts), synthesis and apply
 * (sidecar-apply.ts), the gate (gate.ts, a pure decision) and clean-up (cleanup.ts, shared with the
 * sweep). Everything it needs is re-read from the caches and the cluster; nothing it decides lives
 * only in memory.
 */
export class Reconciler {
  private readonly now: () => number;
  readonly cleaner: RunCleaner;
  private readonly material: MaterialStore;
  private readonly applier: SidecarApplier;
  /** Uids of runs whose deferred SidecarsApplied Event went out (saves a 409 per later reconcile; a restart forgets it harmlessly). */
  private readonly appliedReported = new Set<string>();
  /** `ns/name` → the run as our last spec.status patch returned it, until the cache catches up (freshest()). */
  private readonly patchedRuns = new Map<string, KubeObject>();
  /** `ns/name` → uid of runs with something in memory, so a run that is gone is forgotten too. */
  private readonly uids = new Map<string, string>();

  constructor(private readonly o: ReconcilerOptions) {
    this.now = o.now ?? Date.now;
    this.cleaner = new RunCleaner(o.client, o.caches.owned, o.events, o.log);
    this.material = new MaterialStore(o.client, o.caches.owned.get('v1/Secret'), o.kinds);
    this.applier = new SidecarApplier(o.client, o.caches.owned, o.kinds, o.events);
  }

  /** Per-run entries held in memory (material minted but not cached yet, synthesis memo). */
  get memoryEntries(): number { return this.material.size + this.applier.size + this.uids.size + this.appliedReported.size + this.patchedRuns.size; }

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
    if (trustedRunId(run.metadata)) return { names: annotatedSidecars(run.metadata.annotations), unknown: [] };
    const ns = run.metadata.namespace;
    const ref = run.spec?.pipelineRef;
    const pipeline = ref?.name && !ref.resolver && !ref.bundle ? this.o.caches.pipelines.get(ns, ref.name) : undefined;
    const crs = this.o.caches.sidecars.list(ns) as unknown as PipelineSidecarResource[];
    return selectSidecars(run as any, pipeline as any, crs);
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
      sidecars = await this.sidecarsOf(run, names, unknown, frozen ? existing : []);
    } catch (e) {
      if (e instanceof MissingSidecars) return this.waitForSidecars(run, frozen, e, log);
      if (e instanceof Refusal || e instanceof SidecarSpecError) return this.refuse(run, frozen, e instanceof Refusal ? e.reason : REASONS.refused, e.message, log);
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
      if (e instanceof SidecarSpecError) return this.refuse(run, frozen, REASONS.refused, e.message, log);
      throw e;
    }
    if (!frozen) {
      const refused = await this.unconsentedInputs(namespace, manifests);
      if (refused) return this.refuse(run, frozen, REASONS.refused, refused, log);
    }
    try {
      const out = await this.applier.apply(run, manifests, { frozen, skip: new Set(m.lost.map((l) => l.secret)), log });
      if (out.lostRace) return { requeueAfterMs: 0 };
      if (out.written > 0 && !frozen) {
        log.info('applied sidecar objects', { written: out.written, total: manifests.length });
        // A run we gate hears about its objects once: in SidecarsReady when they come up quickly, or
        // in SidecarsApplied once they have been waited for a while (gate()). One Event per run, not
        // two, on the common path: Events are a third of the writes a run costs.
        if (!(pending && releasableByUs(run))) {
          await this.o.events.emit(run, 'Normal', REASONS.sidecarsApplied, `created ${manifests.map((x) => `${x.kind} ${x.metadata.name}`).join(', ')}`, ident.runId);
        }
      }
    } catch (e) {
      return this.applyFailed(run, ident, sidecars, pending, e, log);
    }
    return this.gate(run, ident, sidecars, pending, log);
  }

  /**
   * The sidecars and specs the run gets. A frozen run keeps the spec it was first applied with (the
   * snapshot on its objects, passed as `snapshotFrom`; empty for a run that has not started):
   * editing or deleting its PipelineSidecar changes nothing under it.
   */
  private async sidecarsOf(run: PipelineRun, names: string[], unknown: string[], snapshotFrom: readonly KubeObject[]): Promise<RunSidecar[]> {
    const ns = run.metadata.namespace;
    const snapshots = new Map<string, PipelineSidecarSpec>();
    for (const o of snapshotFrom) {
      const sc = o.metadata.labels?.[LABELS.sidecar];
      const snap = o.metadata.annotations?.[SPEC_SNAPSHOT];
      if (sc && snap && !snapshots.has(sc)) {
        try { snapshots.set(sc, JSON.parse(snap)); } catch { /* a mangled snapshot: fall back to the PipelineSidecar */ }
      }
    }
    // A name the cache does not know may be a PipelineSidecar created a moment ago: the server decides.
    const fromServer = new Map<string, PipelineSidecarResource>();
    for (const n of [...new Set([...unknown, ...names])]) {
      if (snapshots.has(n) || this.o.caches.sidecars.get(ns, n)) continue;
      const live = await this.o.client.getOrUndefined(objectPath({ apiVersion: API_VERSION, kind: KIND, metadata: { name: n, namespace: ns } }));
      if (live) fromServer.set(n, live);
    }
    const all = [...new Set([...names, ...unknown])].sort();
    const missing = all.filter((n) => !snapshots.has(n) && !fromServer.has(n) && !this.o.caches.sidecars.get(ns, n));
    if (missing.length > 0) throw new MissingSidecars(missing, ns);
    return all.map((n) => {
      const snap = snapshots.get(n);
      if (snap) return { name: n, spec: snap };
      const cr = ((this.o.caches.sidecars.get(ns, n) as unknown as PipelineSidecarResource | undefined) ?? fromServer.get(n))!;
      const problems = validateSidecarSpec(n, cr.spec, this.o.kinds);
      if (problems.length) throw new Refusal(REASONS.refused, `PipelineSidecar "${n}" is not valid: ${problems.map((p) => p.message).join('; ')}`);
      return { name: n, spec: cr.spec };
    });
  }

  /**
   * #11.2: the Secrets and ConfigMaps the run's pods would read that their owners did not label for
   * sidecar use, as a refusal message (undefined when there are none). Read from the server: they
   * are not the operator's objects and are not cached. A missing one is left to the kubelet (the pod
   * does not start, and the start-up timeout says why).
   */
  private async unconsentedInputs(namespace: string, manifests: ReadonlyArray<Record<string, any>>): Promise<string | undefined> {
    const refused: string[] = [];
    for (const input of externalPodInputs(manifests)) {
      const path = `/api/v1/namespaces/${namespace}/${input.kind === 'Secret' ? 'secrets' : 'configmaps'}/${encodeURIComponent(input.name)}`;
      const obj = await this.o.client.getOrUndefined(path);
      if (obj && obj.metadata?.labels?.[SIDECAR_USE_LABEL] !== 'true') refused.push(`${input.kind} ${input.name} (${input.where})`);
    }
    if (refused.length === 0) return undefined;
    return `the sidecar would read ${refused.join(', ')}, which ${refused.length > 1 ? 'are' : 'is'} not labelled for sidecar use: ` +
      `whoever owns ${refused.length > 1 ? 'them' : 'it'} may allow it with \`kubectl label ${refused.length > 1 ? '<kind> <name>' : refused[0].split(' (')[0].toLowerCase()} ${SIDECAR_USE_LABEL}=true\`, or remove the reference from the PipelineSidecar`;
  }

  private privilegedAllowed(namespace: string): boolean {
    if (this.o.allowPrivilegedEverywhere) return true;
    return this.o.caches.namespaces.get(undefined, namespace)?.metadata.labels?.[LABELS.allowPrivileged] === 'true';
  }

  private timeoutOf(spec: PipelineSidecarSpec): number {
    return parseDuration(spec.lifecycle?.startupTimeout) ?? this.o.startupTimeoutDefaultMs ?? 300_000;
  }

  /** What the gate sees of each sidecar: Ready, and since when the cluster has its objects. */
  private observe(ident: RunIdentity, sidecars: readonly RunSidecar[], since?: number): SidecarObservation[] {
    const deployments = this.o.caches.owned.get('apps/v1/Deployment')!;
    return sidecars.map((s) => {
      const dep = deployments.get(ident.namespace, objectName(ident, s.name));
      // From when the operator last gave the Deployment a new desire (its pod rolls out anew), or
      // from its creation, as the cluster recorded it.
      const at = Date.parse(dep?.metadata.annotations?.[APPLIED_AT] ?? dep?.metadata.creationTimestamp ?? '');
      return {
        name: s.name, ready: deploymentReady(dep), since: Number.isFinite(at) ? at : since,
        startupTimeoutMs: this.timeoutOf(s.spec), onSidecarFailure: s.spec.lifecycle?.onSidecarFailure ?? 'Cancel',
      };
    });
  }

  private async gate(run: PipelineRun, ident: RunIdentity, sidecars: readonly RunSidecar[], pending: boolean, log: Logger): Promise<ReconcileResult> {
    const observed = this.observe(ident, sidecars);
    const releasable = releasableByUs(run);
    const decision = decide({ pending, releasable, sidecars: observed, now: this.now() });
    if (decision.kind !== 'wait' || !releasable) return this.act(run, ident, sidecars, decision, log);
    // Waiting on a run we gate: once its sidecars have taken a while, say what exists and what it waits for.
    const waiting = observed.filter((o) => !o.ready && o.since !== undefined);
    if (waiting.length === 0 || this.appliedReported.has(run.metadata.uid)) return this.act(run, ident, sidecars, decision, log);
    const slowAt = Math.min(...waiting.map((o) => o.since!)) + APPLIED_EVENT_AFTER_MS;
    if (this.now() < slowAt) {
      const until = decision.until === undefined ? slowAt : Math.min(decision.until, slowAt);
      return this.act(run, ident, sidecars, { kind: 'wait', until }, log);
    }
    const pods = this.o.caches.pods.byIndex(RUN_INDEX, `id:${ident.namespace}/${ident.runId}`);
    const deployments = this.o.caches.owned.get('apps/v1/Deployment')!;
    const why = waiting.map((o) => `"${o.name}": ${notReadyCause(deployments.get(ident.namespace, objectName(ident, o.name)), pods.filter((p) => p.metadata.labels?.[LABELS.sidecar] === o.name))}`).join('; ');
    await this.o.events.emit(run, 'Normal', REASONS.sidecarsApplied,
      `created ${this.objectList(run)}; the run starts when every sidecar is Ready, waiting for ${why}`, ident.runId);
    this.appliedReported.add(run.metadata.uid);
    return this.act(run, ident, sidecars, decision, log);
  }

  /** `Deployment a, Service b, ...` of the run's cached objects, for Event messages. */
  private objectList(run: PipelineRun): string {
    return this.cleaner.ofRun(run).map((o) => `${o.kind} ${o.metadata.name}`).sort().join(', ');
  }

  /**
   * Carries out a gate decision. Each Event goes out *before* the spec.status patch it announces: a
   * crash between the two repeats both on the next reconcile (the run is still pending, and the
   * Event's deterministic name makes the repeat a no-op), so a started or cancelled run never lacks
   * its explanation.
   */
  private async act(run: PipelineRun, ident: RunIdentity, sidecars: readonly RunSidecar[], d: GateDecision, log: Logger, cause?: string): Promise<ReconcileResult> {
    switch (d.kind) {
      case 'none': return {};
      case 'wait': return d.until === undefined ? {} : { requeueAfterMs: Math.min(MAX_REQUEUE_MS, Math.max(50, d.until - this.now() + 50)) };
      case 'start': {
        await this.o.events.emit(run, 'Normal', REASONS.sidecarsReady, `sidecars ready (${sidecars.map((s) => s.name).join(', ')}; created ${this.objectList(run)}): starting the run`);
        if (await this.setRunStatus(run, 'start')) {
          const latency = (this.now() - Date.parse(run.metadata.creationTimestamp!)) / 1000;
          this.o.metrics?.unpendLatency.observe(latency);
          log.info('sidecars ready: started the run', { latencySeconds: latency });
        }
        return {};
      }
      default: {
        const causes = cause ?? this.causes(ident, sidecars, d.expired);
        this.o.metrics?.errors.inc({ reason: 'startup_timeout' });
        if (d.kind === 'report') {
          await this.o.events.emit(run, 'Warning', REASONS.startupLate, `${causes}; this run was pended by someone else, who decides whether it starts`, d.expired.join(','));
          return {};
        }
        if (d.kind === 'start-anyway') {
          await this.o.events.emit(run, 'Warning', REASONS.startupFailed, `${causes}; starting the run anyway (onSidecarFailure: Ignore)`);
          await this.setRunStatus(run, 'start');
          return {};
        }
        await this.o.events.emit(run, 'Warning', REASONS.startupFailed, `${causes}; cancelling the run`);
        if (await this.setRunStatus(run, 'cancel')) {
          log.warn('sidecar startup failed: cancelled the run', { causes });
          await this.cleaner.cleanup(run, 'its sidecars did not start in time, and the run was cancelled before it started');
          this.forget(run);
        }
        return {};
      }
    }
  }

  private causes(ident: RunIdentity, sidecars: readonly RunSidecar[], expired: readonly string[]): string {
    const pods = this.o.caches.pods.byIndex(RUN_INDEX, `id:${ident.namespace}/${ident.runId}`);
    const deployments = this.o.caches.owned.get('apps/v1/Deployment')!;
    return sidecars.filter((s) => expired.includes(s.name)).map((s) => {
      const podsOf = pods.filter((p) => p.metadata.labels?.[LABELS.sidecar] === s.name);
      const timeout = s.spec.lifecycle?.startupTimeout ?? `${Math.round(this.timeoutOf(s.spec) / 1000)}s`;
      return `sidecar "${s.name}" was not Ready within startupTimeout ${timeout}: ${notReadyCause(deployments.get(ident.namespace, objectName(ident, s.name)), podsOf)}`;
    }).join('; ');
  }

  /**
   * The API refused the run's objects (admission, validation, a 500). The start-up timeout applies:
   * it counts from the first refusal, which the cluster records as an Event, so a run is never left
   * pending forever, and is cancelled with the API's own message once the timeout passes.
   */
  private async applyFailed(run: PipelineRun, ident: RunIdentity, sidecars: readonly RunSidecar[], pending: boolean, e: unknown, log: Logger): Promise<ReconcileResult> {
    const message = e instanceof Error ? e.message : String(e);
    const transport = e instanceof ApiError && e.statusCode === 0;
    if (transport) throw e; // the API server is unreachable: nothing was refused, retry with backoff
    log.warn('the API refused the sidecar objects', { error: message });
    await this.o.events.emit(run, 'Warning', REASONS.applyFailed, `the API refused this run's sidecar objects (retrying until the start-up timeout): ${message}`);
    const since = await this.o.events.firstRecorded(run, REASONS.applyFailed);
    const decision = decide({ pending, releasable: releasableByUs(run), sidecars: this.observe(ident, sidecars, since ?? this.now()), now: this.now() });
    if (decision.kind === 'cancel' || decision.kind === 'report' || decision.kind === 'start-anyway') {
      return this.act(run, ident, sidecars, decision, log, `the API refused the sidecar objects until the start-up timeout passed: ${message}`);
    }
    // Retry soon, and no later than the deadline.
    const retry = decision.kind === 'wait' && decision.until !== undefined ? Math.min(5_000, Math.max(200, decision.until - this.now() + 50)) : 5_000;
    return { requeueAfterMs: retry };
  }

  /**
   * The only spec write the operator makes, guarded by a JSON Patch `test` on spec.status: if the
   * run is no longer pending (another replica, an earlier life of this process, or its owner got
   * there first) the patch fails and nothing changes, so a run is started or cancelled at most once.
   */
  private async setRunStatus(run: PipelineRun, to: 'start' | 'cancel'): Promise<boolean> {
    const ann = run.metadata.annotations;
    const stamp = new Date(this.now()).toISOString();
    const annotation = to === 'start' ? ANNOTATIONS.started : CANCELLED_ANNOTATION;
    const annKey = annotation.replace(/\//g, '~1');
    const ops: unknown[] = [
      { op: 'test', path: '/spec/status', value: PENDING },
      to === 'start' ? { op: 'remove', path: '/spec/status' } : { op: 'replace', path: '/spec/status', value: CANCELLED },
      ann ? { op: 'add', path: `/metadata/annotations/${annKey}`, value: stamp } : { op: 'add', path: '/metadata/annotations', value: { [annotation]: stamp } },
    ];
    try {
      const patched = await this.o.client.jsonPatch(objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: run.metadata }), ops);
      if (patched?.metadata?.resourceVersion) this.patchedRuns.set(`${run.metadata.namespace}/${run.metadata.name}`, slimPipelineRun(patched));
      return true;
    } catch (e) {
      // 422 from the failed test: not pending any more. 404: deleted meanwhile. Either way, nothing to do.
      if (e instanceof ApiError && (e.statusCode === 422 || e.statusCode === 404)) return false;
      throw e;
    }
  }

  /**
   * The run cannot get its sidecars. A pending run of ours is cancelled (it would never start) and
   * its objects go; a run whose tasks may be running keeps what it has, and hears why in an Event.
   */
  private async refuse(run: PipelineRun, frozen: boolean, reason: string, message: string, log: Logger): Promise<ReconcileResult> {
    this.o.metrics?.errors.inc({ reason: 'refused' });
    log.warn('refusing sidecars', { reason, message });
    if (frozen) {
      await this.o.events.emit(run, 'Warning', reason, `${message}; the run keeps the sidecars it already has`, message);
      return {};
    }
    if (releasableByUs(run)) {
      await this.o.events.emit(run, 'Warning', reason, `${message}; cancelling the run`);
      if (await this.setRunStatus(run, 'cancel')) {
        await this.cleaner.cleanup(run, 'its sidecars were refused, and the run was cancelled before it started');
        this.forget(run);
      }
      return {};
    }
    await this.o.events.emit(run, 'Warning', reason, `${message}; this run was pended by someone else, who decides whether it starts`, message);
    return {};
  }

  /**
   * A PipelineSidecar the run asks for is missing. A started run keeps what it has (its objects'
   * snapshots would have been used; only a run whose every object is gone gets here) and hears why.
   * A run that has not started waits until the start-up timeout, counted from the first time the
   * cluster recorded the absence (an Event), then is refused like any other.
   */
  private async waitForSidecars(run: PipelineRun, frozen: boolean, e: MissingSidecars, log: Logger): Promise<ReconcileResult> {
    if (frozen) return this.refuse(run, frozen, REASONS.refused, e.message, log);
    const timeoutMs = this.o.startupTimeoutDefaultMs ?? 300_000;
    await this.o.events.emit(run, 'Warning', REASONS.sidecarMissing,
      `${e.message} (deleted, or not applied yet?); waiting for it up to the start-up timeout (${Math.round(timeoutMs / 1000)} s), then the run is refused`, e.names.join(','));
    const since = (await this.o.events.firstRecorded(run, REASONS.sidecarMissing, e.names.join(','))) ?? this.now();
    const left = since + timeoutMs - this.now();
    if (left <= 0) return this.refuse(run, frozen, REASONS.refused, `${e.message} (waited the start-up timeout for it)`, log);
    // The PipelineSidecar's own events requeue the run when it comes back; this is the deadline.
    return { requeueAfterMs: Math.min(MAX_REQUEUE_MS, left + 50) };
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
    this.appliedReported.delete(run.metadata.uid);
    this.material.forget(run.metadata.uid);
    this.applier.forget(run.metadata.uid);
  }
}

/** Whether an owned object belongs to the run (the sweep and tests use it). */
export { ownedByRun };
