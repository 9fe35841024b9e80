/**
 * The objects a cache holds and how readers reach them: the object type, the reader's interface
 * (ObjectCache), and the indexed store behind every informer.
 */

export type KubeObject = Record<string, any> & { metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [field: string]: any } };

export type InformerEvent = 'add' | 'update' | 'delete';
/** The keys an object is filed under in one index (none: not in it). */
export type IndexFunc = (obj: KubeObject) => string[];
export type InformerHandler = (type: InformerEvent, obj: KubeObject, old?: KubeObject) => void;

/** What readers of a cache need; both Informer and MultiNamespaceInformer provide it. */
export interface ObjectCache {
  on(handler: InformerHandler): this;
  /** Removes a handler added with on() (a controller that stops leading leaves shared caches clean). */
  off(handler: InformerHandler): this;
  get(namespace: string | undefined, name: string): KubeObject | undefined;
  /** Every object, or those of one namespace (from the namespace index: no scan). */
  list(namespace?: string): KubeObject[];
  /** The objects filed under `key` in the index `index` (see InformerOptions.indexers); [] for an unknown index. */
  byIndex(index: string, key: string): KubeObject[];
  /** Objects cached. */
  readonly size: number;
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly hasSynced: boolean;
}

/** The index every cache keeps: objects by namespace ('' for cluster-scoped ones). */
export const NAMESPACE_INDEX = 'namespace';

/**
 * The objects of an informer by key, with secondary indexes kept up to date on every write (like
 * client-go's ThreadSafeStore): readers ask an index for the few objects they need instead of
 * copying and filtering the whole cache.
 */
export class IndexedStore {
  private readonly items = new Map<string, KubeObject>();
  private readonly indexers = new Map<string, IndexFunc>([[NAMESPACE_INDEX, (o) => [o.metadata?.namespace ?? '']]]);
  /** index name → index key → object keys. */
  private readonly indices = new Map<string, Map<string, Set<string>>>([[NAMESPACE_INDEX, new Map()]]);

  addIndex(name: string, fn: IndexFunc): void {
    if (this.items.size > 0) throw new Error(`index ${name} must be added before the first object`);
    this.indexers.set(name, fn);
    this.indices.set(name, new Map());
  }

  get size(): number { return this.items.size; }
  get(key: string): KubeObject | undefined { return this.items.get(key); }
  has(key: string): boolean { return this.items.has(key); }
  values(): IterableIterator<KubeObject> { return this.items.values(); }
  entries(): IterableIterator<[string, KubeObject]> { return this.items.entries(); }

  set(key: string, obj: KubeObject): void {
    const prev = this.items.get(key);
    if (prev) this.unindex(key, prev);
    this.items.set(key, obj);
    for (const [name, fn] of this.indexers) {
      const idx = this.indices.get(name)!;
      for (const k of safeKeys(fn, obj)) {
        let set = idx.get(k);
        if (!set) idx.set(k, (set = new Set()));
        set.add(key);
      }
    }
  }

  delete(key: string): boolean {
    const prev = this.items.get(key);
    if (!prev) return false;
    this.unindex(key, prev);
    return this.items.delete(key);
  }

  clear(): void {
    this.items.clear();
    for (const idx of this.indices.values()) idx.clear();
  }

  byIndex(index: string, key: string): KubeObject[] {
    const set = this.indices.get(index)?.get(key);
    if (!set) return [];
    const out: KubeObject[] = [];
    for (const k of set) { const o = this.items.get(k); if (o) out.push(o); }
    return out;
  }

  /** The keys of an index (the sweep walks run ids, not objects). */
  indexKeys(index: string): string[] { return [...(this.indices.get(index)?.keys() ?? [])]; }

  private unindex(key: string, obj: KubeObject): void {
    for (const [name, fn] of this.indexers) {
      const idx = this.indices.get(name)!;
      for (const k of safeKeys(fn, obj)) {
        const set = idx.get(k);
        if (!set) continue;
        set.delete(key);
        if (set.size === 0) idx.delete(k);
      }
    }
  }
}

/** An index function that throws on a strange object files it nowhere, rather than failing the informer. */
function safeKeys(fn: IndexFunc, obj: KubeObject): string[] {
  try { return fn(obj) ?? []; } catch { return []; }
}

export function keyOf(obj: { metadata?: { name?: string; namespace?: string } }): string {
  const m = obj.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name}` : String(m.name);
}
