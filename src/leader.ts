import type { Logger } from './log';
import { silentLogger } from './log';
import { ApiError, RawClient, isConflict, isNotFound } from './k8s/raw';
import { collectionPath } from './k8s/resources';

export interface LeaderElectionOptions {
  /** Lease name (in the operator's namespace). */
  readonly leaseName: string;
  /** This replica's identity (pod name; must differ between replicas). */
  readonly identity: string;
  /** How long a Lease stays valid without renewal (default 15 s). */
  readonly leaseDurationMs?: number;
  /** Give up leadership when renewals fail for this long (default 2/3 of the lease duration). */
  readonly renewDeadlineMs?: number;
  /** How often to try to acquire or renew (default 1/5 of the lease duration). */
  readonly retryPeriodMs?: number;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: a holder renews
 * renewTime; others take over once they have seen the same record unchanged for a whole lease
 * duration (measured on their own clock, so clock skew between nodes does not matter).
 * Writes carry the Lease's resourceVersion, so two candidates never both win a takeover.
 */
export class LeaderElector {
  private leading = false;
  private timer?: NodeJS.Timeout;
  private stopped = true;
  private observed?: { rv: string; at: number };
  private lastRenew = 0;
  private lease?: Record<string, any>;
  private readonly durationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private ticking?: Promise<void>;

  constructor(
    private readonly client: RawClient,
    private readonly namespace: string,
    private readonly opts: LeaderElectionOptions,
    private readonly callbacks: { onStartedLeading: () => void | Promise<void>; onStoppedLeading: () => void | Promise<void> },
    private readonly log: Logger = silentLogger,
  ) {
    this.durationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? Math.floor(this.durationMs * 2 / 3);
    this.retryMs = opts.retryPeriodMs ?? Math.max(200, Math.floor(this.durationMs / 5));
  }

  get isLeader(): boolean { return this.leading; }

  private get path(): string { return `${collectionPath('coordination.k8s.io/v1', 'Lease', this.namespace)}/${this.opts.leaseName}`; }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => { this.ticking = this.tick().finally(() => this.schedule(this.retryMs)); }, ms);
  }

  private leaseSeconds(): number { return Math.max(1, Math.ceil(this.durationMs / 1000)); }

  private async tick(): Promise<void> {
    const now = new Date();
    try {
      const ok = await this.tryAcquireOrRenew(now);
      if (ok) {
        this.lastRenew = Date.now();
        if (!this.leading && !this.stopped) {
          this.leading = true;
          this.log.info('became leader', { lease: this.opts.leaseName, identity: this.opts.identity });
          await this.callbacks.onStartedLeading();
        }
        return;
      }
    } catch (e) {
      this.log.warn('lease update failed', { error: e, lease: this.opts.leaseName });
    }
    if (this.leading && Date.now() - this.lastRenew > this.renewDeadlineMs) await this.loseLeadership('renew deadline passed');
    else if (this.leading && this.lease && this.lease.spec?.holderIdentity !== this.opts.identity) await this.loseLeadership('another replica holds the lease');
  }

  private async loseLeadership(why: string): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    this.log.warn('lost leadership', { why, lease: this.opts.leaseName });
    await this.callbacks.onStoppedLeading();
  }

  private async tryAcquireOrRenew(now: Date): Promise<boolean> {
    const micro = now.toISOString().replace(/Z$/, '000Z');
    const lease = await this.client.getOrUndefined(this.path);
    this.lease = lease;
    if (!lease) {
      try {
        this.lease = await this.client.create(collectionPath('coordination.k8s.io/v1', 'Lease', this.namespace), {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
          metadata: { name: this.opts.leaseName, namespace: this.namespace },
          spec: { holderIdentity: this.opts.identity, leaseDurationSeconds: this.leaseSeconds(), acquireTime: micro, renewTime: micro, leaseTransitions: 0 },
        });
        return true;
      } catch (e) {
        if (e instanceof ApiError && e.statusCode === 409) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const rv = lease.metadata.resourceVersion as string;
    if (!this.observed || this.observed.rv !== rv) this.observed = { rv, at: Date.now() };
    const holder: string | undefined = spec.holderIdentity || undefined;
    const iHold = holder === this.opts.identity;
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseSeconds()) * 1000;
    if (!iHold && holder && Date.now() - this.observed.at < durationMs) return false;
    const next = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: this.leaseSeconds(),
        renewTime: micro,
        acquireTime: iHold ? spec.acquireTime : micro,
        leaseTransitions: iHold ? (spec.leaseTransitions ?? 0) : (spec.leaseTransitions ?? 0) + 1,
      },
    };
    try {
      this.lease = await this.client.request('PUT', this.path, { body: next });
      this.observed = { rv: this.lease!.metadata.resourceVersion, at: Date.now() };
      return true;
    } catch (e) {
      if (isConflict(e) || isNotFound(e)) return false;
      throw e;
    }
  }

  /**
   * Stop campaigning. With `release`, a leader hands the Lease back (holder cleared) so another
   * replica takes over at once instead of after a whole lease duration.
   */
  async stop(opts: { release?: boolean } = { release: true }): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    const wasLeading = this.leading;
    if (wasLeading) await this.loseLeadership('shutting down');
    if (wasLeading && opts.release) {
      try {
        const lease = await this.client.getOrUndefined(this.path);
        if (lease?.spec?.holderIdentity === this.opts.identity) {
          await this.client.request('PUT', this.path, { body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1 } } });
        }
      } catch (e) {
        this.log.warn('could not release the lease; the next leader waits for it to expire', { error: e });
      }
    }
  }
}
