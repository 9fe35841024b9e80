import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { POD_CONTROLLER_USERS, TEKTON_CONTROLLER_USER } from '../api/tekton-labels';
import { celList, changedRunLabels, mapAt } from './run-label-cel';
import { SYNC_WAVES, syncWave } from './sync-wave';

/** Props of RunLabelGuard. */
export interface RunLabelGuardProps {
  /** Name of the ValidatingAdmissionPolicy and its binding. */
  readonly name: string;
  /** Only objects in namespaces matching this (the served namespaces). */
  readonly namespaceSelector: Record<string, unknown>;
  /**
   * The users who may write Tekton's run labels: Tekton's controller (TaskRuns, their pods, the
   * affinity assistant's StatefulSet) and whoever creates the StatefulSet's pods.
   * @default [TEKTON_CONTROLLER_USER, ...POD_CONTROLLER_USERS]
   */
  readonly trustedUsers?: readonly string[];
}

/** Resources whose labels, or whose pod template's labels, end up on a pod; and where those labels are. */
const GUARDED: ReadonlyArray<{ group: string; resources: string[]; labels: readonly string[] }> = [
  { group: '', resources: ['pods'], labels: ['metadata', 'labels'] },
  // Tekton copies a TaskRun's labels onto its pod, and sets the pipelineRun ones only for a run's own TaskRuns.
  { group: 'tekton.dev', resources: ['taskruns'], labels: ['metadata', 'labels'] },
  { group: 'apps', resources: ['statefulsets', 'deployments', 'replicasets', 'daemonsets'], labels: ['spec', 'template', 'metadata', 'labels'] },
  { group: '', resources: ['replicationcontrollers'], labels: ['spec', 'template', 'metadata', 'labels'] },
  { group: 'batch', resources: ['jobs'], labels: ['spec', 'template', 'metadata', 'labels'] },
  { group: 'batch', resources: ['cronjobs'], labels: ['spec', 'jobTemplate', 'spec', 'template', 'metadata', 'labels'] },
];

/** CEL: the labels that reach a pod from `root` (object or oldObject), by the request's resource. */
function podLabels(root: string): string {
  const [first, ...rest] = GUARDED;
  let expr = mapAt(root, first.labels);
  for (const g of rest.reverse()) {
    expr = `(request.resource.resource in ${celList(g.resources)} ? ${mapAt(root, g.labels)} : ${expr})`;
  }
  return expr;
}

/**
 * An opt-in ValidatingAdmissionPolicy that closes the same-namespace gap of run isolation: our
 * NetworkPolicies admit a run's pods by Tekton's `tekton.dev/pipelineRunUID` label, and a
 * NetworkPolicy cannot tell who made a pod. Admission can. With this policy, only the trusted users
 * may create Pods, TaskRuns or pod templates (StatefulSets, Deployments, ReplicaSets, DaemonSets,
 * ReplicationControllers, Jobs, CronJobs) carrying Tekton's run labels, or add or change those
 * labels later. Someone who may only create Pods in a served namespace then cannot reach another
 * run's sidecars by labelling a pod as that run's.
 *
 * Opt-in because it names identities that differ between clusters (Tekton's ServiceAccount, how
 * kube-controller-manager authenticates); a wrong list would refuse Tekton's own pods. Controllers
 * of other workload kinds (Argo Rollouts and the like) are not covered: their pods come from the
 * trusted controller manager only if those kinds' templates are clean, which this policy cannot see.
 */
export class RunLabelGuard extends Construct {
  /** The policy, as a plain object. */
  readonly policy: Record<string, any>;

  constructor(scope: Construct, id: string, props: RunLabelGuardProps) {
    super(scope, id);
    const trusted = props.trustedUsers ?? [TEKTON_CONTROLLER_USER, ...POD_CONTROLLER_USERS];
    if (trusted.length === 0) throw new Error('RunLabelGuard: trustedUsers is empty, so Tekton itself could not label its pods; list Tekton\'s controller user at least');
    const rules = GUARDED.map((g) => ({ apiGroups: [g.group], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: g.resources }));
    this.policy = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: props.name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: rules },
        variables: [
          { name: 'old_labels', expression: `request.operation == 'UPDATE' ? ${podLabels('oldObject')} : {}` },
          { name: 'new_labels', expression: podLabels('object') },
          { name: 'written', expression: changedRunLabels('variables.old_labels', 'variables.new_labels') },
        ],
        validations: [{
          expression: `request.userInfo.username in ${celList(trusted)} || size(variables.written) == 0`,
          messageExpression: `'the labels ' + variables.written.join(', ') + ' say which Tekton run a pod belongs to, and pipeline-sidecars admits such pods to the sidecars of that run; only Tekton may set them (${trusted.join(', ')}). Remove them from this ' + request.kind.kind`,
          reason: 'Forbidden',
        }],
      },
    };
    syncWave(new ApiObject(this, 'Policy', this.policy as any), SYNC_WAVES.rbac);
    syncWave(new ApiObject(this, 'Binding', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: props.name },
      spec: { policyName: props.name, validationActions: ['Deny'], matchResources: { namespaceSelector: props.namespaceSelector } },
    } as any), SYNC_WAVES.rbac);
  }
}
