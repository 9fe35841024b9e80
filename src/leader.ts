import type { KubeAccess as KubeConfig } from './k8s/kube-access';
import type { Logger } from './log';
import { silentLogger } from './log';
import { ApiError, RawClient, isConflict, isNotFound } from './k8s/raw';
import { collectionPath } from './k8s/resources';
import { timerDelay } from './timers';

export interface LeaderElectionOptions {
  /** Lease name (in the operator's namespace). */
  readonly leaseName: string;
  /** This replica's identity (pod name; must differ between replicas). */
  readonly identity: string;
  /** How long a Lease stays valid without renewal (default 15 s). */
  readonly leaseDurationMs?: number;
  /**
   * Give up leadership when no renewal succeeded for this long; every Lease request is bounded by what
   * is left of it. Must be shorter than the lease duration (default 2/3 of it).
   */
  readonly renewDeadlineMs?: number;
  /** How often to try to acquire or renew; shorter than the renew deadline (default 1/5 of the lease duration). */
  readonly retryPeriodMs?: number;
}

export interface LeaderCallbacks {
  /** Called (not awaited: renewals go on meanwhile) when this replica becomes leader. */
  readonly onStartedLeading: () => void | Promise<void>;
  /** Called (awaited before campaigning again) when it stops being leader. */
  readonly onStoppedLeading: () => void | Promise<void>;
}

/** The timings of leader election, checked: the decisions below rely on their order. */
export function leaderTimings(opts: Pick<LeaderElectionOptions, 'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs'>): { durationMs: number; renewDeadlineMs: number; retryMs: number } {
  const durationMs = opts.leaseDurationMs ?? 15_000;
  const renewDeadlineMs = opts.renewDeadlineMs ?? Math.floor((durationMs * 2) / 3);
  const retryMs = opts.retryPeriodMs ?? Math.max(200, Math.floor(durationMs / 5));
  if (!(durationMs >= 1000)) throw new Error(`lease duration ${durationMs} ms is too short: use at least 1s (15s is usual)`);
  if (!(renewDeadlineMs < durationMs)) {
    throw new Error(`renew deadline ${renewDeadlineMs} ms must be shorter than the lease duration ${durationMs} ms ` +
      '(a leader must step down before another replica may take over): lower it, e.g. to 2/3 of the lease duration');
  }
  if (!(retryMs > 0 && retryMs < renewDeadlineMs)) {
    throw new Error(`retry period ${retryMs} ms must be positive and shorter than the renew deadline ${renewDeadlineMs} ms ` +
      '(several renewals must fit before giving up): lower it, e.g. to 1/5 of the lease duration');
  }
  return { durationMs, renewDeadlineMs, retryMs };
}

/** Rejects when `p` takes longer than `ms` (the request itself is bounded separately). */
function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), timerDelay(ms)); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: a holder renews
 * renewTime; others take over once they have seen the same record unchanged for a whole lease
 * duration (measured on their own clock, so clock skew between nodes does not matter).
 * Writes carry the Lease's resourceVersion, so two candidates never both win a takeover.
 *
 * Renewal depends on nothing else in the process: its own client and connection pool (a
 * pool saturated by informers and reconciles cannot queue it), a loop that never waits for what
 * leading starts (cache sync can take longer than a lease), and every attempt bounded by the renew
 * deadline: a leader that cannot renew in time steps down before another replica may take over.
 */
export class LeaderElector {
  private leading = false;
  private timer?: NodeJS.Timeout;
  private stopped = true;
  private observed?: { rv: string; at: number };
  private lastRenew = 0;
  private lease?: Record<string, any>;
  private readonly client: RawClient;
  private readonly durationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private ticking?: Promise<void>;
  /** Successful renewals while leading (tests and metrics read it). */
  renewals = 0;

  constructor(
    kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly opts: LeaderElectionOptions,
    private readonly callbacks: LeaderCallbacks,
    private readonly log: Logger = silentLogger,
  ) {
    ({ durationMs: this.durationMs, renewDeadlineMs: this.renewDeadlineMs, retryMs: this.retryMs } = leaderTimings(opts));
    // Two sockets: a renewal never waits behind anything but the previous Lease request.
    this.client = new RawClient(kubeConfig, 2);
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
    this.timer = setTimeout(() => { this.ticking = this.tick().finally(() => this.schedule(this.nextDelay())); }, timerDelay(ms));
  }

  /** The retry period, but a leader whose renewals fail looks again no later than its deadline. */
  private nextDelay(): number {
    if (!this.leading) return this.retryMs;
    return Math.max(0, Math.min(this.retryMs, this.lastRenew + this.renewDeadlineMs - Date.now()));
  }

  private leaseSeconds(): number { return Math.max(1, Math.ceil(this.durationMs / 1000)); }

  private async tick(): Promise<void> {
    const startedAt = Date.now();
    // A leader has until lastRenew + renewDeadline; a candidate's attempt gets a whole renew deadline.
    const budget = this.leading ? this.lastRenew + this.renewDeadlineMs - startedAt : this.renewDeadlineMs;
    if (this.leading && budget <= 0) { await this.loseLeadership('renew deadline passed'); return; }
    try {
      const ok = await withDeadline(this.tryAcquireOrRenew(new Date(startedAt), startedAt + budget), budget, 'lease update');
      if (ok) {
        // The attempt's start, not its end: the Lease says renewTime = startedAt.
        this.lastRenew = startedAt;
        if (this.leading) this.renewals++;
        if (!this.leading && !this.stopped) {
          this.leading = true;
          this.log.info('became leader', { lease: this.opts.leaseName, identity: this.opts.identity });
          // Not awaited: what leading starts (cache sync) may take longer than a lease; renewals go on.
          void Promise.resolve().then(() => this.callbacks.onStartedLeading())
            .catch((e) => this.log.error('onStartedLeading failed', { error: e }));
        }
        return;
      }
    } catch (e) {
      this.log.warn('lease update failed', { error: e, lease: this.opts.leaseName });
    }
    if (this.leading && Date.now() - this.lastRenew >= this.renewDeadlineMs) await this.loseLeadership('renew deadline passed');
    else if (this.leading && this.lease && this.lease.spec?.holderIdentity !== this.opts.identity) await this.loseLeadership('another replica holds the lease');
  }

  private async loseLeadership(why: string): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    this.log.warn('lost leadership', { why, lease: this.opts.leaseName });
    await this.callbacks.onStoppedLeading();
  }

  private async tryAcquireOrRenew(now: Date, deadline: number): Promise<boolean> {
    const left = () => Math.max(1, deadline - Date.now());
    const micro = now.toISOString().replace(/Z$/, '000Z');
    let lease: Record<string, any> | undefined;
    try {
      lease = await this.client.request('GET', this.path, { deadlineMs: left() });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    this.lease = lease;
    if (!lease) {
      try {
        this.lease = await this.client.request('POST', collectionPath('coordination.k8s.io/v1', 'Lease', this.namespace), {
          deadlineMs: left(),
          body: {
            apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
            metadata: { name: this.opts.leaseName, namespace: this.namespace },
            spec: { holderIdentity: this.opts.identity, leaseDurationSeconds: this.leaseSeconds(), acquireTime: micro, renewTime: micro, leaseTransitions: 0 },
          },
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
      this.lease = await this.client.request('PUT', this.path, { body: next, deadlineMs: left() });
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
        const lease = await this.client.request('GET', this.path, { deadlineMs: this.renewDeadlineMs });
        if (lease?.spec?.holderIdentity === this.opts.identity) {
          await this.client.request('PUT', this.path, { body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1 } }, deadlineMs: this.renewDeadlineMs });
        }
      } catch (e) {
        this.log.warn('could not release the lease; the next leader waits for it to expire', { error: e });
      }
    }
    this.client.close();
  }
}
