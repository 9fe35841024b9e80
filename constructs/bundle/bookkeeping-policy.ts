import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { ANNOTATIONS, RESERVED_PREFIX } from '../api/spec';
import { TEKTON_CONTROLLER_USER } from '../api/tekton-labels';
import { SYNC_WAVES, syncWave } from './sync-wave';
import { celList, changedRunLabels } from './run-label-cel';

/** Label-key prefix of the labels Tekton derives from the real PipelineRun (our NetworkPolicies select task pods by one). */
export const TEKTON_RUN_LABEL_PREFIX = 'tekton.dev/pipelineRun';

/** Props of BookkeepingPolicy. */
export interface BookkeepingPolicyProps {
  /** Name of the ValidatingAdmissionPolicy and its binding (the install's name). */
  readonly name: string;
  /** The operator's ServiceAccount: the only identity that may change a run's bookkeeping after CREATE. */
  readonly serviceAccount: { readonly namespace: string; readonly name: string };
  /** Only runs in namespaces matching this (the served namespaces); default all. */
  readonly namespaceSelector?: Record<string, unknown>;
  /**
   * The users who may set Tekton's run labels on a PipelineRun: Tekton's controller, which labels
   * the child runs of pipelines in pipelines so.
   * @default [TEKTON_CONTROLLER_USER]
   */
  readonly tektonControllerUsers?: readonly string[];
}

const P = RESERVED_PREFIX;

/**
 * CEL: the pipeline-sidecars.dev/ keys of `field` (annotations or labels) whose entry differs
 * between oldObject and object. One exemption: the `sidecars` annotation of a run without a run id
 * (the webhook never took it on, so it has no bookkeeping to protect). Tekton's controller copies a
 * Pipeline's annotations onto its runs after CREATE (pipelinerun.go storePipelineSpecAndMergeMeta),
 * and the Pipeline's `sidecars` annotation is a documented way to ask; a run the webhook admitted
 * already carries it, so only such runs see that copy.
 */
function changedKeys(field: 'annotations' | 'labels'): string {
  const o = `variables.old_${field}`;
  const n = `variables.new_${field}`;
  const ours = field === 'annotations'
    ? `k.startsWith('${P}') && !(k == '${ANNOTATIONS.sidecars}' && !('${ANNOTATIONS.runId}' in ${o}))`
    : `k.startsWith('${P}')`;
  return `${o}.filter(k, ${ours} && (!(k in ${n}) || ${n}[k] != ${o}[k])) + ${n}.filter(k, ${ours} && !(k in ${o}))`;
}

/**
 * The ValidatingAdmissionPolicy and binding that keep a PipelineRun's bookkeeping the operator's:
 *
 * - after CREATE, no pipeline-sidecars.dev/ annotation or label of a PipelineRun may be added,
 *   changed or removed except by the operator's ServiceAccount (at CREATE the webhook strips what a
 *   user wrote and sets its own);
 * - no PipelineRun may set `tekton.dev/pipelineRun*` or pipeline-sidecars.dev/ labels through
 *   `spec.taskRunSpecs[].metadata.labels`: Tekton gives those precedence over the labels it derives
 *   from the real run, which would let a run's pods pass for another run's in our NetworkPolicies;
 * - no PipelineRun may carry Tekton's run labels (TEKTON_RUN_LABELS) in its own labels, at CREATE
 *   or added later, unless Tekton's controller writes them: Tekton copies a run's labels onto its
 *   affinity-assistant StatefulSet and pod, and keeps a copied `tekton.dev/pipelineRunUID` there,
 *   so that pod would pass for another run's. Refused rather than stripped: a policy cannot
 *   mutate, it holds while our webhook is down, and the author sees why instead of losing labels.
 *
 * A policy runs inside the API server, so it holds while the operator and its webhook are down.
 */
export function bookkeepingPolicy(props: BookkeepingPolicyProps): Array<Record<string, any>> {
  const username = `system:serviceaccount:${props.serviceAccount.namespace}:${props.serviceAccount.name}`;
  const tekton = props.tektonControllerUsers ?? [TEKTON_CONTROLLER_USER];
  const policy = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: props.name },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [{ apiGroups: ['tekton.dev'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['pipelineruns'] }],
      },
      variables: [
        { name: 'old_annotations', expression: `request.operation == 'UPDATE' && has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {}` },
        { name: 'new_annotations', expression: 'has(object.metadata.annotations) ? object.metadata.annotations : {}' },
        { name: 'old_labels', expression: `request.operation == 'UPDATE' && has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}` },
        { name: 'new_labels', expression: 'has(object.metadata.labels) ? object.metadata.labels : {}' },
        { name: 'changed', expression: `request.operation != 'UPDATE' ? [] : (${changedKeys('annotations')}).map(k, 'annotation ' + k) + (${changedKeys('labels')}).map(k, 'label ' + k)` },
        {
          name: 'forged_task_labels',
          expression: `!has(object.spec) || !has(object.spec.taskRunSpecs) ? [] : object.spec.taskRunSpecs.filter(t, has(t.metadata) && has(t.metadata.labels)).map(t, t.metadata.labels.filter(k, k.startsWith('${TEKTON_RUN_LABEL_PREFIX}') || k.startsWith('${P}'))).filter(l, size(l) > 0).map(l, l.join(', '))`,
        },
        { name: 'tekton_run_labels', expression: changedRunLabels('variables.old_labels', 'variables.new_labels') },
      ],
      validations: [
        {
          expression: `request.userInfo.username == '${username}' || size(variables.changed) == 0`,
          messageExpression: `'${P} annotations and labels of a PipelineRun are pipeline-sidecars bookkeeping; only ${username} may change them after creation (changed: ' + variables.changed.join(', ') + ')'`,
          reason: 'Forbidden',
        },
        {
          expression: 'size(variables.forged_task_labels) == 0',
          messageExpression: `'spec.taskRunSpecs[].metadata.labels may not set ' + variables.forged_task_labels.join(', ') + ': Tekton derives ${TEKTON_RUN_LABEL_PREFIX}* labels from the real run and ${P} labels are pipeline-sidecars bookkeeping; remove them'`,
          reason: 'Forbidden',
        },
        {
          expression: `request.userInfo.username in ${celList(tekton)} || size(variables.tekton_run_labels) == 0`,
          messageExpression: `'a PipelineRun may not carry the labels ' + variables.tekton_run_labels.join(', ') + ': Tekton sets them from the real run on what it creates, and copies the labels of a run onto its affinity-assistant pod, which would then pass for a pod of another run; remove them (Tekton adds the right ones itself)'`,
          reason: 'Forbidden',
        },
      ],
    },
  };
  const binding = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: props.name },
    spec: {
      policyName: props.name,
      validationActions: ['Deny'],
      ...(props.namespaceSelector ? { matchResources: { namespaceSelector: props.namespaceSelector } } : {}),
    },
  };
  return [policy, binding];
}

/** BookkeepingPolicy as a construct (install bundle): the policy and its binding. */
export class BookkeepingPolicy extends Construct {
  constructor(scope: Construct, id: string, props: BookkeepingPolicyProps) {
    super(scope, id);
    const [policy, binding] = bookkeepingPolicy(props);
    syncWave(new ApiObject(this, 'Policy', policy as any), SYNC_WAVES.rbac);
    syncWave(new ApiObject(this, 'Binding', binding as any), SYNC_WAVES.rbac);
  }
}
