import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../log';
import { silentLogger } from '../log';
import { ApiError, RawClient } from './raw';
import { startWatch, WatchHandle } from './watch';

export type KubeObject = Record<string, any> & { metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [field: string]: any } };

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler = (type: InformerEvent, obj: KubeObject, old?: KubeObject) => void;

export interface InformerOptions {
  /** Collection path, cluster-wide or namespaced (see collectionPath). */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** For logs and errors. */
  readonly name: string;
  /** Objects failing this are neither cached nor reported (e.g. namespaces the operator does not serve). */
  readonly filter?: (obj: KubeObject) => boolean;
  readonly log?: Logger;
  /** Reconnect backoff bounds (default 250 ms .. 15 s). */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

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

export function keyOf(obj: { metadata?: { name?: string; namespace?: string } }): string {
  const m = obj.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name}` : String(m.name);
}

/**
 * A minimal shared informer: list, then watch from the list's resourceVersion; a 410 Gone (the
 * server compacted past our version) relists and diffs against the cache so no delete is missed;
 * any other drop reconnects with backoff from the last seen version. It never gives up while
 * started: a watch drop must not silently stop the operator.
 */
export class Informer implements ObjectCache {
  private readonly cache = new Map<string, KubeObject>();
  private readonly handlers: InformerHandler[] = [];
  private resourceVersion?: string;
  private watch?: WatchHandle;
  private running = false;
  private synced = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private abortStart?: () => void;
  private readonly log: Logger;
  /** Number of (re)lists and watch restarts; tests and metrics read them. */
  lists = 0;
  watches = 0;

  constructor(private readonly kc: KubeConfig, private readonly client: RawClient, private readonly opts: InformerOptions) {
    this.log = (opts.log ?? silentLogger).child({ informer: opts.name });
  }

  on(handler: InformerHandler): this { this.handlers.push(handler); return this; }

  get hasSynced(): boolean { return this.synced; }

  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): KubeObject[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  /** Resolves after the first list landed in the cache. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    let firstSync!: () => void;
    let firstFail!: (e: unknown) => void;
    const synced = new Promise<void>((res, rej) => { firstSync = res; firstFail = rej; });
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

  private async relist(): Promise<void> {
    this.lists++;
    const list = await this.client.get(this.opts.path, { labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector });
    const fresh = new Map<string, KubeObject>();
    const itemKind = typeof list.kind === 'string' ? list.kind.replace(/List$/, '') : undefined;
    for (const item of list.items ?? []) {
      // List items come without apiVersion/kind; fill them so cached objects look like watched ones.
      const obj = stripManagedFields({ apiVersion: list.apiVersion, kind: itemKind, ...item } as KubeObject);
      if (this.opts.filter && !this.opts.filter(obj)) continue;
      fresh.set(keyOf(obj), obj);
    }
    const old = new Map(this.cache);
    this.cache.clear();
    for (const [k, v] of fresh) this.cache.set(k, v);
    for (const [k, v] of fresh) {
      const prev = old.get(k);
      if (!prev) this.emit('add', v);
      else if (prev.metadata.resourceVersion !== v.metadata.resourceVersion) this.emit('update', v, prev);
    }
    for (const [k, v] of old) if (!fresh.has(k)) this.emit('delete', v);
    this.resourceVersion = list.metadata?.resourceVersion;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => { const t = setTimeout(r, ms); t.unref?.(); this.wake = () => { clearTimeout(t); r(); }; });
  }

  private async run(firstSync: () => void, firstFail: (e: unknown) => void): Promise<void> {
    let backoff = this.opts.minBackoffMs ?? 250;
    let needList = true;
    let first = true;
    while (this.running) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
          if (first) { first = false; this.synced = true; firstSync(); }
        }
        this.watches++;
        let gone = false;
        this.watch = await startWatch(this.kc, this.opts.path, {
          labelSelector: this.opts.labelSelector, fieldSelector: this.opts.fieldSelector,
          resourceVersion: this.resourceVersion, allowWatchBookmarks: true,
          // Servers end watches themselves too; a random bound spreads reconnects of many informers.
          timeoutSeconds: 240 + Math.floor(Math.random() * 120),
        }, (ev) => {
          if (ev.type === 'ERROR') {
            if (ev.object?.code === 410) gone = true;
            else this.log.warn('watch error event', { status: ev.object });
            this.watch?.abort();
            return;
          }
          const obj = stripManagedFields(ev.object as KubeObject);
          const rv = obj.metadata?.resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (ev.type === 'BOOKMARK') return;
          if (this.opts.filter && !this.opts.filter(obj)) return;
          const k = keyOf(obj);
          const prev = this.cache.get(k);
          if (ev.type === 'DELETED') { this.cache.delete(k); this.emit('delete', obj); return; }
          this.cache.set(k, obj);
          this.emit(prev ? 'update' : 'add', obj, prev);
        });
        const err = await this.watch.done;
        this.watch = undefined;
        if (!this.running) break;
        if (gone || (err instanceof ApiError && err.statusCode === 410)) { needList = true; this.log.info('watch expired (410 Gone): relisting'); continue; }
        if (err) throw err;
        backoff = this.opts.minBackoffMs ?? 250;
      } catch (e) {
        if (!this.running) break;
        if (first) {
          // Before the first sync a caller waits in start(); tell it what is wrong when the path itself is bad.
          if (e instanceof ApiError && (e.statusCode === 404 || e.statusCode === 403)) { this.running = false; firstFail(e); break; }
        }
        this.log.warn('watch dropped: reconnecting', { error: e, backoffMs: backoff });
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.opts.maxBackoffMs ?? 15_000);
      }
    }
  }
}

/** What readers of a cache need; both Informer and MultiNamespaceInformer provide it. */
export interface ObjectCache {
  on(handler: InformerHandler): this;
  get(namespace: string | undefined, name: string): KubeObject | undefined;
  list(namespace?: string): KubeObject[];
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly hasSynced: boolean;
}

/**
 * One informer per namespace behind one cache interface: for an operator that serves a list of
 * namespaces and may only list some kinds (Secrets) in those, not cluster-wide (least privilege).
 */
export class MultiNamespaceInformer implements ObjectCache {
  private readonly byNs = new Map<string, Informer>();

  constructor(kc: KubeConfig, client: RawClient, namespaces: string[], pathFor: (ns: string) => string, opts: Omit<InformerOptions, 'path'>) {
    for (const ns of new Set(namespaces)) this.byNs.set(ns, new Informer(kc, client, { ...opts, name: `${opts.name}@${ns}`, path: pathFor(ns) }));
  }

  on(handler: InformerHandler): this { for (const i of this.byNs.values()) i.on(handler); return this; }
  get(namespace: string | undefined, name: string): KubeObject | undefined { return namespace ? this.byNs.get(namespace)?.get(namespace, name) : undefined; }
  list(namespace?: string): KubeObject[] {
    if (namespace !== undefined) return this.byNs.get(namespace)?.list() ?? [];
    return [...this.byNs.values()].flatMap((i) => i.list());
  }
  async start(): Promise<void> { await Promise.all([...this.byNs.values()].map((i) => i.start())); }
  async stop(): Promise<void> { await Promise.all([...this.byNs.values()].map((i) => i.stop())); }
  get hasSynced(): boolean { return [...this.byNs.values()].every((i) => i.hasSynced); }
}
