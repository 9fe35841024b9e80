import type { KubeAccess as KubeConfig } from './kube-access';
import type { Logger } from '../log';
import { silentLogger } from '../log';
import { timerDelay } from '../timers';
import { IndexFunc, IndexedStore, InformerEvent, InformerHandler, KubeObject, NAMESPACE_INDEX, ObjectCache, keyOf } from './object-store';
import { ApiError, RawClient } from './raw';
import { startWatch, WatchHandle, WatchStalledError } from './watch';
import { afterWatch } from './watch-recovery';

export interface InformerOptions {
  /** Collection path, cluster-wide or namespaced (see collectionPath). */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** For logs and errors. */
  readonly name: string;
  /** Objects failing this are neither cached nor reported (e.g. namespaces the operator does not serve). */
  readonly filter?: (obj: KubeObject) => boolean;
  /**
   * Reshapes every object before it is cached and reported (after managedFields are dropped), like
   * client-go's SetTransform: keep only the fields the readers use, so the cache's memory follows
   * what the operator reads, not what others write into the objects.
   */
  readonly transform?: (obj: KubeObject) => KubeObject;
  /**
   * Secondary indexes, like client-go's Indexers: index name → the keys an object is filed under.
   * `byIndex(name, key)` then answers without a scan. The namespace index always exists.
   */
  readonly indexers?: Record<string, IndexFunc>;
  readonly log?: Logger;
  /** Reconnect backoff bounds (default 250 ms .. 15 s). */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Objects per list page (limit/continue); 0 lists in one request (default 500). */
  readonly pageSize?: number;
  /**
   * Re-watch when a watch delivers nothing, not even a bookmark, for this long (default 150 s: the
   * API server sends a bookmark about every minute on a watch that asks for them).
   */
  readonly watchIdleTimeoutMs?: number;
  /** Server-side watch timeout (default: random in 240..360 s); the client gives up 30 s after it. */
  readonly watchTimeoutSeconds?: number;
}

/** How long after the server's own watch timeout the client gives up on the stream. */
const WATCH_DEADLINE_GRACE_MS = 30_000;

/**
 * Cached objects drop metadata.managedFields, which nothing reads from a cache and which is a large
 * share of every object (one entry per field manager: controllers, kubelet/kwok, us); with 1,000 live
 * runs it was tens of MiB of the operator's heap (docs/benchmarks.md). Like client-go's
 * TransformStripManagedFields.
 */
function stripManagedFields(obj: KubeObject): KubeObject {
  if (obj?.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}

/**
 * A minimal shared informer: list (in pages), then watch from the list's resourceVersion; a 410
 * Gone or a ResourceVersionTooLarge relists and diffs against the cache so no delete is missed;
 * any other drop reconnects with backoff from the last seen version. It never gives up while
 * started, and never stalls silently: TCP keepalive on the watch socket, a watch silent
 * for longer than the idle timeout (no event, no bookmark) is abandoned and re-watched, ERROR
 * events back off like any failure.
 */
export class Informer implements ObjectCache {
  private readonly cache = new IndexedStore();
  private readonly handlers: InformerHandler[] = [];
  private resourceVersion?: string;
  private watch?: WatchHandle;
  private running = false;
  private synced = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private abortStart?: () => void;
  private firstSynced?: Promise<void>;
  private readonly log: Logger;
  /** Number of (re)lists, list pages, watch (re)starts, stalled watches given up, ERROR events; tests and metrics read them. */
  lists = 0;
  pages = 0;
  watches = 0;
  stalls = 0;
  errorEvents = 0;

  constructor(private readonly kc: KubeConfig, private readonly client: RawClient, private readonly opts: InformerOptions) {
    this.log = (opts.log ?? silentLogger).child({ informer: opts.name });
    for (const [name, fn] of Object.entries(opts.indexers ?? {})) this.cache.addIndex(name, fn);
  }

  /** managedFields dropped, then the caller's transform. */
  private shape(obj: KubeObject): KubeObject {
    const o = stripManagedFields(obj);
    return this.opts.transform ? this.opts.transform(o) : o;
  }

  on(handler: InformerHandler): this { this.handlers.push(handler); return this; }
  off(handler: InformerHandler): this { const i = this.handlers.indexOf(handler); if (i >= 0) this.handlers.splice(i, 1); return this; }

  get hasSynced(): boolean { return this.synced; }

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): KubeObject[] {
    return namespace === undefined ? [...this.cache.values()] : this.cache.byIndex(NAMESPACE_INDEX, namespace);
  }

  byIndex(index: string, key: string): KubeObject[] { return this.cache.byIndex(index, key); }

  get size(): number { return this.cache.size; }

  /**
   * Resolves after the first list landed in the cache; a second caller (caches shared by the webhook
   * and the controller) waits for the same first list.
   */
  async start(): Promise<void> {
    if (this.running) return this.firstSynced;
    this.running = true;
    let firstSync!: () => void;
    let firstFail!: (e: unknown) => void;
    const synced = new Promise<void>((res, rej) => { firstSync = res; firstFail = rej; });
    synced.catch(() => undefined);
    this.firstSynced = synced;
    // stop() before the first sync must not leave start() waiting forever (a shutdown would hang).
    this.abortStart = () => firstFail(new Error(`informer ${this.opts.name} stopped before its first list`));
    this.loop = this.run(firstSync, firstFail);
    await synced;
  }

  async stop(): Promise<void> {
    this.running = false;
    if (!this.synced) this.abortStart?.();
    this.watch?.abort();
    this.wake?.();
    await this.loop;
  }

  private emit(type: InformerEvent, obj: KubeObject, old?: KubeObject): void {
    for (const h of this.handlers) {
      try { h(type, obj, old); } catch (e) { this.log.error('informer handler threw', { error: e }); }
    }
  }

  /** One page-by-page list; a continue token that expired between pages restarts it in one request (as client-go's pager does). */
  private async listAll(): Promise<{ items: KubeObject[]; resourceVersion?: string }> {
    const items: KubeObject[] = [];
    let limit: number | undefined = (this.opts.pageSize ?? 500) > 0 ? this.opts.pageSize ?? 500 : undefined;
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    for (;;) {
      let page: Record<string, any>;
      try {
        page = await this.client.get(this.opts.path, { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector, limit, continue: cont });
      } catch (e) {
        if (!(cont && e instanceof ApiError && e.statusCode === 410)) throw e;
        this.log.info('list continue token expired: listing again in one request');
        items.length = 0; cont = undefined; limit = undefined;
        continue;
      }
      this.pages++;
      const itemKind = typeof page.kind === 'string' ? page.kind.replace(/List$/, '') : undefined;
      // List items come without apiVersion/kind; fill them so cached objects look like watched ones.
      for (const item of page.items ?? []) items.push(this.shape({ apiVersion: page.apiVersion, kind: itemKind, ...item } as KubeObject));
      resourceVersion = page.metadata?.resourceVersion;
      cont = page.metadata?.continue || undefined;
      if (!cont) return { items, resourceVersion };
    }
  }

  private async relist(): Promise<void> {
    this.lists++;
    const list = await this.listAll();
    const fresh = new Map<string, KubeObject>();
    for (const obj of list.items) {
      if (this.opts.filter && !this.opts.filter(obj)) continue;
      fresh.set(keyOf(obj), obj);
    }
    const old = new Map(this.cache.entries());
    this.cache.clear();
    for (const [k, v] of fresh) this.cache.set(k, v);
    for (const [k, v] of fresh) {
      const prev = old.get(k);
      if (!prev) this.emit('add', v);
      else if (prev.metadata.resourceVersion !== v.metadata.resourceVersion) this.emit('update', v, prev);
    }
    for (const [k, v] of old) if (!fresh.has(k)) this.emit('delete', v);
    this.resourceVersion = list.resourceVersion;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => { const t = setTimeout(r, timerDelay(ms)); t.unref?.(); this.wake = () => { clearTimeout(t); r(); }; });
  }

  private async run(firstSync: () => void, firstFail: (e: unknown) => void): Promise<void> {
    const minBackoff = this.opts.minBackoffMs ?? 250;
    let backoff = minBackoff;
    let needList = true;
    let first = true;
    let emptyStalls = 0;
    const pause = async () => { await this.sleep(backoff); backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 15_000); };
    while (this.running) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
          if (first) { first = false; this.synced = true; firstSync(); }
        }
        this.watches++;
        let errorStatus: Record<string, any> | undefined;
        let delivered = false;
        const began = Date.now();
        // Servers end watches themselves too; a random bound spreads reconnects of many informers.
        const timeoutSeconds = this.opts.watchTimeoutSeconds ?? 240 + Math.floor(Math.random() * 120);
        this.watch = await startWatch(this.kc, this.opts.path, {
          labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector,
          resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds,
        }, (ev) => {
          if (ev.type === 'ERROR') {
            errorStatus = ev.object ?? {};
            this.errorEvents++;
            this.watch?.abort();
            return;
          }
          delivered = true;
          const rv = ev.object?.metadata?.resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (ev.type === 'BOOKMARK') return;
          const obj = this.shape(ev.object as KubeObject);
          if (this.opts.filter && !this.opts.filter(obj)) return;
          const k = keyOf(obj);
          const prev = this.cache.get(k);
          if (ev.type === 'DELETED') { this.cache.delete(k); this.emit('delete', obj); return; }
          this.cache.set(k, obj);
          this.emit(prev ? 'update' : 'add', obj, prev);
        }, { idleTimeoutMs: this.opts.watchIdleTimeoutMs ?? 150_000, deadlineMs: timeoutSeconds * 1000 + WATCH_DEADLINE_GRACE_MS });
        // stop() while the watch was being set up found no watch to abort: abort it now.
        if (!this.running) this.watch.abort();
        const err = await this.watch.done;
        this.watch = undefined;
        if (!this.running) break;
        const next = afterWatch({ errorStatus, error: err, delivered, lastedMs: Date.now() - began, emptyStallsBefore: emptyStalls });
        if (err instanceof WatchStalledError) { this.stalls++; emptyStalls = delivered ? 0 : emptyStalls + 1; } else emptyStalls = 0;
        if (next.resetBackoff) backoff = minBackoff;
        if (next.action === 'fail') throw err;
        if (next.action === 'relist') { needList = true; emptyStalls = 0; }
        if (next.wait) this.log.warn(`watch ended: ${next.action === 'relist' ? 'relisting' : 're-watching'} after a backoff`, { why: next.why, backoffMs: backoff });
        if (next.wait) await pause();
      } catch (e) {
        if (!this.running) break;
        if (first) {
          // Before the first sync a caller waits in start(); tell it what is wrong when the path itself is bad.
          if (e instanceof ApiError && (e.statusCode === 404 || e.statusCode === 403)) { this.running = false; firstFail(e); break; }
        }
        this.log.warn('watch dropped: reconnecting', { error: e, backoffMs: backoff });
        await pause();
      }
    }
  }
}
