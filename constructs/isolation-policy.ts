import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { LABELS, MANAGED_BY, RunIdentity, SidecarIsolation, SidecarPort } from './api/spec';
import { objectName, ownerReference, selectorLabels, sidecarLabels } from './names';

/** Labels Tekton puts on a run's TaskRun pods. */
export const TEKTON_LABELS = {
  pipelineRun: 'tekton.dev/pipelineRun',
  pipelineRunUid: 'tekton.dev/pipelineRunUID',
} as const;

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
 * Besides the run's task pods, the run's other sidecars (our run-id label) are admitted too: a
 * DockerDaemon pushing to the run's Registry sidecar is not a task pod, but it is the same run.
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
      const taskPods: Record<string, string> = { [TEKTON_LABELS.pipelineRun]: run.name };
      if (props.isolation?.matchRunUid) taskPods[TEKTON_LABELS.pipelineRunUid] = run.uid;
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
