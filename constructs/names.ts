import { createHash } from 'node:crypto';
import { LABELS, MANAGED_BY, RunIdentity } from './api/spec';
import { SidecarSpecError } from './errors';

/** Kubernetes object names we create are DNS-1035 labels (Services require it). */
export const MAX_NAME_LENGTH = 63;
const DNS1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const HASH_LENGTH = 8;

/** Whether `s` is a DNS-1035 label of at most 63 characters. */
export function isDns1035Label(s: string): boolean {
  return s.length <= MAX_NAME_LENGTH && DNS1035.test(s);
}

function shortHash(s: string): string {
  // sha256 rather than a fast non-crypto hash: names must never collide by construction of an input.
  return createHash('sha256').update(s).digest('hex').slice(0, HASH_LENGTH);
}

/**
 * Shortens `full` to 63 characters keeping a hash of the whole name, so two long names that share
 * a prefix still differ, and the same input always gives the same name.
 */
export function truncateName(full: string): string {
  if (full.length <= MAX_NAME_LENGTH) return full;
  const head = full.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1).replace(/-+$/, '');
  return `${head}-${shortHash(full)}`;
}

/**
 * The name of an object of `sidecar` for `run`.
 * - naming `runId` (webhook mode): `<sidecar>-<runId>[-suffix]`;
 * - naming `runName` (fallback mode): `<runName>-<sidecar>[-suffix]`.
 * Too long names are truncated with a hash, except the fallback-mode Service name, which tasks compute
 * from `$(context.pipelineRun.name)-<sidecar>` and so must be exact.
 */
export function objectName(run: RunIdentity, sidecar: string, suffix?: string): string {
  const base = run.naming === 'runName' ? `${run.name}-${sidecar}` : `${sidecar}-${run.runId}`;
  const full = suffix ? `${base}-${suffix}` : base;
  if (!DNS1035.test(full)) {
    throw new SidecarSpecError('metadata.name',
      `object name "${full}" is not a DNS-1035 label (lowercase letters, digits and "-", starting with a letter); ` +
      'rename the PipelineSidecar or the PipelineRun', sidecar);
  }
  if (full.length <= MAX_NAME_LENGTH) return full;
  if (run.naming === 'runName' && suffix === undefined) {
    throw new SidecarSpecError('metadata.name',
      `in fallback mode (no webhook) tasks reach the sidecar at "$(context.pipelineRun.name)-${sidecar}", ` +
      `which is ${full.length} characters for run "${run.name}", over the 63-character limit of a Service name; ` +
      'shorten the PipelineRun name or the PipelineSidecar name, or install the webhook', sidecar);
  }
  return truncateName(full);
}

/** Labels on every object of a run. */
export function runLabels(run: RunIdentity): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.runId]: run.runId,
    [LABELS.runUid]: run.uid,
    [LABELS.pipelineRun]: labelValue(run.name),
  };
}

/** Labels on every object of one sidecar of a run (the Deployment selects on run-id + sidecar). */
export function sidecarLabels(run: RunIdentity, sidecar: string): Record<string, string> {
  return { ...runLabels(run), [LABELS.sidecar]: labelValue(sidecar) };
}

/** The labels a sidecar's Deployment and NetworkPolicy select its pods by. */
export function selectorLabels(run: RunIdentity, sidecar: string): Record<string, string> {
  return { [LABELS.runId]: run.runId, [LABELS.sidecar]: labelValue(sidecar) };
}

/** Label values are at most 63 characters; PipelineRun names can be up to 253. */
function labelValue(v: string): string {
  return v.length <= MAX_NAME_LENGTH ? v : truncateName(v);
}

/** The ownerReference to the PipelineRun every object carries, so GC removes them with the run. */
export function ownerReference(run: RunIdentity): Record<string, unknown> {
  return {
    apiVersion: 'tekton.dev/v1',
    kind: 'PipelineRun',
    name: run.name,
    uid: run.uid,
    controller: true,
    // true would require `update` on pipelineruns/finalizers for our ServiceAccount, for no gain:
    // the run is not meant to wait for its sidecars on foreground deletion.
    blockOwnerDeletion: false,
  };
}

/** The DNS names a run's sidecar Service answers to: the SANs of its server certificate. */
export function serviceDnsNames(serviceName: string, namespace: string): string[] {
  return [serviceName, `${serviceName}.${namespace}`, `${serviceName}.${namespace}.svc`, `${serviceName}.${namespace}.svc.cluster.local`];
}
