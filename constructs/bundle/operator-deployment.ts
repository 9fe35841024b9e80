import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-27';
import { OPERATOR_PORTS, OPERATOR_SELECTOR } from './defaults';
import { SYNC_WAVES, syncWave } from './sync-wave';

/** Requests and limits as Kubernetes quantities ("100m", "128Mi"). */
export interface ResourceQuantities {
  /** What the scheduler reserves. */
  readonly requests?: Record<string, string>;
  /** The ceiling. */
  readonly limits?: Record<string, string>;
}

/** Props of OperatorDeployment. */
export interface OperatorDeploymentProps {
  /** Name of the Deployment (and of the install). */
  readonly name: string;
  /** The operator's namespace. */
  readonly namespace: string;
  /** The operator image reference. */
  readonly image: string;
  /** Replicas; all serve the webhook, one leads the controller. */
  readonly replicas: number;
  /** ServiceAccount the pods run as. */
  readonly serviceAccountName: string;
  /** The Service the API server calls the webhook through (its DNS names go into the serving certificate). */
  readonly webhookServiceName: string;
  /** The MutatingWebhookConfiguration whose caBundle the operator fills in. */
  readonly webhookConfigName: string;
  /** The leader-election Lease. */
  readonly leaseName: string;
  /** Namespaces the operator serves (`--watch-namespace` each); empty: it watches all. */
  readonly servedNamespaces: string[];
  /**
   * Served namespaces where privileged kinds (DockerDaemon) may run (`--privileged-namespace` each),
   * besides namespaces labelled pipeline-sidecars.dev/allow-privileged=true.
   * @default []
   */
  readonly privilegedNamespaces?: string[];
  /** cert-manager owns the webhook certificate and caBundle: the operator only reads the Secret. */
  readonly externalCa: boolean;
  /** Container resources. */
  readonly resources: ResourceQuantities;
}

const quantities = (m?: Record<string, string>) =>
  m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, k8s.Quantity.fromString(v)])) : undefined;

/**
 * The operator: `pipeline-sidecars run` in every replica, locked down (non-root, read-only root
 * filesystem, no capabilities, RuntimeDefault seccomp, no privilege escalation), spread across
 * nodes and zones, probed on /healthz and /readyz.
 */
export class OperatorDeployment extends Construct {
  /** The synthesized Deployment. */
  readonly apiObject: k8s.KubeDeployment;

  constructor(scope: Construct, id: string, props: OperatorDeploymentProps) {
    super(scope, id);
    const args = [
      'run',
      '--namespace', props.namespace,
      '--webhook-service', props.webhookServiceName,
      '--webhook-config', props.webhookConfigName,
      '--webhook-port', String(OPERATOR_PORTS.webhook),
      '--health-port', String(OPERATOR_PORTS.health),
      '--leader-elect',
      '--lease-name', props.leaseName,
      ...(props.externalCa ? ['--webhook-external-ca'] : []),
      ...props.servedNamespaces.flatMap((ns) => ['--watch-namespace', ns]),
      ...(props.privilegedNamespaces ?? []).flatMap((ns) => ['--privileged-namespace', ns]),
    ];
    const selector = { ...OPERATOR_SELECTOR };
    const probe = (path: string, periodSeconds: number) => ({
      httpGet: { path, port: k8s.IntOrString.fromString('health') },
      periodSeconds, timeoutSeconds: 3, failureThreshold: 3,
    });
    const fieldRef = (fieldPath: string) => ({ valueFrom: { fieldRef: { fieldPath } } });

    this.apiObject = new k8s.KubeDeployment(this, 'Resource', {
      metadata: { name: props.name, namespace: props.namespace, labels: selector },
      spec: {
        replicas: props.replicas,
        revisionHistoryLimit: 3,
        selector: { matchLabels: selector },
        // Surge before taking a replica down: the webhook never drops to zero endpoints in a rollout.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: k8s.IntOrString.fromNumber(0), maxSurge: k8s.IntOrString.fromNumber(1) } },
        template: {
          metadata: { labels: selector },
          spec: {
            serviceAccountName: props.serviceAccountName,
            automountServiceAccountToken: true,
            enableServiceLinks: false,
            terminationGracePeriodSeconds: 30,
            securityContext: {
              runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [{
                  weight: 100,
                  podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selector } },
                }],
              },
            },
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } },
            ],
            containers: [{
              name: 'operator',
              image: props.image,
              imagePullPolicy: 'IfNotPresent',
              args,
              env: [
                { name: 'POD_NAME', ...fieldRef('metadata.name') },
                { name: 'POD_NAMESPACE', ...fieldRef('metadata.namespace') },
                { name: 'NODE_ENV', value: 'production' },
              ],
              ports: [
                { name: 'webhook', containerPort: OPERATOR_PORTS.webhook, protocol: 'TCP' },
                { name: 'health', containerPort: OPERATOR_PORTS.health, protocol: 'TCP' },
              ],
              livenessProbe: { ...probe('/healthz', 10), initialDelaySeconds: 10 },
              readinessProbe: probe('/readyz', 5),
              resources: { requests: quantities(props.resources.requests), limits: quantities(props.resources.limits) },
              securityContext: {
                allowPrivilegeEscalation: false,
                privileged: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            }],
            volumes: [{ name: 'tmp', emptyDir: { sizeLimit: k8s.Quantity.fromString('64Mi') } }],
          },
        },
      },
    });
    syncWave(this.apiObject, SYNC_WAVES.workload);
  }
}
