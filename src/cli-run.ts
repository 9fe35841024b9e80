import { parseArgs } from 'node:util';
import { WEBHOOK_PATH } from '../constructs/api/webhook-config';
import { WEBHOOK_SERVICE_NAME } from '../constructs/bundle/defaults';
import { parseDuration } from './duration';
import { KubeAccess, loadKubeAccess } from './k8s/kube-access';
import { KINDS_ENV, kindModulePaths, loadKindModules } from './kind-modules';
import { Operator, OperatorOptions } from './operator';

/** Usage line of `pipeline-sidecars run`. */
export const RUN_SUMMARY = 'run [--kubeconfig F] [--namespace NS] [--kinds MODULE]... [--webhook-port 9443] [--webhook-url URL | --webhook-service NAME] ' +
  '[--leader-elect] [--health-port 8080] ...: start the operator (see docs/operator.md)';

export const RUN_OPTIONS = {
  'kubeconfig': { type: 'string' },
  'kinds': { type: 'string', multiple: true },
  'namespace': { type: 'string' },
  'webhook-port': { type: 'string' },
  'webhook-bind': { type: 'string' },
  'webhook-url': { type: 'string' },
  'webhook-service': { type: 'string' },
  'webhook-config': { type: 'string' },
  'webhook-register': { type: 'boolean' },
  'webhook-external-ca': { type: 'boolean' },
  'no-webhook': { type: 'boolean' },
  'health-port': { type: 'string' },
  'leader-elect': { type: 'boolean' },
  'lease-name': { type: 'string' },
  'lease-duration': { type: 'string' },
  'identity': { type: 'string' },
  'allow-privileged': { type: 'boolean' },
  'startup-timeout': { type: 'string' },
  'sweep-interval': { type: 'string' },
  'concurrency': { type: 'string' },
  'watch-idle-timeout': { type: 'string' },
  'install-crd': { type: 'boolean' },
  'watch-namespace': { type: 'string', multiple: true },
  'privileged-namespace': { type: 'string', multiple: true },
} as const;

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${flag} must be a non-negative integer, not "${v}"`);
  return n;
}
function dur(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) throw new Error(`--${flag} must be a duration such as 15s or 5m, at most 596h (a timer's limit), not "${v}"`);
  return ms;
}

/** One line per flag of `run --help`; typed by RUN_OPTIONS, so a new flag cannot go undocumented. */
const RUN_FLAG_HELP: Record<keyof typeof RUN_OPTIONS, [argument: string, meaning: string]> = {
  'kubeconfig': ['FILE', 'API server credentials (default KUBECONFIG, ~/.kube/config, then in-cluster)'],
  'kinds': ['MODULE', `a kinds module adding sidecar kinds (docs/custom-kind.md); repeatable; also ${KINDS_ENV}`],
  'namespace': ['NS', 'where the Lease and the webhook certificate Secret live (default POD_NAMESPACE or pipeline-sidecars)'],
  'watch-namespace': ['NS', 'serve only runs in these namespaces; repeatable (default all)'],
  'webhook-port': ['P', 'HTTPS port of the webhook (default 9443; 0: any free port)'],
  'webhook-bind': ['ADDR', 'address the webhook listens on'],
  'webhook-url': ['URL', 'how the API server reaches the webhook, instead of a Service; {port} is the bound port'],
  'webhook-service': ['NAME', 'the Service in --namespace the API server reaches the webhook through'],
  'webhook-config': ['NAME', 'the MutatingWebhookConfiguration whose caBundle the operator fills in'],
  'webhook-register': ['', 'apply the whole MutatingWebhookConfiguration, not only its caBundle'],
  'webhook-external-ca': ['', 'leave caBundle alone (cert-manager injects it)'],
  'no-webhook': ['', 'no webhook: fallback mode only (docs/fallback-mode.md)'],
  'health-port': ['P', '/healthz, /readyz and /metrics (default 8080)'],
  'leader-elect': ['', 'elect a leader on a Lease (run more than one replica)'],
  'lease-name': ['NAME', 'the Lease to elect on'],
  'lease-duration': ['D', 'how long a Lease holds without renewal, e.g. 15s'],
  'identity': ['ID', 'this replica in the Lease and in Events (default POD_NAME, else host-pid)'],
  'allow-privileged': ['', 'pods beyond the Pod Security baseline profile in every namespace, not only in labelled ones'],
  'privileged-namespace': ['NS', 'pods beyond the baseline profile in this namespace too, as if it were labelled pipeline-sidecars.dev/allow-privileged=true; repeatable'],
  'startup-timeout': ['D', 'for PipelineSidecars that set no lifecycle.startupTimeout, e.g. 5m'],
  'sweep-interval': ['D', 'period of the orphan sweep, e.g. 60s'],
  'concurrency': ['N', 'reconciles in parallel'],
  'watch-idle-timeout': ['D', 're-open a watch that delivered nothing for this long, e.g. 150s'],
  'install-crd': ['', 'apply the PipelineSidecar CRD at start (development)'],
};

/** `pipeline-sidecars run --help`. */
export const RUN_HELP = ['usage: pipeline-sidecars run [options]', '', 'Starts the operator: the admission webhook, and the controller on the leader.', '',
  ...Object.entries(RUN_FLAG_HELP).map(([flag, [arg, meaning]]) => `  --${flag}${arg ? ` ${arg}` : ''}`.padEnd(30) + meaning),
  '  -h, --help'.padEnd(30) + 'this text', '', 'More: docs/operator.md'].join('\n') + '\n';

/** The Operator's options from command-line flags (and the environment a Deployment gives it). */
export function operatorOptionsFromArgs(argv: string[]): OperatorOptions {
  const { values: v } = parseArgs({ args: argv, options: RUN_OPTIONS, strict: true });
  // First, so that a kinds module that cannot be used is reported even where no cluster is reachable.
  const kinds = loadKindModules(kindModulePaths(v.kinds));
  // --kubeconfig, then KUBECONFIG / ~/.kube/config, then the in-cluster ServiceAccount; without
  // client-node unless the configuration needs it (k8s/kube-access.ts).
  let kc: KubeAccess;
  try {
    kc = loadKubeAccess({ kubeconfig: v.kubeconfig }).access;
  } catch (e) {
    throw new Error(`cannot load the kubeconfig ${v.kubeconfig ?? '(KUBECONFIG, ~/.kube/config or in-cluster)'}: ${(e as Error).message}`);
  }
  if (!kc.getCurrentCluster()) throw new Error('no cluster to talk to: pass --kubeconfig, set KUBECONFIG, or run in a pod with a ServiceAccount');
  const namespace = v.namespace ?? process.env.POD_NAMESPACE ?? 'pipeline-sidecars';
  const identity = v.identity ?? process.env.POD_NAME;
  const webhookPort = int(v['webhook-port'], 'webhook-port') ?? 9443;
  if (v['webhook-url'] && v['webhook-service']) throw new Error('give --webhook-url or --webhook-service, not both');
  const webhook = v['no-webhook'] ? false as const : {
    port: webhookPort,
    bindAddress: v['webhook-bind'],
    configName: v['webhook-config'],
    url: v['webhook-url'],
    service: v['webhook-url'] ? undefined : { namespace, name: v['webhook-service'] ?? WEBHOOK_SERVICE_NAME, port: 443 },
    register: v['webhook-register'] ?? false,
    namespaceSelector: v['watch-namespace']?.length
      ? { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: v['watch-namespace'] }] } : undefined,
    externalCa: v['webhook-external-ca'] ?? false,
  };
  return {
    kubeConfig: kc,
    kinds,
    namespace,
    identity,
    webhook,
    healthPort: int(v['health-port'], 'health-port') ?? 8080,
    leaderElection: v['leader-elect'] ? { leaseName: v['lease-name'], leaseDurationMs: dur(v['lease-duration'], 'lease-duration') } : false,
    allowPrivilegedEverywhere: v['allow-privileged'] ?? false,
    privilegedNamespaces: v['privileged-namespace'],
    startupTimeoutDefault: dur(v['startup-timeout'], 'startup-timeout'),
    sweepIntervalMs: dur(v['sweep-interval'], 'sweep-interval'),
    watchIdleTimeoutMs: dur(v['watch-idle-timeout'], 'watch-idle-timeout'),
    concurrency: int(v.concurrency, 'concurrency'),
    installCrd: v['install-crd'] ?? false,
    watchNamespaces: v['watch-namespace'],
  };
}

/** Builds the Operator from command-line flags (and the environment a Deployment gives it). */
export function operatorFromArgs(argv: string[]): Operator {
  return new Operator(operatorOptionsFromArgs(argv));
}

/** `pipeline-sidecars run`: start, then stop gracefully on SIGTERM/SIGINT (release the Lease, drain reconciles). */
export async function runOperator(argv: string[]): Promise<number> {
  const op = operatorFromArgs(argv);
  op.log.info('sidecar kinds', { kinds: op.kinds.names() });
  await op.start();
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      op.log.info('shutting down', { signal });
      const force = setTimeout(() => { op.log.error('graceful shutdown took too long; exiting'); resolve(1); }, 20_000);
      force.unref();
      // The Lease goes at once (the other replica takes over); the webhook keeps answering a few
      // seconds more, until the API server has seen this pod leave the Service's endpoints.
      op.stop({ webhookDrainMs: 3000 }).then(() => { clearTimeout(force); resolve(0); }, (e) => { op.log.error('shutdown failed', { error: e }); resolve(1); });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

export { WEBHOOK_PATH };
