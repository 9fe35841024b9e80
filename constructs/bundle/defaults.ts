/**
 * Names, ports and defaults of the install bundle, in one place. The runtime takes its webhook
 * Service default from here (WEBHOOK_SERVICE_NAME); its other defaults (src/webhook.ts,
 * src/operator.ts: configuration, Secret and Lease names) repeat these names: keep them in step.
 */

/** Version of the operator the bundle installs; equals package.json's version (a test checks). */
export const OPERATOR_VERSION = '0.1.0';

/** The defaults every InstallBundle prop falls back to. */
export const BUNDLE_DEFAULTS = {
  /** The operator image, tagged with this package's version. */
  image: `ghcr.io/pipeline-sidecars/operator:${OPERATOR_VERSION}`,
  /** Namespace the operator runs in. */
  namespace: 'pipeline-sidecars',
  /** Name of the ServiceAccount, Deployment, Service, PDB, RBAC objects and webhook configuration. */
  name: 'pipeline-sidecars',
  /** Operator replicas: the webhook stays up while one restarts; one leads the controller. */
  replicas: 2,
  /** Container resources of one replica. */
  resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
  /** Namespaces served out of the box: none, onboard them explicitly (docs/install.md). */
  servedNamespaces: [] as string[],
  /** cert-manager issues the webhook certificate instead of the operator. */
  certManager: false,
} as const;

/**
 * The webhook Service of an install with the default name: the bundle names its Service after the
 * install, and an operator told no other Service (`--webhook-service`, `WebhookOptions.service`)
 * assumes this one in its own namespace, so its serving certificate names the host the API server calls.
 */
export const WEBHOOK_SERVICE_NAME: string = BUNDLE_DEFAULTS.name;

/** Ports the operator listens on (container side) and what its Service exposes. */
export const OPERATOR_PORTS = {
  /** HTTPS admission webhook, in the container. */
  webhook: 8443,
  /** The Service port the API server calls the webhook on. */
  webhookService: 443,
  /** /healthz, /readyz and /metrics (plain HTTP). */
  health: 8080,
} as const;

/** The ClusterRole bound in every served namespace (RoleBinding), named after the install. */
export const namespaceRoleName = (name: string) => `${name}-namespace`;
/** The Lease the replicas elect a leader with (src/operator.ts default). */
export const leaseName = (name: string) => `${name}-leader`;
/** The Secret holding the webhook serving certificate (src/webhook.ts default: `<config name>-webhook-tls`). */
export const webhookTlsSecretName = (name: string) => `${name}-webhook-tls`;

/** Labels on every object of the bundle. */
export const BUNDLE_LABELS = {
  'app.kubernetes.io/name': 'pipeline-sidecars',
  'app.kubernetes.io/part-of': 'pipeline-sidecars',
} as const;

/** Labels the operator pods carry and are selected by (stable across versions: selectors are immutable). */
export const OPERATOR_SELECTOR = {
  'app.kubernetes.io/name': 'pipeline-sidecars',
  'app.kubernetes.io/component': 'operator',
} as const;
