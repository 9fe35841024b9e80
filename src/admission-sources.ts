import { API_VERSION, KIND, PipelineSidecarResource } from '../constructs/api/spec';
import { isNotFound, RawClient } from './k8s/raw';
import { collectionPath, objectPath } from './k8s/resources';
import type { OperatorMetrics } from './metrics';
import type { SharedCaches } from './shared-caches';

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * What the webhook reads to decide a CREATE: the referenced Pipeline and the namespace's
 * PipelineSidecars, from the shared informer caches when they are synced, else from the server. A
 * cache miss is never an answer on its own (the object may be a moment old); the caller re-decides a
 * refusal with `live` reads.
 */
export class AdmissionSources {
  /** Reads sent to the API server. */
  liveReads = 0;

  constructor(private readonly client: RawClient, private readonly caches?: SharedCaches, private readonly metrics?: OperatorMetrics) {}

  /** Whether the caches can answer (synced); until then, and without caches, every read goes to the server. */
  get fromCache(): boolean { return !!this.caches && this.caches.sidecars.hasSynced && this.caches.pipelines.hasSynced; }

  async pipeline(run: any, namespace: string, live: boolean): Promise<{ pipeline?: Record<string, any>; problem?: string }> {
    const ref = run.spec?.pipelineRef;
    if (!ref?.name || ref.resolver || ref.bundle) return {};
    if (typeof ref.name !== 'string' || !DNS_SUBDOMAIN.test(ref.name)) return { problem: `spec.pipelineRef.name ${JSON.stringify(ref.name)} is not a Pipeline name` };
    // A cache miss is not an answer: the Pipeline may have been created a moment before the run.
    const cached = !live && this.fromCache ? this.caches!.pipelines.get(namespace, ref.name) : undefined;
    if (cached) return { pipeline: cached };
    this.liveReads++;
    this.metrics?.admissionReads.inc();
    const p = await this.client.getOrUndefined(objectPath({ apiVersion: 'tekton.dev/v1', kind: 'Pipeline', metadata: { name: ref.name, namespace } }));
    return p ? { pipeline: p } : { problem: `Pipeline "${ref.name}" does not exist in namespace "${namespace}"` };
  }

  async sidecars(namespace: string, live: boolean): Promise<PipelineSidecarResource[]> {
    if (!live && this.fromCache) return this.caches!.sidecars.list(namespace) as unknown as PipelineSidecarResource[];
    this.liveReads++;
    this.metrics?.admissionReads.inc();
    try {
      const list = await this.client.get(collectionPath(API_VERSION, KIND, namespace));
      return (list.items ?? []) as PipelineSidecarResource[];
    } catch (e) {
      if (isNotFound(e)) throw new Error('the PipelineSidecar CRD is not installed');
      throw e;
    }
  }
}
