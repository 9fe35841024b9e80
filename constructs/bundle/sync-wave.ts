import { ApiObject } from 'cdk8s';

/** The Argo CD annotation that orders a sync: lower waves are applied (and healthy) first. */
export const SYNC_WAVE_ANNOTATION = 'argocd.argoproj.io/sync-wave';

/**
 * Sync waves of the bundle. CRDs and the Namespace come first so everything namespaced or custom
 * can be applied; RBAC before the pods that use it; the webhook configuration last, once the
 * operator serving it is healthy (its `explicit` webhook fails closed).
 */
export const SYNC_WAVES = {
  crds: -2,
  namespace: -2,
  rbac: -1,
  workload: 0,
  webhook: 1,
} as const;

/** Puts `obj` in sync wave `wave`. */
export function syncWave(obj: ApiObject, wave: number): ApiObject {
  obj.metadata.addAnnotation(SYNC_WAVE_ANNOTATION, String(wave));
  return obj;
}
