import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-27';
import { OPERATOR_PORTS, OPERATOR_SELECTOR, WEBHOOK_SERVICE_NAME } from './defaults';
import { SYNC_WAVES, syncWave } from './sync-wave';

/** Props of OperatorService. */
export interface OperatorServiceProps {
  /**
   * Service name; the webhook configuration, the operator's `--webhook-service` and so its serving
   * certificate refer to it.
   * @default WEBHOOK_SERVICE_NAME (`pipeline-sidecars`), the name an operator assumes when told none
   */
  readonly name?: string;
  /** The operator's namespace. */
  readonly namespace: string;
}

/** The operator's Service: the admission webhook on 443 (to 8443) and /metrics on 8080, across all ready replicas. */
export class OperatorService extends Construct {
  /** The synthesized Service. */
  readonly apiObject: k8s.KubeService;

  constructor(scope: Construct, id: string, props: OperatorServiceProps) {
    super(scope, id);
    this.apiObject = new k8s.KubeService(this, 'Resource', {
      metadata: { name: props.name ?? WEBHOOK_SERVICE_NAME, namespace: props.namespace, labels: { ...OPERATOR_SELECTOR } },
      spec: {
        type: 'ClusterIP',
        selector: { ...OPERATOR_SELECTOR },
        ports: [
          { name: 'https-webhook', port: OPERATOR_PORTS.webhookService, targetPort: k8s.IntOrString.fromString('webhook'), protocol: 'TCP' },
          { name: 'http-metrics', port: OPERATOR_PORTS.health, targetPort: k8s.IntOrString.fromString('health'), protocol: 'TCP' },
        ],
      },
    });
    syncWave(this.apiObject, SYNC_WAVES.workload);
  }
}
