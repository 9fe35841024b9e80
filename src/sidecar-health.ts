import { GROUP, LABELS } from '../constructs/api/spec';
import { EventRecorder, REASONS } from './events';
import type { KubeObject, ObjectCache } from './k8s/object-store';
import { isConflict, isNotFound, RawClient } from './k8s/raw';
import { objectPath } from './k8s/resources';
import type { Logger } from './log';
import { isDone } from './pipelinerun';

/**
 * A sidecar container that dies while its run is not done is reported on the run. The kubelet
 * restarts it (restartPolicy Always), and without this only the pod would show it: the run's Tasks
 * would just see connections reset and a daemon that lost what it held in memory.
 *
 * The operator reports and does not cancel the run (docs/operator.md): the restarted container keeps
 * the pod's volumes (a dind's /var/lib/docker, a registry's storage), so a later Task may well work,
 * and a Task that lost its connection fails on its own, which fails the run under Tekton's rules.
 *
 * Restart-safe without in-memory truth: the crashes already reported are recorded on the sidecar's
 * Deployment (REPORTED_CRASHES_ANNOTATION), and each Event's name is derived from the pod uid,
 * container and crash number, so an operator that restarts between the two re-emits nothing.
 */

/** On a sidecar's Deployment: JSON {"<pod>/<container>": crashes already reported on the run}. */
export const REPORTED_CRASHES_ANNOTATION = `${GROUP}/reported-crashes`;

/** One container's crashes as the kubelet reports them. */
export interface ContainerCrash {
  readonly container: string;
  /**
   * Times it has died: restartCount, plus one while it is terminated and not restarted yet (so a
   * crash is reported as soon as the kubelet sees it, and not again once it restarted).
   */
  readonly crashes: number;
  readonly restartCount: number;
  readonly exitCode?: number;
  readonly reason?: string;
  readonly signal?: number;
  /** Terminated now, not (yet) restarted. */
  readonly down: boolean;
}

/** The crashes of each container of a pod (init containers included: restartable ones are sidecars too). */
export function containerCrashes(pod: Record<string, any>): ContainerCrash[] {
  const statuses: any[] = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  return statuses.map((cs) => {
    const now = cs.state?.terminated;
    const last = now ?? cs.lastState?.terminated;
    const restartCount = cs.restartCount ?? 0;
    return {
      container: cs.name,
      crashes: restartCount + (now ? 1 : 0),
      restartCount,
      exitCode: last?.exitCode,
      reason: last?.reason,
      signal: last?.signal,
      down: !!now,
    };
  });
}

/** Whether any container of the pod has ever died (a cheap filter before queueing a check). */
export function hasCrashed(pod: Record<string, any>): boolean {
  return containerCrashes(pod).some((c) => c.crashes > 0);
}

export interface CrashDecisionInput {
  /** The run the pod serves; undefined when it is gone (nothing to report on). */
  readonly run?: { readonly done: boolean };
  readonly pod: { readonly name: string; readonly deleting: boolean };
  readonly crashes: readonly ContainerCrash[];
  /** What the Deployment's annotation says was reported already. */
  readonly reported: Readonly<Record<string, number>>;
}

export interface CrashReport {
  /** Key in the reported-crashes record: `<pod>/<container>`. */
  readonly key: string;
  readonly container: string;
  readonly crashes: number;
  readonly crash: ContainerCrash;
}

/**
 * Which crashes to report now. Nothing for a run that is gone or done (its sidecars are being torn
 * down, and their containers exit on purpose), nor for a pod being deleted; otherwise every
 * container that died more often than the record says.
 */
export function crashesToReport(i: CrashDecisionInput): CrashReport[] {
  if (!i.run || i.run.done || i.pod.deleting) return [];
  return i.crashes
    .filter((c) => c.crashes > (i.reported[`${i.pod.name}/${c.container}`] ?? 0))
    .map((c) => ({ key: `${i.pod.name}/${c.container}`, container: c.container, crashes: c.crashes, crash: c }));
}

/** The Event's message for one crash report. */
export function crashMessage(sidecar: string, pod: string, r: CrashReport): string {
  const c = r.crash;
  const how = [
    c.exitCode !== undefined ? `exit code ${c.exitCode}` : undefined,
    c.reason ? `reason ${c.reason}` : undefined,
    c.signal ? `signal ${c.signal}` : undefined,
  ].filter(Boolean).join(', ');
  const state = c.down ? 'the kubelet is restarting it' : 'the kubelet restarted it';
  return `sidecar "${sidecar}": container "${c.container}" of pod ${pod} terminated${how ? ` (${how})` : ''} while the run was not done; ` +
    `${state} (restarts: ${c.restartCount}${c.down ? ', pending restart' : ''}). Clients lost their connections and what it held in memory; ` +
    'its volumes were kept. The run was not cancelled.';
}

/** Parses the reported-crashes annotation; anything unreadable counts as nothing reported. */
export function parseReported(value: string | undefined): Record<string, number> {
  if (!value) return {};
  try {
    const v = JSON.parse(value);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
    return Object.fromEntries(Object.entries(v).filter(([, n]) => typeof n === 'number' && Number.isFinite(n))) as Record<string, number>;
  } catch {
    return {};
  }
}

export interface SidecarHealthOptions {
  readonly client: RawClient;
  readonly runs: ObjectCache;
  readonly pods: ObjectCache;
  readonly deployments: ObjectCache;
  readonly events: EventRecorder;
  readonly log: Logger;
}

/** The work-queue key of one sidecar of one run: `<ns>/<run-id>/<sidecar label>`. */
export function healthKeyOf(pod: KubeObject): string | undefined {
  const l = pod.metadata.labels ?? {};
  const runId = l[LABELS.runId];
  const sidecar = l[LABELS.sidecar];
  return runId && sidecar && pod.metadata.namespace ? `${pod.metadata.namespace}/${runId}/${sidecar}` : undefined;
}

/**
 * Checks the pods of one sidecar of one run (all of them, so one writer updates the Deployment's
 * record per key: the work queue never runs one key twice at once).
 */
export class SidecarHealth {
  constructor(private readonly o: SidecarHealthOptions) {}

  async check(key: string): Promise<void> {
    const [ns, runId, sidecar] = key.split('/');
    const mine = (obj: KubeObject) => obj.metadata.labels?.[LABELS.runId] === runId && obj.metadata.labels?.[LABELS.sidecar] === sidecar;
    const dep = this.o.deployments.list(ns).find(mine);
    // No Deployment: the run's sidecars are gone (done or deleted), so there is nothing to report on.
    if (!dep) return;
    const pods = this.o.pods.list(ns).filter(mine);
    const uid = dep.metadata.labels?.[LABELS.runUid];
    const run = uid ? this.o.runs.list(ns).find((r) => r.metadata.uid === uid) : undefined;
    const reported = parseReported(dep.metadata.annotations?.[REPORTED_CRASHES_ANNOTATION]);
    const next: Record<string, number> = {};
    // Keep only the entries of pods that still exist: a replaced pod starts again from zero.
    for (const [k, n] of Object.entries(reported)) if (pods.some((p) => k.startsWith(`${p.metadata.name}/`))) next[k] = n;
    let reportedNow = 0;
    for (const pod of pods) {
      const reports = crashesToReport({
        run: run ? { done: isDone(run) } : undefined,
        pod: { name: pod.metadata.name, deleting: !!pod.metadata.deletionTimestamp },
        crashes: containerCrashes(pod),
        reported,
      });
      for (const r of reports) {
        // Emitted before the record is written: the Event's name makes a repeat (after a crash of
        // the operator, or a stale cache) a no-op.
        await this.o.events.emit(run!, 'Warning', REASONS.sidecarRestarted, crashMessage(sidecar, pod.metadata.name, r), `${pod.metadata.uid}/${r.container}/${r.crashes}`);
        next[r.key] = r.crashes;
        reportedNow++;
      }
    }
    if (reportedNow === 0 && Object.keys(next).length === Object.keys(reported).length) return;
    try {
      // resourceVersion makes the write conditional: a stale cache means a conflict and a retry.
      await this.o.client.mergePatch(objectPath(dep as any), {
        metadata: { resourceVersion: dep.metadata.resourceVersion, annotations: { [REPORTED_CRASHES_ANNOTATION]: JSON.stringify(next) } },
      });
    } catch (e) {
      if (isNotFound(e)) return;
      if (isConflict(e)) throw new Error(`the Deployment ${ns}/${dep.metadata.name} changed while its crash record was written; retrying`);
      throw e;
    }
  }
}
