/**
 * A work queue in the style of client-go's: a key is queued at most once, a key is never processed
 * by two workers at once (an add during processing re-queues it after), failures back off per key
 * exponentially, and a bounded number of workers drain it.
 */

export interface QueueOptions {
  /** Workers processing keys in parallel (default 4). */
  readonly concurrency?: number;
  /** First retry delay after a failure (default 200 ms); doubles per consecutive failure. */
  readonly baseDelayMs?: number;
  /** Retry delay cap (default 60 s). */
  readonly maxDelayMs?: number;
  /** Called whenever the number of waiting keys changes (metrics). */
  readonly onDepth?: (depth: number) => void;
}

/** What a handler says about a key: nothing (done until something changes) or look again later. */
export interface HandlerResult { readonly requeueAfterMs?: number }
export type Handler = (key: string) => Promise<HandlerResult | void>;
export type ErrorHandler = (key: string, error: unknown, retryInMs: number) => void;

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private running = 0;
  private stopped = true;
  private handler?: Handler;
  private onError?: ErrorHandler;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: QueueOptions = {}) {}

  get depth(): number { return this.queue.length; }

  start(handler: Handler, onError?: ErrorHandler): void {
    this.handler = handler;
    this.onError = onError;
    this.stopped = false;
    this.pump();
  }

  /** Stop taking keys; resolves when in-flight handlers finished. Pending keys and timers are dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.dirty.clear();
    this.depthChanged();
    if (this.running > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  add(key: string): void {
    if (this.stopped && this.handler) return;
    const t = this.timers.get(key);
    if (t) { clearTimeout(t.timer); this.timers.delete(key); }
    if (this.processing.has(key)) { this.dirty.add(key); return; }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.depthChanged();
    this.pump();
  }

  /** Add after a delay; an earlier pending delay for the same key wins (the sooner look is enough). */
  addAfter(key: string, ms: number): void {
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => { this.timers.delete(key); this.add(key); }, ms);
    timer.unref?.();
    this.timers.set(key, { at, timer });
  }

  private backoff(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const base = this.opts.baseDelayMs ?? 200;
    const delay = Math.min(base * 2 ** (n - 1), this.opts.maxDelayMs ?? 60_000);
    // Jitter, so keys that failed together (API server blip) do not retry in lockstep.
    return Math.round(delay * (0.8 + Math.random() * 0.4));
  }

  private depthChanged(): void { this.opts.onDepth?.(this.queue.length); }

  private pump(): void {
    const limit = this.opts.concurrency ?? 4;
    while (!this.stopped && this.handler && this.running < limit && this.queue.length > 0) {
      const key = this.queue.shift()!;
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
      this.failures.delete(key);
      retryIn = result?.requeueAfterMs;
    } catch (e) {
      retryIn = this.backoff(key);
      try { this.onError?.(key, e, retryIn); } catch { /* an error reporter must not stop the queue */ }
    } finally {
      this.processing.delete(key);
      this.running--;
    }
    if (!this.stopped) {
      if (this.dirty.delete(key)) this.add(key);
      else if (retryIn !== undefined) this.addAfter(key, retryIn);
    }
    if (this.running === 0) { const w = this.idleWaiters; this.idleWaiters = []; w.forEach((r) => r()); }
    this.pump();
  }
}
