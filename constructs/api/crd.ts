import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from './spec';

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

const str = (description: string, extra: Record<string, unknown> = {}) => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Record<string, unknown> = {}) => ({ type: 'integer', description, ...extra });
const bool = (description: string) => ({ type: 'boolean', description });
const obj = (description: string, properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'object', description, properties, ...extra });
const arr = (description: string, items: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ type: 'array', description, items, ...extra });
const strings = (description: string) => arr(description, { type: 'string' });
const stringMap = (description: string) => ({ type: 'object', description, additionalProperties: { type: 'string' } });
const freeform = (description: string) => ({ type: 'object', description, 'x-kubernetes-preserve-unknown-fields': true });
const image = (defaultImage: string) => str(`Container image (default ${defaultImage}).`);
const DURATION = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';
const TEKTON_PARAM_NAME = '^[_a-zA-Z][_a-zA-Z0-9.-]*$';
const DNS1123_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
const PORT = { minimum: 1, maximum: 65535 };

const containerSchema = obj('A container of the sidecar pod; the fields mean what they mean in a core v1 Container.', {
  name: str('Container name (DNS-1123 label), unique in the template.', { maxLength: 63 }),
  image: str('Container image (required).'),
  command: strings('Entrypoint (default: the image\'s).'),
  args: strings('Arguments to the entrypoint (default: the image\'s).'),
  env: arr('Environment variables.', obj('An environment variable.', {
    name: str('Variable name.'),
    value: str('Value (default "").'),
    valueFrom: freeform('Source of the value, as in a core v1 EnvVar; a Secret or ConfigMap it reads must be labelled pipeline-sidecars.dev/sidecar-use=true.'),
  }, { required: ['name'] })),
  ports: arr('Ports the container listens on; with no spec.ports they become the Service ports.', obj('A container port.', {
    name: str('Port name (at most 15 characters); the Service port gets it (default port-<containerPort>).', { maxLength: 15 }),
    containerPort: int('Port number.', PORT),
    protocol: str('TCP (default) or UDP.'),
  }, { required: ['containerPort'] }), { maxItems: 32 }),
  startupProbe: freeform('Startup probe, as in a core v1 Container.'),
  readinessProbe: freeform('Readiness probe, as in a core v1 Container: the run is held pending until every sidecar pod is Ready.'),
  resources: obj('Compute resources (default none: use a LimitRange).', {
    requests: stringMap('Resources the scheduler reserves, e.g. cpu: 100m.'),
    limits: stringMap('Resource ceilings, e.g. memory: 1Gi.'),
  }),
  securityContext: freeform('Security context, as in a core v1 Container; beyond the Pod Security baseline profile only where the namespace allows privileged sidecars.'),
  volumeMounts: arr('Volume mounts.', obj('A volume mount.', {
    name: str('Volume name.'),
    mountPath: str('Path in the container.'),
    readOnly: bool('Mount read-only (default false).'),
    subPath: str('Path within the volume (default its root).'),
  }, { required: ['name', 'mountPath'] })),
  workingDir: str('Working directory (default: the image\'s).'),
  imagePullPolicy: str('Always, IfNotPresent (default) or Never.', { enum: ['Always', 'IfNotPresent', 'Never'] }),
}, { required: ['name'] });

/** Option blocks of the built-in kinds and the kind they belong to. */
const KIND_BLOCKS: Record<string, string> = { dockerDaemon: 'DockerDaemon', buildKitDaemon: 'BuildKitDaemon', postgres: 'Postgres', registry: 'Registry', template: 'Container' };

const specSchema: Record<string, any> = {
  type: 'object',
  description: 'What the sidecar is, which runs get it, who may reach it and how long it may take to start.',
  required: ['kind'],
  // Custom kinds keep their option block under a key of their own (and keepUnknownFields keeps the
  // rest too, for validateSidecarSpec to name).
  'x-kubernetes-preserve-unknown-fields': true,
  properties: {
    selector: obj('Runs of this namespace that get this sidecar without asking by annotation. Both fields must match when both are set; with neither, no run is selected.', {
      pipelineRef: str('Runs whose spec.pipelineRef.name equals this.', { maxLength: 253 }),
      matchLabels: stringMap('Runs whose labels include all of these (an empty map matches every run).'),
    }),
    kind: str('A registered sidecar kind: Container, DockerDaemon, BuildKitDaemon, Postgres, Registry, or one registered by your platform.', { minLength: 1, maxLength: 63, pattern: '^[A-Z][A-Za-z0-9]*$' }),
    template: obj('Options of kind Container: the containers of the sidecar pod, as in a Tekton Sidecar.', {
      containers: arr('The containers (at least one).', containerSchema, { maxItems: 16 }),
    }),
    dockerDaemon: obj('Options of kind DockerDaemon (docker:dind, privileged).', {
      tls: bool('Serve mutual TLS on 2376 with certificates the operator mints for the run (default true); false serves plain TCP on 2375 with no client authentication.'),
      storageDriver: str('dockerd --storage-driver (default overlay2).'),
      registryMirrors: strings('dockerd --registry-mirror values, http(s):// URLs (default none).'),
      insecureRegistries: strings('dockerd --insecure-registry values (default none), e.g. a Registry sidecar of the same run.'),
      image: image('docker:27-dind'),
      storageSize: str('sizeLimit of the emptyDir at /var/lib/docker, e.g. 20Gi (default no limit).'),
    }),
    buildKitDaemon: obj('Options of kind BuildKitDaemon (rootless buildkitd, mutual TLS on 1234).', { image: image('moby/buildkit:rootless') }),
    postgres: obj('Options of kind Postgres (credentials in the client Secret).', {
      image: image('postgres:15'),
      database: str('Database name (default app).'),
      user: str('User name (default app).'),
    }),
    registry: obj('Options of kind Registry (an OCI registry on plain HTTP, port 5000).', { image: image('registry:2') }),
    ports: arr('Ports the sidecar\'s Service exposes (default: the kind\'s; for Container, its containers\' ports).', obj('A Service port.', {
      name: str('IANA service name, at most 15 characters.', { minLength: 1, maxLength: 15 }),
      port: int('Port number.', PORT),
      protocol: str('TCP (default) or UDP.', { enum: ['TCP', 'UDP'] }),
    }, { required: ['name', 'port'] }), {
      maxItems: 32,
      'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'],
      'x-kubernetes-validations': [{ rule: 'self.all(p, self.exists_one(q, q.port == p.port && (has(q.protocol) ? q.protocol : "TCP") == (has(p.protocol) ? p.protocol : "TCP")))', message: 'each port number (per protocol) may be listed once' }],
    }),
    expose: obj('What the webhook gives a run at CREATE so its tasks can reach the sidecar.', {
      params: arr('Params added to the run if its Pipeline declares them and the run does not set them.', obj('A param.', {
        name: str('Tekton param name: letters, digits, "_", "-" and ".", starting with a letter or "_".', { minLength: 1, maxLength: 253, pattern: TEKTON_PARAM_NAME }),
        value: str('May use $(host), $(port) and $(address).', { maxLength: 4096 }),
      }, { required: ['name', 'value'] }), {
        maxItems: 32,
        'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'],
      }),
      workspace: str('Pipeline workspace bound to the client Secret (DNS-1123 label).', { minLength: 1, maxLength: 63, pattern: DNS1123_LABEL }),
    }),
    isolation: obj('Who may reach the sidecar (a NetworkPolicy), and where it may connect to.', {
      from: str('SameRun (default): only the run\'s own task pods (by tekton.dev/pipelineRunUID) and its other sidecars. Namespace: any pod of the namespace.', { enum: ['SameRun', 'Namespace'] }),
      matchRunUid: bool('Deprecated and ignored: task pods are always selected by the run\'s uid.'),
      egress: arr('NetworkPolicy egress rules of the sidecar pod (default: egress not restricted).', freeform('A NetworkPolicy egress rule.')),
    }),
    lifecycle: obj('Start-up and failure handling.', {
      startupTimeout: str('Go-style duration between 1s and 24h, e.g. 90s, 5m (default: the operator\'s --startup-timeout, 5m).', {
        pattern: DURATION, maxLength: 32,
        // Same bounds as constructs/duration.ts STARTUP_TIMEOUT_BOUNDS.
        'x-kubernetes-validations': [{ rule: "duration(self) >= duration('1s') && duration(self) <= duration('24h')", message: 'startupTimeout must be between 1s and 24h' }],
      }),
      onSidecarFailure: str('When the sidecar is not Ready within startupTimeout: Cancel (default) cancels the run; Ignore starts it anyway, with a Warning Event.', { enum: ['Cancel', 'Ignore'] }),
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
 * A structural schema otherwise prunes a field it does not know without a word: a typo in an
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

const statusSchema = obj('What the operator last observed of this PipelineSidecar (docs/operator.md, "PipelineSidecar status").', {
  observedGeneration: int('metadata.generation of the spec this status describes.', { format: 'int64' }),
  activeRuns: int('Runs that have a Deployment of this sidecar: provisioning or running, and finished ones until their clean-up. Refreshed once per sweep (60 s by default).'),
  conditions: arr('Valid: the spec passes the operator\'s checks. Ready: runs of this namespace that ask for this sidecar get it.', obj('A condition, Kubernetes-style.', {
    type: str('Valid or Ready.'),
    status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
    reason: str('Why, in one CamelCase word.'),
    message: str('Why, for people: what is wrong and how to fix it.'),
    lastTransitionTime: str('When status last changed.', { format: 'date-time' }),
    observedGeneration: int('metadata.generation this condition was computed from.', { format: 'int64' }),
  }, { required: ['type', 'status'] }), { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
});

/**
 * `kubectl get pipelinesidecars` columns. Selector prints the whole spec.selector (as JSON, for a map),
 * so a sidecar selected by labels shows them, not an empty cell.
 */
export const PRINTER_COLUMNS: ReadonlyArray<Record<string, string>> = [
  { name: 'Kind', type: 'string', jsonPath: '.spec.kind', description: 'The sidecar kind' },
  { name: 'Selector', type: 'string', jsonPath: '.spec.selector', description: 'Runs that get it without asking: pipelineRef and/or matchLabels' },
  { name: 'Active', type: 'integer', jsonPath: '.status.activeRuns', description: 'Runs that have a Deployment of it' },
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Whether runs of this namespace that ask for it get it' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: 'Time since creation' },
];

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
        additionalPrinterColumns: PRINTER_COLUMNS.map((c) => ({ ...c })),
        schema: {
          openAPIV3Schema: {
            type: 'object',
            description: 'A sidecar that lives as long as a Tekton PipelineRun and is reachable by all its tasks (TEP-0130).',
            required: ['spec'],
            properties: {
              apiVersion: str(`The versioned schema of this object: ${API_VERSION}.`),
              kind: str(`The kind of this object: ${KIND}.`),
              // The API server takes nothing but `type` here (kubectl explain shows ObjectMeta's own
              // documentation); the name rules are the x-kubernetes-validations below.
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
