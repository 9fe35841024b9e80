import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-27';
import { SYNC_WAVES, syncWave } from './sync-wave';

/** Label on the RoleBindings that onboard a namespace: `kubectl get rolebindings -A -l pipeline-sidecars.dev/served-namespace` lists them. */
export const SERVED_NAMESPACE_LABEL = 'pipeline-sidecars.dev/served-namespace';

/** Props of ServedNamespace. */
export interface ServedNamespaceProps {
  /** The namespace whose PipelineRuns get sidecars. */
  readonly namespace: string;
  /** Name of the RoleBinding (the install's name). */
  readonly name: string;
  /** The per-namespace ClusterRole to bind (OperatorRbac.namespaceRoleName). */
  readonly clusterRoleName: string;
  /** The operator's ServiceAccount. */
  readonly serviceAccount: { readonly name: string; readonly namespace: string };
}

/**
 * Onboards one namespace: a RoleBinding there to the per-namespace ClusterRole, which lets the
 * operator create its per-run objects (Secrets included) in that namespace and nowhere else.
 */
export class ServedNamespace extends Construct {
  constructor(scope: Construct, id: string, props: ServedNamespaceProps) {
    super(scope, id);
    syncWave(new k8s.KubeRoleBinding(this, 'RoleBinding', {
      metadata: { name: props.name, namespace: props.namespace, labels: { [SERVED_NAMESPACE_LABEL]: 'true' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: props.clusterRoleName },
      subjects: [{ kind: 'ServiceAccount', name: props.serviceAccount.name, namespace: props.serviceAccount.namespace }],
    }), SYNC_WAVES.rbac);
  }
}
