import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { WEBHOOK_PATH } from '../constructs/api/webhook-config';
import { parseDuration } from './duration';
import { Operator } from './operator';

/** Usage line of `pipeline-sidecars run`. */
export const RUN_SUMMARY = 'run [--kubeconfig F] [--namespace NS] [--webhook-port 9443] [--webhook-url URL | --webhook-service NAME] ' +
  '[--leader-elect] [--health-port 8080] ...: start the operator (see docs/operator.md)';

export const RUN_OPTIONS = {
  'kubeconfig': { type: 'string' },
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

/** Builds the Operator from command-line flags (and the environment a Deployment gives it). */
export function operatorFromArgs(argv: string[]): Operator {
  const { values: v } = parseArgs({ args: argv, options: RUN_OPTIONS, strict: true });
  const kc = new KubeConfig();
  // --kubeconfig, then KUBECONFIG / ~/.kube/config, then the in-cluster ServiceAccount.
  try {
    if (v.kubeconfig) kc.loadFromFile(v.kubeconfig); else kc.loadFromDefault();
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
    service: v['webhook-url'] ? undefined : { namespace, name: v['webhook-service'] ?? 'pipeline-sidecars-webhook', port: 443 },
    register: v['webhook-register'] ?? false,
    namespaceSelector: v['watch-namespace']?.length
      ? { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: v['watch-namespace'] }] } : undefined,
    externalCa: v['webhook-external-ca'] ?? false,
  };
  return new Operator({
    kubeConfig: kc,
    namespace,
    identity,
    webhook,
    healthPort: int(v['health-port'], 'health-port') ?? 8080,
    leaderElection: v['leader-elect'] ? { leaseName: v['lease-name'], leaseDurationMs: dur(v['lease-duration'], 'lease-duration') } : false,
    allowPrivilegedEverywhere: v['allow-privileged'] ?? false,
    startupTimeoutDefault: dur(v['startup-timeout'], 'startup-timeout'),
    sweepIntervalMs: dur(v['sweep-interval'], 'sweep-interval'),
    watchIdleTimeoutMs: dur(v['watch-idle-timeout'], 'watch-idle-timeout'),
    concurrency: int(v.concurrency, 'concurrency'),
    installCrd: v['install-crd'] ?? false,
    watchNamespaces: v['watch-namespace'],
  });
}

/** `pipeline-sidecars run`: start, then stop gracefully on SIGTERM/SIGINT (release the Lease, drain reconciles). */
export async function runOperator(argv: string[]): Promise<number> {
  const op = operatorFromArgs(argv);
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
