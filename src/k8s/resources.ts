/**
 * REST paths for the kinds this project reads and writes. A static table rather than discovery:
 * the set is small and fixed, and discovery would cost requests on every start.
 */

interface KindInfo { readonly plural: string; readonly namespaced: boolean }

const KINDS: Record<string, KindInfo> = {
  'v1/Namespace': { plural: 'namespaces', namespaced: false },
  'v1/ServiceAccount': { plural: 'serviceaccounts', namespaced: true },
  'v1/Service': { plural: 'services', namespaced: true },
  'v1/Secret': { plural: 'secrets', namespaced: true },
  'v1/ConfigMap': { plural: 'configmaps', namespaced: true },
  'v1/Pod': { plural: 'pods', namespaced: true },
  'v1/Event': { plural: 'events', namespaced: true },
  'v1/Node': { plural: 'nodes', namespaced: false },
  'events.k8s.io/v1/Event': { plural: 'events', namespaced: true },
  'apps/v1/Deployment': { plural: 'deployments', namespaced: true },
  'networking.k8s.io/v1/NetworkPolicy': { plural: 'networkpolicies', namespaced: true },
  'policy/v1/PodDisruptionBudget': { plural: 'poddisruptionbudgets', namespaced: true },
  'coordination.k8s.io/v1/Lease': { plural: 'leases', namespaced: true },
  'rbac.authorization.k8s.io/v1/ClusterRole': { plural: 'clusterroles', namespaced: false },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': { plural: 'clusterrolebindings', namespaced: false },
  'rbac.authorization.k8s.io/v1/Role': { plural: 'roles', namespaced: true },
  'rbac.authorization.k8s.io/v1/RoleBinding': { plural: 'rolebindings', namespaced: true },
  'apiextensions.k8s.io/v1/CustomResourceDefinition': { plural: 'customresourcedefinitions', namespaced: false },
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': { plural: 'mutatingwebhookconfigurations', namespaced: false },
  'admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration': { plural: 'validatingwebhookconfigurations', namespaced: false },
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy': { plural: 'validatingadmissionpolicies', namespaced: false },
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding': { plural: 'validatingadmissionpolicybindings', namespaced: false },
  'tekton.dev/v1/Pipeline': { plural: 'pipelines', namespaced: true },
  'tekton.dev/v1/PipelineRun': { plural: 'pipelineruns', namespaced: true },
  'tekton.dev/v1/TaskRun': { plural: 'taskruns', namespaced: true },
  'pipeline-sidecars.dev/v1alpha1/PipelineSidecar': { plural: 'pipelinesidecars', namespaced: true },
};

/** The fields of an object that locate it. */
export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
}

function info(apiVersion: string, kind: string): KindInfo {
  const k = KINDS[`${apiVersion}/${kind}`];
  if (!k) throw new Error(`no REST mapping for ${apiVersion} ${kind}: add it to src/k8s/resources.ts`);
  return k;
}

/** The collection path, e.g. /apis/apps/v1/namespaces/ci/deployments. `namespace` overrides the object's. */
export function collectionPath(apiVersion: string, kind: string, namespace?: string): string {
  const k = info(apiVersion, kind);
  const prefix = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  if (!k.namespaced) return `${prefix}/${k.plural}`;
  return namespace ? `${prefix}/namespaces/${namespace}/${k.plural}` : `${prefix}/${k.plural}`;
}

/** The object path, e.g. /apis/apps/v1/namespaces/ci/deployments/docker-abc123. */
export function objectPath(obj: ObjectRef): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`${obj.kind} has no metadata.name`);
  const k = info(obj.apiVersion, obj.kind);
  if (k.namespaced && !obj.metadata?.namespace) throw new Error(`${obj.kind} ${name} has no metadata.namespace`);
  return `${collectionPath(obj.apiVersion, obj.kind, obj.metadata?.namespace)}/${encodeURIComponent(name)}`;
}

/** Whether the kind is namespaced (unknown kinds throw with a pointer to this table). */
export function isNamespaced(apiVersion: string, kind: string): boolean {
  return info(apiVersion, kind).namespaced;
}
