import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { GROUP, KIND, PLURAL, VERSION } from './spec';

/**
 * The PipelineSidecar CustomResourceDefinition, written once here and used by the install bundle
 * (as a construct), by the test harness and by the operator (as a plain object). Its schema mirrors
 * constructs/api/spec.ts; what a structural schema cannot say is in CEL `x-kubernetes-validations`,
 * and what depends on the registered kinds (custom kinds included) is checked by the operator
 * (validateSidecarSpec) and reported in status.conditions.
 */

/**
 * Longest PipelineSidecar name: object names are `<sidecar>-<8-char run id>-client` and must stay
 * within 63 characters without truncation, so users can predict them.
 */
export const MAX_SIDECAR_NAME_LENGTH = 45;

const str = (description?: string, extra: Record<string, unknown> = {}) => ({ type: 'string', ...(description ? { description } : {}), ...extra });
const obj = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'object', properties, ...extra });
const arr = (items: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'array', items, ...extra });
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const freeform = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
const DURATION = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';
const TEKTON_PARAM_NAME = '^[_a-zA-Z][_a-zA-Z0-9.-]*$';
const DNS1123_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

const containerSchema = obj({
  name: str('Container name (DNS-1123 label).', { maxLength: 63 }),
  image: str('Container image.'),
  command: arr({ type: 'string' }),
  args: arr({ type: 'string' }),
  env: arr(obj({ name: str(), value: str(), valueFrom: freeform }, { required: ['name'] })),
  ports: arr(obj({ name: str(undefined, { maxLength: 15 }), containerPort: { type: 'integer', minimum: 1, maximum: 65535 }, protocol: str() }, { required: ['containerPort'] }), { maxItems: 32 }),
  startupProbe: freeform,
  readinessProbe: freeform,
  resources: obj({ requests: stringMap, limits: stringMap }),
  securityContext: freeform,
  volumeMounts: arr(obj({ name: str(), mountPath: str(), readOnly: { type: 'boolean' }, subPath: str() }, { required: ['name', 'mountPath'] })),
  workingDir: str(),
  imagePullPolicy: str(undefined, { enum: ['Always', 'IfNotPresent', 'Never'] }),
}, { required: ['name'] });

/** Option blocks of the built-in kinds and the kind they belong to. */
const KIND_BLOCKS: Record<string, string> = { dockerDaemon: 'DockerDaemon', buildKitDaemon: 'BuildKitDaemon', postgres: 'Postgres', registry: 'Registry', template: 'Container' };

const specSchema: Record<string, any> = {
  type: 'object',
  required: ['kind'],
  // Custom kinds keep their option block under a key of their own (and keepUnknownFields keeps the
  // rest too, for validateSidecarSpec to name).
  'x-kubernetes-preserve-unknown-fields': true,
  properties: {
    selector: obj({
      pipelineRef: str('Runs whose spec.pipelineRef.name equals this.', { maxLength: 253 }),
      matchLabels: stringMap,
    }, { description: 'Runs that get this sidecar without asking by annotation. Both fields must match when both are set.' }),
    kind: str('A registered sidecar kind: Container, DockerDaemon, BuildKitDaemon, Postgres, Registry, or one registered by your platform.', { minLength: 1, maxLength: 63, pattern: '^[A-Z][A-Za-z0-9]*$' }),
    template: obj({ containers: arr(containerSchema, { maxItems: 16 }) }, { description: 'Generic form, for kind Container; mirrors a Tekton Sidecar.' }),
    dockerDaemon: obj({
      tls: { type: 'boolean' }, storageDriver: str(), registryMirrors: arr({ type: 'string' }),
      insecureRegistries: arr({ type: 'string' }), image: str(), storageSize: str(),
    }),
    buildKitDaemon: obj({ image: str() }),
    postgres: obj({ image: str(), database: str(), user: str() }),
    registry: obj({ image: str() }),
    ports: arr(obj({
      name: str('IANA service name, at most 15 characters.', { minLength: 1, maxLength: 15 }),
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      protocol: str(undefined, { enum: ['TCP', 'UDP'] }),
    }, { required: ['name', 'port'] }), {
      maxItems: 32,
      'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'],
      'x-kubernetes-validations': [{ rule: 'self.all(p, self.exists_one(q, q.port == p.port && (has(q.protocol) ? q.protocol : "TCP") == (has(p.protocol) ? p.protocol : "TCP")))', message: 'each port number (per protocol) may be listed once' }],
    }),
    expose: obj({
      params: arr(obj({
        name: str('Tekton param name: letters, digits, "_", "-" and ".", starting with a letter or "_".', { minLength: 1, maxLength: 253, pattern: TEKTON_PARAM_NAME }),
        value: str('May use $(host), $(port) and $(address).', { maxLength: 4096 }),
      }, { required: ['name', 'value'] }), {
        maxItems: 32,
        'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'],
      }),
      workspace: str('Pipeline workspace bound to the client TLS Secret (DNS-1123 label).', { minLength: 1, maxLength: 63, pattern: DNS1123_LABEL }),
    }),
    isolation: obj({
      from: str(undefined, { enum: ['SameRun', 'Namespace'] }),
      matchRunUid: { type: 'boolean' },
      egress: arr(freeform),
    }),
    lifecycle: obj({
      startupTimeout: str('Go-style duration between 1s and 24h, e.g. 90s, 5m (default 5m).', {
        pattern: DURATION, maxLength: 32,
        // Same bounds as constructs/duration.ts STARTUP_TIMEOUT_BOUNDS.
        'x-kubernetes-validations': [{ rule: "duration(self) >= duration('1s') && duration(self) <= duration('24h')", message: 'startupTimeout must be between 1s and 24h' }],
      }),
      onSidecarFailure: str(undefined, { enum: ['Cancel', 'Ignore'] }),
    }),
  },
  'x-kubernetes-validations': [
    { rule: 'self.kind != "Container" || (has(self.template) && has(self.template.containers) && size(self.template.containers) > 0)', message: 'kind Container needs spec.template.containers with at least one container', fieldPath: '.template' },
    ...Object.entries(KIND_BLOCKS).map(([block, kind]) => ({
      rule: `!has(self.${block}) || self.kind == "${kind}"`, message: `spec.${block} is only for kind ${kind}`, fieldPath: `.${block}`,
    })),
    {
      // Kind Container defaults its Service ports to the containers' ports, as validateSidecarSpec does.
      rule: 'self.kind in ["DockerDaemon", "BuildKitDaemon", "Postgres", "Registry"] || (has(self.ports) && size(self.ports) > 0) || ' +
        '(self.kind == "Container" && has(self.template) && has(self.template.containers) && self.template.containers.exists(c, has(c.ports) && size(c.ports) > 0))',
      message: 'spec.ports is required for this kind (only the built-in service kinds, and Container with containerPorts, have default ports)', fieldPath: '.ports',
    },
  ],
};

/**
 * Marks every object of `schema` that lists its properties with x-kubernetes-preserve-unknown-fields.
 * A structural schema otherwise prunes a field it does not know without a word (#11.9): a typo in an
 * option block, or template.hostNetwork, vanished and the spec showed Valid. Kept, such a field is
 * named by validateSidecarSpec (unknownFieldProblems walks this same schema), and the sidecar refused.
 */
function keepUnknownFields(schema: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...schema };
  if (out.properties) {
    out['x-kubernetes-preserve-unknown-fields'] = true;
    out.properties = Object.fromEntries(Object.entries(out.properties).map(([k, v]) => [k, keepUnknownFields(v as Record<string, any>)]));
  }
  if (out.items) out.items = keepUnknownFields(out.items);
  return out;
}

/** The OpenAPI schema of spec, as the CRD has it; validateSidecarSpec reads the known fields from it. */
export const PIPELINE_SIDECAR_SPEC_SCHEMA: Record<string, any> = keepUnknownFields(specSchema);

const statusSchema = obj({
  observedGeneration: { type: 'integer', format: 'int64' },
  activeRuns: { type: 'integer', description: 'Runs not yet done that have this sidecar.' },
  conditions: arr(obj({
    type: str(), status: str(undefined, { enum: ['True', 'False', 'Unknown'] }), reason: str(), message: str(),
    lastTransitionTime: str(undefined, { format: 'date-time' }), observedGeneration: { type: 'integer', format: 'int64' },
  }, { required: ['type', 'status'] }), { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
});

/** The CRD as a plain object (bundle, harness, operator bootstrap). */
export function pipelineSidecarCrd(): Record<string, any> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}`, labels: { 'app.kubernetes.io/part-of': 'pipeline-sidecars' } },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { plural: PLURAL, singular: 'pipelinesidecar', kind: KIND, listKind: `${KIND}List`, shortNames: ['psc'], categories: ['tekton', 'pipeline-sidecars'] },
      versions: [{
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: 'Kind', type: 'string', jsonPath: '.spec.kind' },
          { name: 'Selector', type: 'string', jsonPath: '.spec.selector.pipelineRef', description: 'Pipeline whose runs get it' },
          { name: 'Active', type: 'integer', jsonPath: '.status.activeRuns' },
          { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: {
          openAPIV3Schema: {
            type: 'object',
            description: 'A sidecar that lives as long as a Tekton PipelineRun and is reachable by all its tasks (TEP-0130).',
            required: ['spec'],
            properties: {
              apiVersion: { type: 'string' },
              kind: { type: 'string' },
              metadata: { type: 'object' },
              spec: PIPELINE_SIDECAR_SPEC_SCHEMA,
              status: statusSchema,
            },
            'x-kubernetes-validations': [
              {
                rule: `size(self.metadata.name) <= ${MAX_SIDECAR_NAME_LENGTH}`,
                message: `metadata.name must be at most ${MAX_SIDECAR_NAME_LENGTH} characters: object names are <name>-<run id>-client and must fit in 63`,
                reason: 'FieldValueInvalid',
              },
              {
                rule: 'self.metadata.name.matches("^[a-z]([-a-z0-9]*[a-z0-9])?$")',
                message: 'metadata.name must be a DNS-1035 label (lowercase letters, digits and "-", starting with a letter): it names a Service',
              },
            ],
          },
        },
      }],
    },
  };
}

/** The CRD as a cdk8s construct, for the install bundle chart. */
export class PipelineSidecarCrd extends ApiObject {
  constructor(scope: Construct, id: string) {
    const crd = pipelineSidecarCrd();
    super(scope, id, { apiVersion: crd.apiVersion, kind: crd.kind, metadata: crd.metadata, spec: crd.spec } as any);
  }
}
