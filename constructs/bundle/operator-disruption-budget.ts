import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-27';
import { OPERATOR_SELECTOR } from './defaults';
import { SYNC_WAVES, syncWave } from './sync-wave';

/** Props of OperatorDisruptionBudget. */
export interface OperatorDisruptionBudgetProps {
  /** PDB name. */
  readonly name: string;
  /** The operator's namespace. */
  readonly namespace: string;
}

/** Keeps one operator replica up through voluntary disruptions (node drains): the webhook keeps answering. */
export class OperatorDisruptionBudget extends Construct {
  /** The synthesized PodDisruptionBudget. */
  readonly apiObject: k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, id: string, props: OperatorDisruptionBudgetProps) {
    super(scope, id);
    this.apiObject = new k8s.KubePodDisruptionBudget(this, 'Resource', {
      metadata: { name: props.name, namespace: props.namespace, labels: { ...OPERATOR_SELECTOR } },
      spec: { minAvailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: { ...OPERATOR_SELECTOR } } },
    });
    syncWave(this.apiObject, SYNC_WAVES.workload);
  }
}
