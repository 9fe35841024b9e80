import type { KubeAccess as KubeConfig } from './k8s/kube-access';
import { API_VERSION, KIND } from '../constructs/api/spec';
import { slimPipeline } from './cache-shapes';
import { Informer, InformerOptions } from './k8s/informer';
import { NamespacedInformers } from './k8s/namespaced-informers';
import { ObjectCache } from './k8s/object-store';
import type { RawClient } from './k8s/raw';
import { collectionPath } from './k8s/resources';
import type { Logger } from './log';

export interface SharedCacheOptions {
  readonly kubeConfig: KubeConfig;
  readonly client: RawClient;
  readonly log: Logger;
  /** Serve only these namespaces (default: all). */
  readonly watchNamespaces?: string[];
  readonly watchIdleTimeoutMs?: number;
}

/** The caches every replica keeps (the webhook reads them), and the leader's controller too. */
export interface SharedCaches {
  readonly sidecars: ObjectCache;
  readonly pipelines: ObjectCache;
}

/** PipelineSidecars (whole: every field is read) and Pipelines (slimmed: cache-shapes.ts), in the served namespaces. */
export function sharedCaches(o: SharedCacheOptions): SharedCaches {
  const served = o.watchNamespaces?.length ? [...new Set(o.watchNamespaces)] : undefined;
  const inf = (name: string, apiVersion: string, kind: string, extra: Partial<InformerOptions> = {}): ObjectCache => served
    ? NamespacedInformers.fixed(o.kubeConfig, o.client, served, (ns) => collectionPath(apiVersion, kind, ns), { name, log: o.log, watchIdleTimeoutMs: o.watchIdleTimeoutMs, ...extra })
    : new Informer(o.kubeConfig, o.client, { name, path: collectionPath(apiVersion, kind), log: o.log, watchIdleTimeoutMs: o.watchIdleTimeoutMs, ...extra });
  return {
    sidecars: inf('PipelineSidecar', API_VERSION, KIND),
    pipelines: inf('Pipeline', 'tekton.dev/v1', 'Pipeline', { transform: slimPipeline }),
  };
}
