/**
 * Labels Tekton (v1.15.1: pipelinerun.go createChildResourceLabels, pod.go makeLabels,
 * affinity_assistant.go getStatefulSetLabels) puts on a run's TaskRuns, their pods and the
 * affinity assistant, derived from the real run. Our NetworkPolicies admit a run's task pods by
 * `tekton.dev/pipelineRunUID`, so whoever can put these on a pod can pass for that run's pod.
 */
export const TEKTON_LABELS = {
  pipelineRun: 'tekton.dev/pipelineRun',
  pipelineRunUid: 'tekton.dev/pipelineRunUID',
  taskRun: 'tekton.dev/taskRun',
  taskRunUid: 'tekton.dev/taskRunUID',
  pipelineTask: 'tekton.dev/pipelineTask',
  memberOf: 'tekton.dev/memberOf',
} as const;

/**
 * The labels that say which run an object belongs to. Tekton sets them on what it creates; nobody
 * else has a reason to write them, and on a PipelineRun they are inherited by the affinity
 * assistant, which Tekton labels with every run label and does not override the uid of.
 */
export const TEKTON_RUN_LABELS: readonly string[] = Object.values(TEKTON_LABELS);

/** The identity of Tekton's controller in Tekton's release manifests (its ServiceAccount). */
export const TEKTON_CONTROLLER_USER = 'system:serviceaccount:tekton-pipelines:tekton-pipelines-controller';

/**
 * Who creates the affinity assistant's pods: kube-controller-manager's StatefulSet controller, as its
 * own ServiceAccount (`--use-service-account-credentials`, kubeadm's default) or as the controller
 * manager itself.
 */
export const POD_CONTROLLER_USERS: readonly string[] = [
  'system:serviceaccount:kube-system:statefulset-controller',
  'system:kube-controller-manager',
];
