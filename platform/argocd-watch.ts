import * as http from 'node:http';
import * as https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

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
  private readonly requests: http.ClientRequest[] = [];
  private readonly errors: string[] = [];

  private constructor(private readonly kc: KubeConfig) {}

  /** Starts one watch per kind, on its collection path (from "now": objects that exist already arrive as ADDED first). */
  static async start(kc: KubeConfig, collections: Record<string, string>, query: Record<string, string> = {}): Promise<EventRecorder> {
    const r = new EventRecorder(kc);
    await Promise.all(Object.entries(collections).map(([kind, p]) => r.watch(kind, p, query)));
    return r;
  }

  private async watch(kind: string, collection: string, query: Record<string, string>): Promise<void> {
    const server = new URL(this.kc.getCurrentCluster()!.server);
    const url = new URL(collection, server);
    for (const [k, v] of Object.entries({ ...query, watch: '1', allowWatchBookmarks: 'false' })) url.searchParams.set(k, v);
    const opts: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(opts);
    await new Promise<void>((resolve, reject) => {
      const req = https.request(url, opts, (res) => {
        if (res.statusCode !== 200) { reject(new Error(`watch ${collection}: HTTP ${res.statusCode}`)); res.resume(); return; }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const e = JSON.parse(line);
            if (e.type === 'ERROR') { this.errors.push(`${collection}: ${JSON.stringify(e.object).slice(0, 300)}`); continue; }
            this.events.push({ kind, type: e.type, rv: Number(e.object.metadata.resourceVersion), at: Date.now(), object: e.object });
          }
        });
        resolve();
      });
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
      req.end();
      this.requests.push(req);
    });
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

  stop(): void { for (const r of this.requests) r.destroy(); }
}
