import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-27';
import { GROUP } from '../api/spec';
import { leaseName, namespaceRoleName, webhookTlsSecretName } from './defaults';
import { SYNC_WAVES, syncWave } from './sync-wave';

/** One RBAC rule, as the API takes it. */
export interface PolicyRule {
  /** API groups ('' is core). */
  readonly apiGroups: string[];
  /** Resources (and subresources like pipelinesidecars/status). */
  readonly resources: string[];
  /** Only these object names (never applies to create, list, watch or deletecollection). */
  readonly resourceNames?: string[];
  /** Verbs. */
  readonly verbs: string[];
}

const READ = ['get', 'list', 'watch'];
/** What the reconciler does to a run's objects: SSA (patch, create-on-patch), Secret create, delete, and delete by label. */
const WRITE = ['create', 'patch', 'delete', 'deletecollection'];

/**
 * Cluster-wide grants (ClusterRoleBinding). Reads only, except: patch on PipelineRuns (ungate or
 * cancel a run, in any namespace a run was gated in), status of PipelineSidecars, Events, and the
 * one webhook configuration of this install. No Secrets, and no writes of workloads: creating a
 * Deployment in a namespace is as good as reading its Secrets (a pod can mount any of them), so
 * those writes are granted per served namespace by `namespaceRules`.
 */
export function clusterRules(webhookConfigName: string): PolicyRule[] {
  return [
    { apiGroups: ['tekton.dev'], resources: ['pipelineruns'], verbs: [...READ, 'patch'] },
    { apiGroups: ['tekton.dev'], resources: ['pipelines'], verbs: READ },
    { apiGroups: [GROUP], resources: ['pipelinesidecars'], verbs: READ },
    { apiGroups: [GROUP], resources: ['pipelinesidecars/status'], verbs: ['patch', 'update'] },
    // Informers over every run's objects (label-selected), pods for readiness causes, namespaces for allow-privileged.
    { apiGroups: ['apps'], resources: ['deployments'], verbs: READ },
    { apiGroups: [''], resources: ['services', 'serviceaccounts', 'pods', 'namespaces'], verbs: READ },
    { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: READ },
    { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
    { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: [webhookConfigName], verbs: ['get', 'patch'] },
  ];
}

/**
 * Grants in each served namespace (a RoleBinding to this ClusterRole): the per-run objects,
 * Secrets included. ownerReferences to PipelineRuns need nothing more: they carry
 * blockOwnerDeletion false, so no `update` on pipelineruns/finalizers.
 */
export function namespaceRules(): PolicyRule[] {
  return [
    { apiGroups: ['apps'], resources: ['deployments'], verbs: WRITE },
    { apiGroups: [''], resources: ['services', 'serviceaccounts'], verbs: WRITE },
    { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: WRITE },
    { apiGroups: [''], resources: ['secrets'], verbs: [...READ, ...WRITE] },
    // A sidecar may read a ConfigMap only if it is labelled for sidecar use: the operator checks.
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
  ];
}

/**
 * Grants in the operator's own namespace (Role): its leader-election Lease and its webhook
 * serving-certificate Secret, by name. `create` cannot be limited by name (the name is not known
 * when it is authorized), so it is granted on the kind, in this namespace only.
 */
export function ownNamespaceRules(name: string): PolicyRule[] {
  return [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [leaseName(name)], verbs: ['get', 'update', 'patch'] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    { apiGroups: [''], resources: ['secrets'], resourceNames: [webhookTlsSecretName(name)], verbs: ['get', 'update', 'patch'] },
  ];
}

/** Props of OperatorRbac. */
export interface OperatorRbacProps {
  /** Name of the roles, bindings and ServiceAccount (also the webhook configuration's). */
  readonly name: string;
  /** The operator's namespace (its ServiceAccount, Lease and webhook Secret live here). */
  readonly namespace: string;
  /** The MutatingWebhookConfiguration the operator may read and patch (caBundle). */
  readonly webhookConfigName: string;
}

/**
 * The operator's ServiceAccount and its cluster-wide and own-namespace RBAC, plus the ClusterRole
 * that ServedNamespace binds in each namespace it serves.
 */
export class OperatorRbac extends Construct {
  /** The ServiceAccount the operator runs as. */
  readonly serviceAccountName: string;
  /** The ClusterRole a served namespace binds (RoleBinding). */
  readonly namespaceRoleName: string;

  constructor(scope: Construct, id: string, props: OperatorRbacProps) {
    super(scope, id);
    const { name, namespace } = props;
    this.serviceAccountName = name;
    this.namespaceRoleName = namespaceRoleName(name);
    const subjects = [{ kind: 'ServiceAccount', name, namespace }];
    const roleRef = (kind: 'ClusterRole' | 'Role', roleName: string) => ({ apiGroup: 'rbac.authorization.k8s.io', kind, name: roleName });

    syncWave(new k8s.KubeServiceAccount(this, 'ServiceAccount', { metadata: { name, namespace } }), SYNC_WAVES.rbac);
    syncWave(new k8s.KubeClusterRole(this, 'ClusterRole', { metadata: { name }, rules: clusterRules(props.webhookConfigName) }), SYNC_WAVES.rbac);
    syncWave(new k8s.KubeClusterRoleBinding(this, 'ClusterRoleBinding', { metadata: { name }, roleRef: roleRef('ClusterRole', name), subjects }), SYNC_WAVES.rbac);
    syncWave(new k8s.KubeRole(this, 'Role', { metadata: { name, namespace }, rules: ownNamespaceRules(name) }), SYNC_WAVES.rbac);
    syncWave(new k8s.KubeRoleBinding(this, 'RoleBinding', { metadata: { name, namespace }, roleRef: roleRef('Role', name), subjects }), SYNC_WAVES.rbac);
    syncWave(new k8s.KubeClusterRole(this, 'NamespaceRole', { metadata: { name: this.namespaceRoleName }, rules: namespaceRules() }), SYNC_WAVES.rbac);
  }
}
