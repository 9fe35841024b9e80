/**
 * Retry pacing for the work queue, as client-go's workqueue does it: a per-key exponential backoff
 * (ItemExponentialFailureRateLimiter) and a token bucket shared by all keys (BucketRateLimiter),
 * combined by taking the larger delay (MaxOfRateLimiter). The per-key part keeps one broken run from
 * retrying fast; the bucket keeps a thousand runs failing together (an API server outage) from
 * retrying a thousand times a second when it comes back.
 */

/** Decides how long a key waits before its next rate-limited attempt. */
export interface RateLimiter {
  /** The delay before the next attempt of `key`, in ms; counts the attempt. */
  when(key: string): number;
  /** `key` succeeded: its next failure starts from the base delay again. */
  forget(key: string): void;
  /** Consecutive rate-limited attempts of `key` since it was last forgotten. */
  retries(key: string): number;
}

/** base * 2^failures, capped at max (an overflow to Infinity is the cap too, never NaN). */
export function exponentialDelay(failures: number, baseMs: number, maxMs: number): number {
  const d = baseMs * 2 ** failures;
  return Number.isFinite(d) && d < maxMs ? d : maxMs;
}

/** Per key: base, 2 base, 4 base, ... up to max. */
export class ItemExponentialFailureRateLimiter implements RateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(
    /** Delay after the first failure. */
    readonly baseDelayMs: number,
    /** Delay cap. */
    readonly maxDelayMs: number,
  ) {}

  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return exponentialDelay(n, this.baseDelayMs, this.maxDelayMs);
  }

  forget(key: string): void { this.failures.delete(key); }
  retries(key: string): number { return this.failures.get(key) ?? 0; }
}

/**
 * A token bucket shared by all keys: `burst` attempts at once, then `qps` per second. Each call
 * reserves a token, possibly one in the future (then the delay says when), like Go's rate.Limiter.Reserve.
 */
export class BucketRateLimiter implements RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    /** Tokens added per second. */
    readonly qps: number,
    /** Bucket size: attempts allowed at once. */
    readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(qps > 0) || !(burst >= 1)) throw new Error(`BucketRateLimiter needs qps > 0 and burst >= 1 (got qps ${qps}, burst ${burst})`);
    this.tokens = burst;
    this.last = now();
  }

  when(_key: string): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.qps) / 1000);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.qps);
  }

  forget(_key: string): void { /* shared: nothing per key */ }
  retries(_key: string): number { return 0; }
}

/** The largest delay of several limiters (each one is asked, so each counts the attempt). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: readonly RateLimiter[];
  constructor(...limiters: RateLimiter[]) { this.limiters = limiters; }
  when(key: string): number { return Math.max(0, ...this.limiters.map((l) => l.when(key))); }
  forget(key: string): void { for (const l of this.limiters) l.forget(key); }
  retries(key: string): number { return Math.max(0, ...this.limiters.map((l) => l.retries(key))); }
}

/**
 * How long a handler's requeue waits. Undefined: not requeued. A delay at or above the floor is
 * honoured as asked (a gate waiting for a deadline keeps its pace). Anything shorter (0, 1 ms,
 * negative, NaN) means "again soon", which must never become a hot loop: it is rate limited like a
 * failure (`backoff()`), and never sooner than the floor.
 */
export function requeueDelay(askedMs: number | undefined, floorMs: number, backoff: () => number): number | undefined {
  if (askedMs === undefined) return undefined;
  if (askedMs >= floorMs) return askedMs;
  return Math.max(floorMs, backoff());
}
