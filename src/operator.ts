import * as os from 'node:os';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeAccess as KubeConfig } from './k8s/kube-access';
import { FIELD_MANAGER } from '../constructs/api/spec';
import { pipelineSidecarCrd } from '../constructs/api/crd';
import { defaultKinds, KindRegistry } from '../constructs/kinds';
import { Controller } from './controller';
import { parseDuration } from './duration';
import { EventRecorder } from './events';
import { ApiError, RawClient } from './k8s/raw';
import { objectPath } from './k8s/resources';
import { LeaderElector, LeaderElectionOptions } from './leader';
import { createLogger, Logger } from './log';
import { OperatorMetrics, startHealthServer } from './metrics';
import { SharedCaches, sharedCaches } from './shared-caches';
import { WebhookOptions, WebhookServer } from './webhook';

export interface OperatorOptions {
  readonly kubeConfig: KubeConfig;
  /** Sidecar kinds (default: the built-in ones). Extend with `defaultKinds().register(myKind)`. */
  readonly kinds?: KindRegistry;
  /** The operator's own namespace: its Lease and webhook certificate Secret live here. */
  readonly namespace: string;
  /** Serve the admission webhook (every replica does); false to run without it (fallback mode only). */
  readonly webhook?: WebhookOptions | false;
  /** Port of /healthz, /readyz, /metrics (0: any free port; undefined: no health server). */
  readonly healthPort?: number;
  readonly healthBindAddress?: string;
  /** Elect a leader through a Lease; false (or absent) reconciles without election (single replica). */
  readonly leaderElection?: Partial<LeaderElectionOptions> | false;
  /** Allow privileged kinds in every namespace, not only in those labelled allow-privileged=true. */
  readonly allowPrivilegedEverywhere?: boolean;
  /** Namespaces where privileged kinds may run besides those labelled allow-privileged=true (the bundle's privilegedNamespaces). */
  readonly privilegedNamespaces?: string[];
  /** startupTimeout for PipelineSidecars that set none: a duration string ("5m") or ms. */
  readonly startupTimeoutDefault?: string | number;
  /** Interval of the orphan sweep (default 60 s). */
  readonly sweepIntervalMs?: number;
  /** A watch that delivers nothing (not even a bookmark) for this long is re-opened (default 150 s). */
  readonly watchIdleTimeoutMs?: number;
  /** Reconciles in parallel (default 16). */
  readonly concurrency?: number;
  /** Serve only runs in these namespaces (default: all). The webhook configuration should match (namespaceSelector). */
  readonly watchNamespaces?: string[];
  /** Apply the PipelineSidecar CRD at start (development; the install bundle ships it otherwise). */
  readonly installCrd?: boolean;
  readonly log?: Logger;
  /** Replica identity for the Lease and Events (default: hostname-pid). */
  readonly identity?: string;
}

/**
 * The pipeline-sidecars operator: the webhook on every replica, the controller on the leader.
 *
 *     const op = new Operator({ kubeConfig, namespace: 'pipeline-sidecars', kinds: defaultKinds().register(myKind) });
 *     await op.start();
 *     process.on('SIGTERM', () => op.stop());
 */
export class Operator {
  readonly metrics: OperatorMetrics;
  readonly log: Logger;
  readonly client: RawClient;
  readonly identity: string;
  readonly kinds: KindRegistry;
  private readonly events: EventRecorder;
  private readonly webhookServer?: WebhookServer;
  /** PipelineSidecar and Pipeline caches for the webhook and the controller (tests inspect them). */
  readonly shared: SharedCaches;
  private elector?: LeaderElector;
  private health?: Server;
  private current?: Controller;
  private transition: Promise<void> = Promise.resolve();
  private started = false;

  constructor(private readonly opts: OperatorOptions) {
    this.identity = opts.identity ?? `${os.hostname()}-${process.pid}`;
    this.log = opts.log ?? createLogger({ fields: { component: 'pipeline-sidecars', replica: this.identity } });
    this.metrics = new OperatorMetrics({ defaultMetrics: false });
    this.client = new RawClient(opts.kubeConfig);
    this.kinds = opts.kinds ?? defaultKinds();
    this.events = new EventRecorder(this.client, 'pipeline-sidecars', this.identity, this.log);
    // Every replica caches PipelineSidecars and Pipelines: its webhook reads them on each admission
    // (no request to the API server), and its controller, while it leads, uses the same caches.
    this.shared = sharedCaches({ kubeConfig: opts.kubeConfig, client: this.client, log: this.log.child({ part: 'caches' }), watchNamespaces: opts.watchNamespaces, watchIdleTimeoutMs: opts.watchIdleTimeoutMs });
    if (opts.webhook) this.webhookServer = new WebhookServer(this.client, opts.namespace, opts.webhook, this.kinds, this.log.child({ part: 'webhook' }), this.metrics, opts.watchNamespaces, this.shared);
  }

  /** The controller while this replica leads (tests inspect its caches). */
  get controller(): Controller | undefined { return this.current; }
  get isLeader(): boolean { return this.current !== undefined; }
  get webhookPort(): number | undefined { return this.webhookServer?.port; }
  get healthPort(): number | undefined { return (this.health?.address() as AddressInfo | undefined)?.port; }
  get webhookCa(): string | undefined { return this.webhookServer?.caCert; }
  /** Reads the webhook sent to the API server instead of its caches (tests read it). */
  get admissionLiveReads(): number { return this.webhookServer?.liveReads ?? 0; }

  /** Re-reads the shared webhook certificate (renewing it when due or missing) and reloads it. */
  async refreshWebhookCertificate(): Promise<boolean> {
    return this.webhookServer ? this.webhookServer.refreshTls() : false;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.opts.installCrd) {
      const crd = pipelineSidecarCrd();
      await this.client.apply(objectPath(crd as any), crd, FIELD_MANAGER, { force: true });
    }
    if (this.opts.healthPort !== undefined) {
      this.health = await startHealthServer(this.opts.healthPort, this.opts.healthBindAddress ?? '0.0.0.0', this.metrics, {
        healthy: () => this.started,
        ready: () => this.started && (!this.webhookServer || this.webhookServer.serving),
      });
    }
    // Not awaited: until they synced the webhook reads from the server, and a controller waits for them.
    // A failure (CRD not installed yet) is retried by the controller's start, and logged here.
    for (const c of [this.shared.sidecars, this.shared.pipelines]) c.start().catch((e) => this.log.warn('a shared cache could not start; admissions read from the server meanwhile', { error: e }));
    await this.webhookServer?.start();
    const le = this.opts.leaderElection;
    if (le) {
      this.elector = new LeaderElector(this.opts.kubeConfig, this.opts.namespace, {
        leaseName: le.leaseName ?? 'pipeline-sidecars-leader', identity: le.identity ?? this.identity,
        leaseDurationMs: le.leaseDurationMs, renewDeadlineMs: le.renewDeadlineMs, retryPeriodMs: le.retryPeriodMs,
      }, {
        onStartedLeading: () => this.lead(),
        onStoppedLeading: () => this.follow(),
      }, this.log.child({ part: 'leader' }));
      this.elector.start();
    } else {
      await this.lead();
    }
    this.log.info('operator started', { namespace: this.opts.namespace, webhookPort: this.webhookPort, healthPort: this.healthPort, leaderElection: !!le });
  }

  private lead(): Promise<void> {
    this.transition = this.transition.then(async () => {
      if (this.current || !this.started || (this.elector && !this.elector.isLeader)) return;
      const c = new Controller({
        kubeConfig: this.opts.kubeConfig, client: this.client, kinds: this.kinds, log: this.log.child({ part: 'controller' }),
        metrics: this.metrics, events: this.events, concurrency: this.opts.concurrency, shared: this.shared, sweepIntervalMs: this.opts.sweepIntervalMs, watchIdleTimeoutMs: this.opts.watchIdleTimeoutMs,
        allowPrivilegedEverywhere: this.opts.allowPrivilegedEverywhere, privilegedNamespaces: this.opts.privilegedNamespaces, watchNamespaces: this.opts.watchNamespaces,
        startupTimeoutDefaultMs: typeof this.opts.startupTimeoutDefault === 'number' ? this.opts.startupTimeoutDefault : parseDuration(this.opts.startupTimeoutDefault),
      });
      this.current = c;
      this.metrics.isLeader.set(1);
      try {
        await c.start();
      } catch (e) {
        this.log.error(`controller could not start: ${startFailureHint(e)}; retrying in 5 s`, { error: e });
        this.current = undefined;
        this.metrics.isLeader.set(0);
        await c.stop().catch(() => undefined);
        const retry = setTimeout(() => { if (this.started && (!this.elector || this.elector.isLeader)) void this.lead(); }, 5000);
        retry.unref?.();
      }
    });
    return this.transition;
  }

  private follow(): Promise<void> {
    // At once, not after a start in progress (caches can take longer than a lease to sync): a
    // replica that lost the Lease must not begin reconciling once they have.
    const c = this.current;
    this.current = undefined;
    this.metrics.isLeader.set(0);
    const stopping = c?.stop();
    this.transition = this.transition.then(async () => {
      await stopping;
      const later = this.current;
      this.current = undefined;
      this.metrics.isLeader.set(0);
      await later?.stop();
    });
    return this.transition;
  }

  /**
   * Graceful shutdown: finish in-flight reconciles, release the Lease (the next leader takes over at
   * once), stop serving the webhook. `{ release: false }` leaves the Lease to expire, like a crash.
   */
  async stop(opts: { release?: boolean; webhookDrainMs?: number } = {}): Promise<void> {
    if (!this.started) return;
    if (this.elector) await this.elector.stop({ release: opts.release ?? true });
    await this.follow();
    this.started = false;
    await this.webhookServer?.stop(opts.webhookDrainMs);
    await Promise.all([this.shared.sidecars.stop(), this.shared.pipelines.stop()]);
    await new Promise<void>((r) => (this.health ? this.health.close(() => r()) : r()));
    this.client.close();
    this.log.info('operator stopped');
  }
}

/** What an operator that cannot list what it watches should tell its admin. */
function startFailureHint(e: unknown): string {
  if (e instanceof ApiError && e.statusCode === 403) {
    return 'its ServiceAccount may not list what it watches: serve namespaces explicitly (--watch-namespace, ' +
      'and a RoleBinding of the pipeline-sidecars-namespace ClusterRole in each; see docs/install.md)';
  }
  if (e instanceof ApiError && e.statusCode === 404) return 'a watched resource does not exist: are the PipelineSidecar and Tekton CRDs installed?';
  return 'is the API server reachable and the PipelineSidecar CRD installed?';
}
