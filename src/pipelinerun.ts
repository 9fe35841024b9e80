import { ANNOTATIONS, GROUP, RunIdentity } from '../constructs/api/spec';
import { trustedRunId } from './bookkeeping';
import { runIdFromUid } from './runid';

/**
 * The parts of a Tekton PipelineRun (tekton.dev/v1) the operator reads. Everything else of the run
 * is Tekton's business; the operator writes only spec.status (through a guarded JSON Patch) and its
 * own annotations.
 */
export interface PipelineRun {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly creationTimestamp?: string;
    readonly deletionTimestamp?: string;
    readonly resourceVersion?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly spec?: {
    /** PipelineRunPending, Cancelled, CancelledRunFinally, StoppedRunFinally, or unset. */
    readonly status?: string;
    readonly pipelineRef?: { readonly name?: string; readonly resolver?: string; readonly bundle?: string };
    readonly pipelineSpec?: Record<string, unknown>;
  };
  readonly status?: {
    /** Set by Tekton when it starts the run; unset while the run is pending (gated time does not count). */
    readonly startTime?: string;
    readonly completionTime?: string;
    readonly conditions?: ReadonlyArray<{ readonly type: string; readonly status: string; readonly reason?: string; readonly message?: string }>;
  };
}

export const PENDING = 'PipelineRunPending';
export const CANCELLED = 'Cancelled';
/** Set with spec.status: Cancelled when the operator cancels a run (the Event says why). */
export const CANCELLED_ANNOTATION = `${GROUP}/cancelled`;
/**
 * Fallback mode (no webhook saw the run): the user says on the run that the operator may release it
 * once its sidecars are Ready (`pipeline-sidecars.dev/release: when-ready`). Without it, a pending
 * run is somebody else's (Pipelines-as-Code, a queue, a person) and the operator never starts it.
 */
export const RELEASE_ANNOTATION = ANNOTATIONS.release;
export const RELEASE_WHEN_READY = 'when-ready';

/** The run's Succeeded condition ({} when Tekton has not written one yet). */
export function succeededCondition(run: { readonly status?: PipelineRun['status'] } | Record<string, any>): { status?: string; reason?: string; message?: string } {
  const conditions: NonNullable<NonNullable<PipelineRun['status']>['conditions']> = run.status?.conditions ?? [];
  return conditions.find((c) => c.type === 'Succeeded') ?? {};
}

/** Succeeded True or False: the run (finally tasks included) is over. */
export function isDone(run: { readonly status?: PipelineRun['status'] } | Record<string, any>): boolean {
  const s = succeededCondition(run).status;
  return s === 'True' || s === 'False';
}

/** Tekton's own answer to "has this run started?": it sets status.startTime when it starts a run. */
export function hasStarted(run: PipelineRun): boolean {
  return !!run.status?.startTime;
}

/** What runIdentity reads: a cached object's metadata will do. */
interface RunMetadata { readonly metadata: { readonly name?: string; readonly namespace?: string; readonly uid?: string; readonly annotations?: Record<string, string>; readonly labels?: Record<string, string> } }

/** The identity objects are named by: the webhook's run id, or (fallback mode) one derived from the uid. */
export function runIdentity(run: RunMetadata | Record<string, any>): RunIdentity {
  const m = run.metadata;
  const [name, namespace, uid] = [m.name ?? '', m.namespace ?? '', m.uid ?? ''];
  // A run id counts only with the webhook's marker: a copied one would name another run's objects.
  const id = trustedRunId(m);
  return id
    ? { name, namespace, uid, runId: id, naming: 'runId' }
    : { name, namespace, uid, runId: runIdFromUid(uid), naming: 'runName' };
}

/**
 * Whether the operator may take the run out of PipelineRunPending: only a run our webhook pended
 * itself (it records that in the gated annotation; the bundle's BookkeepingPolicy reserves our
 * annotation prefix for the webhook and the operator), or, in fallback mode, a run whose author said
 * so explicitly. Runs pended by anyone else get their sidecars and wait for their owner.
 */
export function releasableByUs(run: PipelineRun): boolean {
  const a = run.metadata.annotations ?? {};
  if (trustedRunId(run.metadata) && a[ANNOTATIONS.gated] === 'true') return true;
  return a[RELEASE_ANNOTATION] === RELEASE_WHEN_READY;
}

/** What the run's lifecycle asks of its sidecars, before anything else is looked at. */
export type Lifecycle =
  | { readonly kind: 'provide' }
  | { readonly kind: 'remove'; readonly why: string };

/**
 * Sidecars go when nothing of the run can use them any more: the run is done (finally included),
 * being deleted, or hard-cancelled before Tekton started it (Tekton then runs no task at all). A run
 * stopped with CancelledRunFinally or StoppedRunFinally keeps them until it is done, even if it was
 * never started: Tekton starts it to run its finally tasks.
 */
export function lifecycle(run: PipelineRun): Lifecycle {
  if (isDone(run)) return { kind: 'remove', why: 'the run is done' };
  if (run.metadata.deletionTimestamp) return { kind: 'remove', why: 'the run is being deleted' };
  if (run.spec?.status === CANCELLED && !hasStarted(run)) return { kind: 'remove', why: 'the run was cancelled before Tekton started it' };
  return { kind: 'provide' };
}
