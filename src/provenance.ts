import { GROUP } from '../constructs/api/spec';
import type { KubeObject } from './k8s/object-store';
import type { RunSidecar } from './material';

/**
 * On a PipelineRun, written when the operator releases it: which sidecar images served the run,
 * by digest. An image built by a pipeline-level daemon is built outside the TaskRun's pod, so
 * Tekton's own provenance (TaskRun results, step images) does not name the daemon; this does.
 * Tekton copies a run's annotations onto the TaskRuns it creates after the release, so every
 * TaskRun carries it too (docs/provenance.md).
 */
export const PROVENANCE_ANNOTATION = `${GROUP}/provenance`;

/** One container of a sidecar's pod, as the kubelet ran it. */
export interface ServedContainer {
  readonly name: string;
  /** The image reference as written in the pod. */
  readonly image: string;
  /** What the kubelet resolved it to (`docker.io/library/docker@sha256:…`), undefined before it ran. */
  readonly imageID?: string;
}

export interface SidecarProvenance {
  readonly sidecar: string;
  readonly kind: string;
  readonly pod: string;
  readonly containers: ServedContainer[];
}

/**
 * The provenance record of a run's sidecars, from their Ready pods (the ones that served it); a
 * sidecar without a Ready pod is listed with no pod. Pure: the caller passes the run's pods.
 */
export function sidecarProvenance(sidecars: readonly RunSidecar[], pods: readonly KubeObject[], sidecarOf: (pod: KubeObject) => string | undefined): SidecarProvenance[] {
  return sidecars.map((s) => {
    const ready = pods.find((p) => sidecarOf(p) === s.name && !p.metadata.deletionTimestamp &&
      (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'));
    const containers: ServedContainer[] = (ready?.status?.containerStatuses ?? []).map((c: any) => ({ name: c.name, image: c.image, ...(c.imageID ? { imageID: c.imageID } : {}) }));
    return { sidecar: s.name, kind: s.spec.kind, pod: ready?.metadata.name ?? '', containers };
  });
}
