import { KubeConfig } from '@kubernetes/client-node';
import { startWatch, WatchHandle } from '../src/k8s/watch';

/**
 * Watches on collections, every event kept with its resourceVersion, so that a test can tell in
 * which order the API server stored writes to objects of different kinds. The harness's cluster
 * has one etcd, whose revision is every object's resourceVersion: one counter for all keys, so two
 * writes compare by it whatever their kinds (a single watch could not span kinds).
 */
export interface WatchEvent {
  /** The kind watched (list and watch objects need not carry it). */
  readonly kind: string;
  readonly type: string;
  readonly rv: number;
  /** When the event arrived here (Date.now()), for timelines. */
  readonly at: number;
  readonly object: Record<string, any>;
}

export class EventRecorder {
  readonly events: WatchEvent[] = [];
  private readonly handles: WatchHandle[] = [];
  private stopped = false;
  private readonly errors: string[] = [];

  private constructor(private readonly kc: KubeConfig) {}

  /** Starts one watch per kind, on its collection path (from "now": objects that exist already arrive as ADDED first). */
  static async start(kc: KubeConfig, collections: Record<string, string>, query: Record<string, string> = {}): Promise<EventRecorder> {
    const r = new EventRecorder(kc);
    await Promise.all(Object.entries(collections).map(([kind, p]) => r.watch(kind, p, query)));
    return r;
  }

  private async watch(kind: string, collection: string, query: Record<string, string>): Promise<void> {
    // The operator's own watch stream (src/k8s/watch.ts): the same decoding, and a stream that ends
    // early is kept as a failure, since it would hide events.
    const handle = await startWatch(this.kc, collection, { ...query, allowWatchBookmarks: false }, (e) => {
      if (e.type === 'ERROR') { this.errors.push(`${collection}: ${JSON.stringify(e.object).slice(0, 300)}`); return; }
      if (e.type === 'BOOKMARK') return;
      this.events.push({ kind, type: e.type, rv: Number(e.object.metadata.resourceVersion), at: Date.now(), object: e.object });
    });
    this.handles.push(handle);
    void handle.done.then((err) => { if (!this.stopped) this.errors.push(`${collection}: the watch ended${err ? `: ${err.message}` : ''}`); });
  }

  /** The resourceVersion of the ADDED event of kind/namespace/name (its creation), if one arrived. */
  created(kind: string, name: string, namespace?: string): number | undefined {
    return this.events.find((e) => e.type === 'ADDED' && e.kind === kind && e.object.metadata.name === name &&
      (e.object.metadata.namespace ?? undefined) === namespace)?.rv;
  }

  /** Events of one object, in arrival order. */
  of(kind: string, name: string, namespace?: string): WatchEvent[] {
    return this.events.filter((e) => e.kind === kind && e.object.metadata.name === name && (e.object.metadata.namespace ?? undefined) === namespace);
  }

  /** Watch errors the server sent (a watch that ended early would hide events). */
  get failures(): string[] { return [...this.errors]; }

  stop(): void {
    this.stopped = true;
    for (const h of this.handles) h.abort();
  }
}
