import { createHash } from 'node:crypto';
import { ApiError, RawClient } from './k8s/raw';
import { collectionPath } from './k8s/resources';
import type { Logger } from './log';

export type EventType = 'Normal' | 'Warning';

/** Event reasons the operator emits on a PipelineRun. */
export const REASONS = {
  sidecarsApplied: 'SidecarsApplied',
  sidecarsReady: 'SidecarsReady',
  startupFailed: 'SidecarStartupFailed',
  refused: 'SidecarRefused',
  deleted: 'SidecarsDeleted',
  notGated: 'SidecarsNotGated',
  applyConflict: 'SidecarApplyConflict',
  reconcileFailed: 'SidecarReconcileFailed',
  /** An object of ours was edited by someone else and put back. */
  driftCorrected: 'SidecarDriftCorrected',
  /** An object of a started run was deleted and re-created from what the run got at first. */
  recreated: 'SidecarRecreated',
  /** A Secret of a started run is gone and its material cannot be recovered. */
  materialLost: 'SidecarMaterialLost',
  /** The API refused the run's objects (admission, validation, server errors). */
  applyFailed: 'SidecarApplyFailed',
  /** A PipelineSidecar the run asks for does not exist (yet): the run waits, up to its start-up timeout. */
  sidecarMissing: 'SidecarMissing',
  /** The run was pended by someone else and its sidecars missed their start-up timeout. */
  startupLate: 'SidecarStartupLate',
  /** A sidecar container died while the run was not done (the kubelet restarts it; the run goes on). */
  sidecarRestarted: 'SidecarRestarted',
} as const;

/**
 * Writes core/v1 Events on a PipelineRun. Each Event's name is derived from the run's uid, the
 * reason and a caller key, and it is created, never updated: a reconcile that repeats (requeue,
 * restart, second replica after handover) re-emits nothing, without any in-memory bookkeeping.
 */
export class EventRecorder {
  constructor(private readonly client: RawClient, private readonly component: string, private readonly instance: string, private readonly log: Logger) {}

  /** The deterministic name of the Event for (run, reason, key). */
  static nameOf(run: { metadata: { name: string; uid: string } }, reason: string, key = ''): string {
    const hash = createHash('sha256').update(`${run.metadata.uid}/${reason}/${key}`).digest('hex').slice(0, 12);
    return `${run.metadata.name.slice(0, 200)}.${hash}`;
  }

  /**
   * When the cluster first recorded the Event (run, reason, key), or undefined when there is none:
   * a clock that survives restarts and replicas, read from the server.
   */
  async firstRecorded(run: { metadata: { name: string; namespace: string; uid: string } }, reason: string, key = ''): Promise<number | undefined> {
    const ev = await this.client.getOrUndefined(`${collectionPath('v1', 'Event', run.metadata.namespace)}/${EventRecorder.nameOf(run, reason, key)}`);
    const t = ev?.metadata?.creationTimestamp ?? ev?.firstTimestamp;
    return t ? Date.parse(t) : undefined;
  }

  async emit(run: Record<string, any>, type: EventType, reason: string, message: string, key = ''): Promise<boolean> {
    const m = run.metadata;
    const now = new Date().toISOString();
    const body = {
      apiVersion: 'v1', kind: 'Event',
      metadata: { name: EventRecorder.nameOf(run as any, reason, key), namespace: m.namespace },
      involvedObject: { apiVersion: run.apiVersion ?? 'tekton.dev/v1', kind: run.kind ?? 'PipelineRun', name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion },
      reason, message: message.slice(0, 1024), type,
      source: { component: this.component },
      reportingComponent: this.component, reportingInstance: this.instance,
      firstTimestamp: now, lastTimestamp: now, count: 1,
    };
    try {
      await this.client.create(collectionPath('v1', 'Event', m.namespace), body);
      this.log.info('event', { run: `${m.namespace}/${m.name}`, type, reason, message });
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.statusCode === 409) return false;
      // An Event is a report, not state: failing to write one must not fail the reconcile.
      this.log.warn('could not write Event', { run: `${m.namespace}/${m.name}`, reason, error: e });
      return false;
    }
  }
}
