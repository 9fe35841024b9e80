import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { LABELS, MANAGED_BY, RunIdentity, SidecarIsolation, SidecarPort } from './api/spec';
import { TEKTON_LABELS } from './api/tekton-labels';
import { objectName, ownerReference, selectorLabels, sidecarLabels } from './names';

/** Props of an IsolationPolicy. */
export interface IsolationPolicyProps {
  /** The PipelineRun whose pods may reach the sidecar. */
  readonly run: RunIdentity;
  /** The PipelineSidecar name; selects its pods. */
  readonly sidecarName: string;
  /** The only ports ingress is admitted on. */
  readonly ports: SidecarPort[];
  /** Who may reach the sidecar and where it may go (default: this run's pods, egress unrestricted). */
  readonly isolation?: SidecarIsolation;
}

/**
 * A NetworkPolicy on one sidecar's pods: ingress only from the run's own pods on the sidecar's ports.
 *
 * The run's task pods are selected by `tekton.dev/pipelineRunUID`, never by labels a user can copy
 * onto another run (the run's name, its user labels, our run-id): the uid is the real run's, set by
 * Tekton on the TaskRuns and pods it makes for that run. A run cannot carry it to pass it on (the
 * bundle's BookkeepingPolicy refuses Tekton's run labels on a PipelineRun, which Tekton would copy
 * onto the affinity assistant), nor set it through `spec.taskRunSpecs[].metadata.labels`. A user who
 * may create Pods or TaskRuns in the namespace can write it on those; the bundle's opt-in
 * RunLabelGuard closes that (docs/install.md). Besides task pods, the run's other sidecars are admitted: a DockerDaemon pushing to the run's
 * Registry sidecar is not a task pod, but it is the same run. Those are selected by our managed-by
 * and run-id labels, which task pods cannot carry: Tekton forces managed-by on every pod it makes.
 * Always sent through the raw client: client-node 1.4 drops `from` (kubernetes-client/javascript#2825),
 * which would turn this into allow-all.
 */
export class IsolationPolicy extends Construct {
  /** The synthesized NetworkPolicy. */
  readonly apiObject: ApiObject;
  /** Its name. */
  readonly name: string;

  constructor(scope: Construct, id: string, props: IsolationPolicyProps) {
    super(scope, id);
    const { run, sidecarName, ports } = props;
    const from = props.isolation?.from ?? 'SameRun';
    const egress = props.isolation?.egress;
    this.name = objectName(run, sidecarName, 'isolation');

    let peers: Array<Record<string, unknown>>;
    if (from === 'Namespace') {
      // An empty podSelector with no namespaceSelector means every pod of the policy's namespace.
      peers = [{ podSelector: {} }];
    } else {
      // Always the uid (isolation.matchRunUid is now the only behaviour): a name is reused by the
      // next run of that name and is copied by any run that copies labels.
      const taskPods: Record<string, string> = { [TEKTON_LABELS.pipelineRunUid]: run.uid };
      peers = [
        { podSelector: { matchLabels: taskPods } },
        { podSelector: { matchLabels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.runId]: run.runId } } },
      ];
    }

    const spec: Record<string, unknown> = {
      podSelector: { matchLabels: selectorLabels(run, sidecarName) },
      policyTypes: egress ? ['Ingress', 'Egress'] : ['Ingress'],
      ingress: [{ from: peers, ports: ports.map(p => ({ port: p.port, protocol: p.protocol ?? 'TCP' })) }],
    };
    if (egress) spec.egress = egress;

    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: this.name, namespace: run.namespace, labels: sidecarLabels(run, sidecarName), ownerReferences: [ownerReference(run) as any] },
      spec,
    });
  }
}
