import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * The real Tekton Pipelines (controller, webhook, resolvers) for the test platform: binaries and
 * Tekton's own `config/` come from the pinned module (platform/k8s/tekton), built and copied into the
 * cache by scripts/control-plane.sh. Nothing here writes a Tekton CRD or policy by hand.
 *
 * This file is the pure part (what to install, how each process is started); control-plane.ts
 * starts and stops the processes, and tekton-network.ts makes the network namespace the webhook
 * serves from.
 */

export const TEKTON_NAMESPACE = 'tekton-pipelines';
export const TEKTON_RESOLVERS_NAMESPACE = 'tekton-pipelines-resolvers';
/** The Service Tekton's webhook configurations and CRD conversion name (Knative insists on a Service). */
export const TEKTON_WEBHOOK_SERVICE = 'tekton-pipelines-webhook';
/** The webhook's port inside its network namespace (its own, so no clash with the host's ports). */
export const TEKTON_WEBHOOK_PORT = 18443;

/**
 * Images the controller puts into TaskRun pods. Local names: kwok runs nothing, and the real-node
 * tier imports images under exactly these names, so nothing is ever pulled.
 */
export const TEKTON_IMAGES = {
  entrypoint: 'pipeline-sidecars.local/tekton/entrypoint:v1.15.1',
  nop: 'pipeline-sidecars.local/tekton/nop:v1.15.1',
  sidecarlogresults: 'pipeline-sidecars.local/tekton/sidecarlogresults:v1.15.1',
  workingdirinit: 'pipeline-sidecars.local/tekton/workingdirinit:v1.15.1',
  shell: 'pipeline-sidecars.local/busybox:1.38',
} as const;

/**
 * Labels a test puts on a task (pipelineSpec.tasks[].taskSpec.metadata.labels, or on the run, which
 * Tekton copies to every TaskRun pod) to tell the kwok stage how that task's pod ends.
 */
export const TASK_LABELS = {
  /** The step containers exit with this code (default 0): non-zero fails the TaskRun. */
  exitCode: 'test.pipeline-sidecars.dev/exit-code',
  /** The pod keeps running until a test removes this label (releaseTasks), or forever. */
  hold: 'test.pipeline-sidecars.dev/hold',
} as const;

export interface TektonLayout {
  /** Directory holding tekton-controller, tekton-webhook and tekton-resolvers. */
  readonly binDir: string;
  /** Tekton's own config/ directory, copied from the module. */
  readonly configDir: string;
}

/** Where scripts/control-plane.sh put Tekton (it builds it too when needed). */
export function tektonLayout(repo: string): TektonLayout {
  const dir = execFileSync('bash', [path.join(repo, 'scripts', 'control-plane.sh'), '--tekton-dir'], { encoding: 'utf8' }).trim();
  if (!fs.existsSync(path.join(dir, '.complete'))) throw new Error(`Tekton is not built in ${dir}: run scripts/control-plane.sh`);
  return { binDir: path.join(dir, 'bin'), configDir: path.join(dir, 'config') };
}

function yamlDocs(file: string): Array<Record<string, any>> {
  return parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS()).filter((o) => o && typeof o === 'object' && o.kind);
}

/** Files of config/ that describe Tekton's own Deployments, Services and autoscaling: the harness runs processes instead. */
const RUNTIME_FILES = new Set(['controller.yaml', 'webhook.yaml', 'webhook-hpa.yaml', 'resolvers-deployment.yaml', 'resolvers-service.yaml']);

/**
 * Tekton's config objects in install order: namespaces, then RBAC and ConfigMaps, then CRDs, then
 * the webhook Secret and configurations (last: they route PipelineRun writes to a webhook that must
 * be reachable first). Resolvers that would fetch from outside the machine are switched off.
 */
export function tektonConfigObjects(layout: TektonLayout): { early: Array<Record<string, any>>; crds: Array<Record<string, any>>; webhooks: Array<Record<string, any>> } {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const f of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, f);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.yaml') && !RUNTIME_FILES.has(f)) files.push(p);
    }
  };
  walk(layout.configDir);
  const all = files.flatMap(yamlDocs).map(offlineResolvers);
  const rank = (o: Record<string, any>): number => (o.kind === 'Namespace' ? 0 : 1);
  return {
    early: all.filter((o) => !['CustomResourceDefinition', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].includes(o.kind)
      && !(o.kind === 'Secret' && o.metadata?.name === 'webhook-certs')).sort((a, b) => rank(a) - rank(b)),
    crds: all.filter((o) => o.kind === 'CustomResourceDefinition'),
    webhooks: all.filter((o) => ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'].includes(o.kind)
      || (o.kind === 'Secret' && o.metadata?.name === 'webhook-certs')),
  };
}

/** Only the cluster resolver stays on: git, hub, bundles and http would reach outside the machine. */
function offlineResolvers(o: Record<string, any>): Record<string, any> {
  if (o.kind !== 'ConfigMap' || o.metadata?.name !== 'resolvers-feature-flags') return o;
  const data = { ...o.data };
  for (const k of Object.keys(data)) if (k.startsWith('enable-') && k.endsWith('-resolver')) data[k] = String(k === 'enable-cluster-resolver');
  return { ...o, data };
}

/** The Service and EndpointSlice through which the API server reaches the webhook in its network namespace. */
export function webhookRoute(address: string): Array<Record<string, any>> {
  return [
    {
      apiVersion: 'v1', kind: 'Service',
      metadata: { name: TEKTON_WEBHOOK_SERVICE, namespace: TEKTON_NAMESPACE, labels: { 'app.kubernetes.io/part-of': 'tekton-pipelines' } },
      spec: { ports: [{ name: 'https-webhook', port: 443, targetPort: TEKTON_WEBHOOK_PORT, protocol: 'TCP' }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: `${TEKTON_WEBHOOK_SERVICE}-netns`, namespace: TEKTON_NAMESPACE, labels: { 'kubernetes.io/service-name': TEKTON_WEBHOOK_SERVICE } },
      addressType: 'IPv4',
      endpoints: [{ addresses: [address], conditions: { ready: true } }],
      ports: [{ name: 'https-webhook', port: TEKTON_WEBHOOK_PORT, protocol: 'TCP' }],
    },
  ];
}

/**
 * The environment a Deployment in config/ gives its container: plain values, with the pod's own
 * namespace for fieldRef metadata.namespace. Mounted-file paths (the registry cert) do not exist
 * outside a pod and are left out.
 */
export function deploymentEnv(layout: TektonLayout, file: string): Record<string, string> {
  const dep = yamlDocs(path.join(layout.configDir, file)).find((o) => o.kind === 'Deployment');
  if (!dep) throw new Error(`no Deployment in Tekton's ${file}`);
  const ns = dep.metadata.namespace;
  const env: Record<string, string> = {};
  for (const e of dep.spec.template.spec.containers[0].env ?? []) {
    if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = ns;
    else if (typeof e.value === 'string' && !e.value.startsWith('/etc/')) env[e.name] = e.value;
  }
  return env;
}

/** Ports a Knative process opens besides its main one; every process gets its own set. */
export function knativePortEnv(ports: { probes: number; metrics: number; profiling: number }): Record<string, string> {
  return { PROBES_PORT: String(ports.probes), METRICS_PROMETHEUS_PORT: String(ports.metrics), PROFILING_PORT: String(ports.profiling) };
}

/** The controller's flags: where it finds the API server, and the images it puts into TaskRun pods. */
export function controllerArgs(kubeconfig: string): string[] {
  return [
    `-kubeconfig=${kubeconfig}`,
    `-entrypoint-image=${TEKTON_IMAGES.entrypoint}`,
    `-nop-image=${TEKTON_IMAGES.nop}`,
    `-sidecarlogresults-image=${TEKTON_IMAGES.sidecarlogresults}`,
    `-workingdirinit-image=${TEKTON_IMAGES.workingdirinit}`,
    `-shell-image=${TEKTON_IMAGES.shell}`,
    `-shell-image-win=${TEKTON_IMAGES.shell}`,
  ];
}
