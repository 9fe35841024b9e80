import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { RESERVED_PREFIX } from './spec';

/** Path the operator serves PipelineRun admission on. */
export const WEBHOOK_PATH = '/mutate-pipelinerun';

export interface WebhookConfigProps {
  /** MutatingWebhookConfiguration name (cluster-scoped: one per operator installation). */
  readonly name: string;
  /** In-cluster: the operator's Service. */
  readonly service?: { readonly namespace: string; readonly name: string; readonly port?: number };
  /** Out-of-cluster (tests, development): a URL such as https://127.0.0.1:9443/mutate-pipelinerun. */
  readonly url?: string;
  /** PEM CA bundle; the operator fills it in at start when it manages its own CA. */
  readonly caBundle?: string;
  /** Only these namespaces (default: all). */
  readonly namespaceSelector?: Record<string, unknown>;
  /** Metadata annotations (cert-manager's inject-ca-from, Argo CD sync waves). */
  readonly annotations?: Record<string, string>;
  readonly timeoutSeconds?: number;
}

/**
 * CEL: the run carries any pipeline-sidecars.dev/ annotation or label, the `sidecars` annotation a
 * user asks with included. Such a run either asks for sidecars or carries keys that are the
 * operator's bookkeeping and must be stripped; neither may be admitted without the webhook.
 */
export const CARRIES_RESERVED_KEYS = ['annotations', 'labels']
  .map((f) => `(has(object.metadata.${f}) && object.metadata.${f}.exists(k, k.startsWith('${RESERVED_PREFIX}')))`)
  .join(' || ');

/**
 * The MutatingWebhookConfiguration for PipelineRun CREATE, as two webhooks that share one endpoint
 * and together see every PipelineRun CREATE in the selected namespaces:
 *
 * - `explicit`: runs that carry any pipeline-sidecars.dev/ annotation or label: the sidecars
 *   annotation a user asks with, or bookkeeping keys (run id, gated, started, ...) a user may not
 *   write and the webhook strips. The API server can see them, so failurePolicy Fail: such a run
 *   never starts without its sidecars, and a run with forged bookkeeping is never admitted while the
 *   webhook is down.
 * - `selected`: every other run. Whether it asks depends on its Pipeline's annotation or on
 *   PipelineSidecar selectors, which CEL matchConditions cannot read, so the webhook looks them
 *   up. failurePolicy Ignore: an operator outage must not block the cluster's unrelated runs. A
 *   selector-matched run admitted during an outage is not gated; the operator reports it with an
 *   Event. It carries no key of ours, so it has no bookkeeping to forge.
 */
export function mutatingWebhookConfiguration(props: WebhookConfigProps): Record<string, any> {
  if (!props.service === !props.url) throw new Error('mutatingWebhookConfiguration: give exactly one of service or url');
  const clientConfig: Record<string, unknown> = props.url
    ? { url: props.url }
    : { service: { namespace: props.service!.namespace, name: props.service!.name, port: props.service!.port ?? 443, path: WEBHOOK_PATH } };
  if (props.caBundle) clientConfig.caBundle = Buffer.from(props.caBundle).toString('base64');
  const common = {
    clientConfig,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    timeoutSeconds: props.timeoutSeconds ?? 10,
    reinvocationPolicy: 'Never',
    rules: [{ apiGroups: ['tekton.dev'], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pipelineruns'], scope: 'Namespaced' }],
    ...(props.namespaceSelector ? { namespaceSelector: props.namespaceSelector } : {}),
  };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: props.name, labels: { 'app.kubernetes.io/part-of': 'pipeline-sidecars' }, ...(props.annotations ? { annotations: props.annotations } : {}) },
    webhooks: [
      { name: 'explicit.pipelineruns.pipeline-sidecars.dev', ...common, failurePolicy: 'Fail', matchConditions: [{ name: 'carries-pipeline-sidecars-keys', expression: CARRIES_RESERVED_KEYS }] },
      { name: 'selected.pipelineruns.pipeline-sidecars.dev', ...common, failurePolicy: 'Ignore', matchConditions: [{ name: 'no-pipeline-sidecars-keys', expression: `!(${CARRIES_RESERVED_KEYS})` }] },
    ],
  };
}

/** The webhook configuration as a cdk8s construct (install bundle). */
export class PipelineRunWebhookConfiguration extends ApiObject {
  constructor(scope: Construct, id: string, props: WebhookConfigProps) {
    const o = mutatingWebhookConfiguration(props);
    super(scope, id, { apiVersion: o.apiVersion, kind: o.kind, metadata: o.metadata, webhooks: o.webhooks } as any);
  }
}
