import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { ANNOTATIONS } from './spec';

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

const hasSidecarsAnnotation = `has(object.metadata.annotations) && '${ANNOTATIONS.sidecars}' in object.metadata.annotations && object.metadata.annotations['${ANNOTATIONS.sidecars}'] != ''`;

/**
 * The MutatingWebhookConfiguration for PipelineRun CREATE, as two webhooks that share one endpoint:
 *
 * - `explicit`: runs that carry the sidecars annotation. The API server can see they ask, so
 *   failurePolicy Fail: such a run never starts without its sidecars (or a clear rejection).
 * - `selected`: every other run. Whether it asks depends on its Pipeline's annotation or on
 *   PipelineSidecar selectors, which CEL matchConditions cannot read, so the webhook looks them
 *   up. failurePolicy Ignore: an operator outage must not block the cluster's unrelated runs. A
 *   selector-matched run admitted during an outage is not gated; the operator reports it with an Event.
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
      { name: 'explicit.pipelineruns.pipeline-sidecars.dev', ...common, failurePolicy: 'Fail', matchConditions: [{ name: 'asks-by-annotation', expression: hasSidecarsAnnotation }] },
      { name: 'selected.pipelineruns.pipeline-sidecars.dev', ...common, failurePolicy: 'Ignore', matchConditions: [{ name: 'no-annotation', expression: `!(${hasSidecarsAnnotation})` }] },
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
