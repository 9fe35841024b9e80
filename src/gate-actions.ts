import { LABELS, RunIdentity, PipelineSidecarSpec } from '../constructs/api/spec';
import { objectName } from '../constructs/names';
import { RUN_INDEX, slimPipelineRun } from './cache-shapes';
import type { RunCleaner } from './cleanup';
import { EventRecorder, REASONS } from './events';
import { GateDecision, SidecarObservation, decide } from './gate';
import type { KubeObject, ObjectCache } from './k8s/object-store';
import { ApiError, RawClient } from './k8s/raw';
import { collectionPath } from './k8s/resources';
import type { Logger } from './log';
import type { RunSidecar } from './material';
import type { OperatorMetrics } from './metrics';
import { MissingSidecars, missingWait } from './missing-sidecars';
import { PipelineRun, releasableByUs } from './pipelinerun';
import { PROVENANCE_ANNOTATION, sidecarProvenance } from './provenance';
import { deploymentReady, notReadyCause } from './readiness';
import { setRunStatus } from './run-status';
import { APPLIED_AT } from './sidecar-apply';
import { specSnapshots } from './sidecar-resolution';

export interface ReconcileResult { readonly requeueAfterMs?: number }

/**
 * How long a run we gate waits for its sidecars before a SidecarsApplied Event says what was created
 * and what it waits for; sidecars Ready sooner are reported by SidecarsReady alone.
 */
export const APPLIED_EVENT_AFTER_MS = 5_000;

/** The longest a reconcile asks to wait before looking again: a deadline further out is re-read then. */
const MAX_REQUEUE_MS = 10 * 60_000;

export interface GateActionsOptions {
  readonly client: RawClient;
  readonly pods: ObjectCache;
  readonly deployments: ObjectCache;
  readonly events: EventRecorder;
  readonly cleaner: RunCleaner;
  readonly metrics?: OperatorMetrics;
  readonly now: () => number;
  /** A sidecar's start-up timeout (its own, else the operator's default). */
  readonly timeoutOf: (spec: PipelineSidecarSpec) => number;
  /** The operator's default start-up timeout. */
  readonly defaultTimeoutMs: number;
  /** Our spec.status patch returned `stored`: the reconciler uses it until the cache catches up. */
  readonly patched: (run: PipelineRun, stored: KubeObject) => void;
  /** The run was cancelled and cleaned up: drop what memory holds of it. */
  readonly forget: (run: PipelineRun) => void;
}

/**
 * What the operator does to a pending run once its sidecars are resolved and applied: decide
 * (gate.ts, pure) and carry the decision out (start, cancel, report, wait), refuse a run that
 * cannot get its sidecars, and wait for missing ones. Every spec write goes through setRunStatus.
 */
export class GateActions {
  /** Uids of runs whose slow report went out (saves a 409 per later reconcile; a restart forgets it harmlessly). */
  private readonly slowReported = new Set<string>();

  constructor(private readonly o: GateActionsOptions) {}

  get size(): number { return this.slowReported.size; }
  forget(uid: string): void { this.slowReported.delete(uid); }

  /** What the gate sees of each sidecar: Ready, and since when the cluster has its objects (else `since`). */
  private observe(ident: RunIdentity, sidecars: readonly RunSidecar[], since?: number): SidecarObservation[] {
    return sidecars.map((s) => {
      const dep = this.o.deployments.get(ident.namespace, objectName(ident, s.name));
      // From when the operator last gave the Deployment a new desire (its pod rolls out anew), or
      // from its creation, as the cluster recorded it.
      const at = Date.parse(dep?.metadata.annotations?.[APPLIED_AT] ?? dep?.metadata.creationTimestamp ?? '');
      return {
        name: s.name, ready: deploymentReady(dep), since: Number.isFinite(at) ? at : since,
        startupTimeoutMs: this.o.timeoutOf(s.spec), onSidecarFailure: s.spec.lifecycle?.onSidecarFailure ?? 'Cancel',
      };
    });
  }

  /**
   * The gate for a run whose objects are applied, or (`failed`) whose objects the API refused: then
   * the start-up timeout counts from the first refusal, which the cluster records as an Event, so a
   * run is never left pending forever, and is cancelled with the API's own message once it passes.
   */
  async gate(run: PipelineRun, ident: RunIdentity, sidecars: readonly RunSidecar[], pending: boolean, log: Logger, failed?: { since: number; message: string }): Promise<ReconcileResult> {
    const decision = decide({
      pending, releasable: releasableByUs(run), sidecars: this.observe(ident, sidecars, failed?.since), now: this.o.now(),
      slowAfterMs: failed ? undefined : APPLIED_EVENT_AFTER_MS, slowReported: this.slowReported.has(run.metadata.uid),
    });
    if (failed) {
      if (decision.kind === 'wait') {
        // Retry soon, and no later than the deadline.
        return { requeueAfterMs: decision.until === undefined ? 5_000 : Math.min(5_000, Math.max(200, decision.until - this.o.now() + 50)) };
      }
      if (decision.kind !== 'start' && decision.kind !== 'none') {
        return this.act(run, ident, sidecars, decision, log, `the API refused the sidecar objects until the start-up timeout passed: ${failed.message}`);
      }
      return { requeueAfterMs: 5_000 };
    }
    return this.act(run, ident, sidecars, decision, log);
  }

  /** `Deployment a, Service b, ...` of the run's cached objects, for Event messages. */
  private objectList(run: PipelineRun): string {
    return this.o.cleaner.ofRun(run).map((o) => `${o.kind} ${o.metadata.name}`).sort().join(', ');
  }

  private podsOf(ident: RunIdentity, sidecar: string): KubeObject[] {
    return this.o.pods.byIndex(RUN_INDEX, `id:${ident.namespace}/${ident.runId}`).filter((p) => p.metadata.labels?.[LABELS.sidecar] === sidecar);
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
      case 'wait': {
        if (d.slow) {
          const why = d.slow.map((n) => `"${n}": ${notReadyCause(this.o.deployments.get(ident.namespace, objectName(ident, n)), this.podsOf(ident, n))}`).join('; ');
          await this.o.events.emit(run, 'Normal', REASONS.sidecarsApplied,
            `created ${this.objectList(run)}; the run starts when every sidecar is Ready, waiting for ${why}`, ident.runId);
          this.slowReported.add(run.metadata.uid);
        }
        return d.until === undefined ? {} : { requeueAfterMs: Math.min(MAX_REQUEUE_MS, Math.max(50, d.until - this.o.now() + 50)) };
      }
      case 'start': {
        await this.o.events.emit(run, 'Normal', REASONS.sidecarsReady, `sidecars ready (${sidecars.map((s) => s.name).join(', ')}; created ${this.objectList(run)}): starting the run`);
        // Which images served the run, by digest, recorded in the same write that releases it.
        const provenance = await this.provenance(ident, sidecars);
        if (await this.setStatus(run, 'start', { [PROVENANCE_ANNOTATION]: JSON.stringify(provenance) })) {
          const latency = (this.o.now() - Date.parse(run.metadata.creationTimestamp!)) / 1000;
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
          await this.setStatus(run, 'start');
          return {};
        }
        await this.o.events.emit(run, 'Warning', REASONS.startupFailed, `${causes}; cancelling the run`);
        if (await this.setStatus(run, 'cancel')) {
          log.warn('sidecar startup failed: cancelled the run', { causes });
          await this.o.cleaner.cleanup(run, 'its sidecars did not start in time, and the run was cancelled before it started');
          this.o.forget(run);
        }
        return {};
      }
    }
  }

  /**
   * The run's sidecar pods that served it. From the pod cache; when a Ready pod is not there yet (its
   * watch event can trail the Deployment's), from one list of the run's pods on the server.
   */
  private async provenance(ident: RunIdentity, sidecars: readonly RunSidecar[]) {
    const sidecarOf = (p: KubeObject) => p.metadata.labels?.[LABELS.sidecar];
    const cached = sidecarProvenance(sidecars, this.o.pods.byIndex(RUN_INDEX, `id:${ident.namespace}/${ident.runId}`), sidecarOf);
    if (cached.every((c) => c.pod)) return cached;
    const live = await this.o.client.get(collectionPath('v1', 'Pod', ident.namespace), { labelSelector: `${LABELS.runId}=${ident.runId}` });
    return sidecarProvenance(sidecars, live.items ?? [], sidecarOf);
  }

  private causes(ident: RunIdentity, sidecars: readonly RunSidecar[], expired: readonly string[]): string {
    return sidecars.filter((s) => expired.includes(s.name)).map((s) => {
      const timeout = s.spec.lifecycle?.startupTimeout ?? `${Math.round(this.o.timeoutOf(s.spec) / 1000)}s`;
      return `sidecar "${s.name}" was not Ready within startupTimeout ${timeout}: ${notReadyCause(this.o.deployments.get(ident.namespace, objectName(ident, s.name)), this.podsOf(ident, s.name))}`;
    }).join('; ');
  }

  private async setStatus(run: PipelineRun, to: 'start' | 'cancel', annotations?: Record<string, string>): Promise<boolean> {
    const stored = await setRunStatus(this.o.client, run, to, this.o.now(), annotations);
    if (stored?.metadata?.resourceVersion) this.o.patched(run, slimPipelineRun(stored));
    return stored !== undefined;
  }

  /**
   * The run cannot get its sidecars. A pending run of ours is cancelled (it would never start) and
   * its objects go; a run whose tasks may be running keeps what it has, and hears why in an Event.
   */
  async refuse(run: PipelineRun, frozen: boolean, reason: string, message: string, log: Logger): Promise<ReconcileResult> {
    this.o.metrics?.errors.inc({ reason: 'refused' });
    log.warn('refusing sidecars', { reason, message });
    if (frozen) {
      await this.o.events.emit(run, 'Warning', reason, `${message}; the run keeps the sidecars it already has`, message);
      return {};
    }
    if (releasableByUs(run)) {
      await this.o.events.emit(run, 'Warning', reason, `${message}; cancelling the run`);
      if (await this.setStatus(run, 'cancel')) {
        await this.o.cleaner.cleanup(run, 'its sidecars were refused, and the run was cancelled before it started');
        this.o.forget(run);
      }
      return {};
    }
    await this.o.events.emit(run, 'Warning', reason, `${message}; this run was pended by someone else, who decides whether it starts`, message);
    return {};
  }

  /**
   * A PipelineSidecar the run asks for is missing. A started run keeps what it has (its objects'
   * snapshots would have been used; only a run whose every object is gone gets here) and hears why.
   * A run that has not started waits for it (missingWait: the missing sidecar's own startupTimeout
   * as the run's objects recorded it, else the operator's default), counted from the first time the
   * cluster recorded the absence (an Event), then is refused like any other.
   */
  async waitForSidecars(run: PipelineRun, frozen: boolean, e: MissingSidecars, log: Logger): Promise<ReconcileResult> {
    if (frozen) return this.refuse(run, frozen, REASONS.refused, e.message, log);
    const { timeoutMs, whose } = missingWait(e.names, specSnapshots(this.o.cleaner.ofRun(run)), this.o.timeoutOf, this.o.defaultTimeoutMs);
    await this.o.events.emit(run, 'Warning', REASONS.sidecarMissing,
      `${e.message} (deleted, or not applied yet?); waiting for it up to ${whose} (${Math.round(timeoutMs / 1000)} s), then the run is refused`, e.names.join(','));
    const since = (await this.o.events.firstRecorded(run, REASONS.sidecarMissing, e.names.join(','))) ?? this.o.now();
    const left = since + timeoutMs - this.o.now();
    if (left <= 0) return this.refuse(run, frozen, REASONS.refused, `${e.message} (waited the start-up timeout for it)`, log);
    // The PipelineSidecar's own events requeue the run when it comes back; this is the deadline.
    return { requeueAfterMs: Math.min(MAX_REQUEUE_MS, left + 50) };
  }

  /** The API refused the run's objects: say so, then gate on the refusal's time. A transport error is rethrown (retry with backoff). */
  async applyFailed(run: PipelineRun, ident: RunIdentity, sidecars: readonly RunSidecar[], pending: boolean, e: unknown, log: Logger): Promise<ReconcileResult> {
    if (e instanceof ApiError && e.statusCode === 0) throw e; // unreachable: nothing was refused
    const message = e instanceof Error ? e.message : String(e);
    log.warn('the API refused the sidecar objects', { error: message });
    await this.o.events.emit(run, 'Warning', REASONS.applyFailed, `the API refused this run's sidecar objects (retrying until the start-up timeout): ${message}`);
    const since = (await this.o.events.firstRecorded(run, REASONS.applyFailed)) ?? this.o.now();
    return this.gate(run, ident, sidecars, pending, log, { since, message });
  }
}
