import { BucketRateLimiter, ItemExponentialFailureRateLimiter, MaxOfRateLimiter, RateLimiter, requeueDelay } from './rate-limiter';
import { longTimeout } from './timers';

/**
 * A work queue in the style of client-go's: a key is queued at most once, a key is never processed
 * by two workers at once (an add during processing re-queues it after), failures back off per key
 * exponentially and all keys together through a token bucket, and a bounded number of workers drain it.
 *
 * No caller can make it spin: a requeue shorter than the floor is rate limited like a
 * failure, and delays longer than setTimeout can hold (about 24.8 days) are waited in parts.
 */

export interface QueueOptions {
  /** Workers processing keys in parallel (default 4). */
  readonly concurrency?: number;
  /** First delay after a failure or an "again soon" requeue; doubles per consecutive one (default 200 ms). */
  readonly baseDelayMs?: number;
  /** Cap of that delay (default 60 s). */
  readonly maxDelayMs?: number;
  /** Rate-limited retries of all keys together: tokens per second (default 50). */
  readonly retryQps?: number;
  /** Rate-limited retries allowed at once (default 300). */
  readonly retryBurst?: number;
  /** A handler's requeueAfterMs below this is "again soon" and rate limited (default 50 ms). */
  readonly minRequeueMs?: number;
  /** Replaces the limiter built from baseDelayMs, maxDelayMs, retryQps and retryBurst. */
  readonly rateLimiter?: RateLimiter;
  /** Random source for the jitter (0 to +25 %) of rate-limited delays (default Math.random). */
  readonly random?: () => number;
  /** Called whenever the number of waiting keys changes (metrics). */
  readonly onDepth?: (depth: number) => void;
}

/** What a handler says about a key: nothing (done until something changes) or look again later. */
export interface HandlerResult { readonly requeueAfterMs?: number }
export type Handler = (key: string) => Promise<HandlerResult | void>;
export type ErrorHandler = (key: string, error: unknown, retryInMs: number) => void;

/** How soon a key is wanted: `priority` keys are taken before every other waiting key. */
export interface AddOptions { readonly priority?: boolean }

export class WorkQueue {
  /**
   * Two FIFOs: priority keys (cheap, latency-bound work, e.g. starting a run whose sidecars just
   * became Ready) are taken before normal ones (provisioning). A key promoted while waiting in the
   * normal FIFO leaves a stale entry there, skipped when reached (`queued` says where it waits).
   */
  private readonly urgent: string[] = [];
  private readonly queue: string[] = [];
  /** Waiting keys and the FIFO they wait in. */
  private readonly queued = new Map<string, 'urgent' | 'normal'>();
  private readonly processing = new Set<string>();
  /** Keys added while being processed, and whether one of those adds asked for priority. */
  private readonly dirty = new Map<string, boolean>();
  private readonly timers = new Map<string, { at: number; cancel: () => void }>();
  private readonly limiter: RateLimiter;
  private readonly floorMs: number;
  private running = 0;
  private stopped = true;
  private handler?: Handler;
  private onError?: ErrorHandler;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: QueueOptions = {}) {
    this.limiter = opts.rateLimiter ?? new MaxOfRateLimiter(
      new ItemExponentialFailureRateLimiter(opts.baseDelayMs ?? 200, opts.maxDelayMs ?? 60_000),
      new BucketRateLimiter(opts.retryQps ?? 50, opts.retryBurst ?? 300),
    );
    this.floorMs = opts.minRequeueMs ?? 50;
  }

  get depth(): number { return this.queued.size; }

  /** When a delayed add of `key` is due (epoch ms), if one is pending. */
  scheduledAt(key: string): number | undefined { return this.timers.get(key)?.at; }

  start(handler: Handler, onError?: ErrorHandler): void {
    this.handler = handler;
    this.onError = onError;
    this.stopped = false;
    this.pump();
  }

  /** Stop taking keys; resolves when in-flight handlers finished. Pending keys and timers are dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    this.queue.length = 0;
    this.urgent.length = 0;
    this.queued.clear();
    this.dirty.clear();
    this.depthChanged();
    if (this.running > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  add(key: string, opts?: AddOptions): void {
    if (this.stopped && this.handler) return;
    const t = this.timers.get(key);
    if (t) { t.cancel(); this.timers.delete(key); }
    const priority = opts?.priority === true;
    if (this.processing.has(key)) { this.dirty.set(key, priority || (this.dirty.get(key) ?? false)); return; }
    const where = this.queued.get(key);
    if (where === 'urgent' || (where === 'normal' && !priority)) return;
    this.queued.set(key, priority ? 'urgent' : 'normal');
    (priority ? this.urgent : this.queue).push(key);
    this.depthChanged();
    this.pump();
  }

  /**
   * Add after a delay; an earlier pending delay for the same key wins (the sooner look is enough).
   * Any delay is safe: NaN and negatives mean now, Infinity and 30 days are waited (in parts), never spun.
   */
  addAfter(key: string, ms: number): void {
    if (!(ms > 0)) return this.add(key);
    if (this.stopped && this.handler) return;
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    existing?.cancel();
    const cancel = longTimeout(() => { this.timers.delete(key); this.add(key); }, ms);
    this.timers.set(key, { at, cancel });
  }

  /**
   * A rate-limited delay for key, with jitter so keys that failed together do not retry in lockstep.
   * The jitter only lengthens (up to +25 %): shortening would spend the bucket's future tokens early.
   */
  private limited(key: string): number {
    const d = this.limiter.when(key);
    return Math.max(this.floorMs, Math.round(d * (1 + (this.opts.random ?? Math.random)() * 0.25)));
  }

  private depthChanged(): void { this.opts.onDepth?.(this.queued.size); }

  /** The next waiting key, priority ones first; stale entries (promoted keys) are skipped. */
  private next(): string | undefined {
    while (this.urgent.length > 0) {
      const key = this.urgent.shift()!;
      if (this.queued.get(key) === 'urgent') return key;
    }
    while (this.queue.length > 0) {
      const key = this.queue.shift()!;
      if (this.queued.get(key) === 'normal') return key;
    }
    return undefined;
  }

  private pump(): void {
    const limit = this.opts.concurrency ?? 4;
    while (!this.stopped && this.handler && this.running < limit && this.queued.size > 0) {
      const key = this.next();
      if (key === undefined) break;
      this.queued.delete(key);
      this.processing.add(key);
      this.running++;
      this.depthChanged();
      void this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    let retryIn: number | undefined;
    try {
      const result = await this.handler!(key);
      let soon = false;
      retryIn = requeueDelay(result?.requeueAfterMs, this.floorMs, () => { soon = true; return this.limited(key); });
      // Done, or waiting for a time it named: its next failure starts from the base delay again.
      if (!soon) this.limiter.forget(key);
    } catch (e) {
      retryIn = this.limited(key);
      try { this.onError?.(key, e, retryIn); } catch { /* an error reporter must not stop the queue */ }
    } finally {
      this.processing.delete(key);
      this.running--;
    }
    if (!this.stopped) {
      const again = this.dirty.get(key);
      if (again !== undefined) { this.dirty.delete(key); this.add(key, { priority: again }); }
      else if (retryIn !== undefined) this.addAfter(key, retryIn);
    }
    if (this.running === 0) { const w = this.idleWaiters; this.idleWaiters = []; w.forEach((r) => r()); }
    this.pump();
  }
}
