import type { KubeObject, ObjectCache, InformerHandler } from './object-store';

/**
 * Several caches of one kind holding disjoint sets of objects (different label selectors), read as
 * one: a get asks each in turn, a list concatenates.
 */
export class UnionCache implements ObjectCache {
  constructor(private readonly parts: readonly ObjectCache[]) {}
  on(handler: InformerHandler): this { for (const p of this.parts) p.on(handler); return this; }
  off(handler: InformerHandler): this { for (const p of this.parts) p.off(handler); return this; }
  get(namespace: string | undefined, name: string): KubeObject | undefined {
    for (const p of this.parts) { const o = p.get(namespace, name); if (o) return o; }
    return undefined;
  }
  list(namespace?: string): KubeObject[] { return this.parts.flatMap((p) => p.list(namespace)); }
  byIndex(index: string, key: string): KubeObject[] { return this.parts.flatMap((p) => p.byIndex(index, key)); }
  get size(): number { return this.parts.reduce((n, p) => n + p.size, 0); }
  async start(): Promise<void> { await Promise.all(this.parts.map((p) => p.start())); }
  async stop(): Promise<void> { await Promise.all(this.parts.map((p) => p.stop())); }
  get hasSynced(): boolean { return this.parts.every((p) => p.hasSynced); }
}
