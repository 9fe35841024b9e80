import type { KubeAccess as KubeConfig } from './kube-access';
import { Informer, InformerOptions } from './informer';
import type { InformerHandler, KubeObject, ObjectCache } from './object-store';
import type { RawClient } from './raw';

/**
 * One informer per namespace behind one cache interface, for a kind the operator may only list in
 * some namespaces, not cluster-wide (least privilege: Secrets of the served namespaces), or needs
 * only in namespaces it learns about at run time (PipelineRuns of namespaces that hold
 * PipelineSidecars). `fixed` watches a known list; `ensure` adds a namespace while it runs, started
 * at once. Namespaces are never dropped while it runs: a run whose PipelineSidecar was deleted still
 * needs its reconcile to be refused or cleaned up.
 */
export class NamespacedInformers implements ObjectCache {
  private readonly byNs = new Map<string, Informer>();
  private readonly handlers: InformerHandler[] = [];
  private running = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly client: RawClient,
    private readonly pathFor: (ns: string) => string,
    private readonly opts: Omit<InformerOptions, 'path'>,
    /** Namespaces it may ever watch (undefined: any). */
    private readonly allowed?: readonly string[],
  ) {}

  /** Informers for exactly `namespaces`, started with start(). */
  static fixed(kc: KubeConfig, client: RawClient, namespaces: readonly string[], pathFor: (ns: string) => string, opts: Omit<InformerOptions, 'path'>): NamespacedInformers {
    const n = new NamespacedInformers(kc, client, pathFor, opts, namespaces);
    for (const ns of new Set(namespaces)) void n.ensure(ns);
    return n;
  }

  /** Starts watching `namespace` (no-op when it already is). Resolves when its first list is cached. */
  async ensure(namespace: string): Promise<void> {
    if (this.allowed && !this.allowed.includes(namespace)) return;
    let inf = this.byNs.get(namespace);
    if (!inf) {
      inf = new Informer(this.kc, this.client, { ...this.opts, name: `${this.opts.name}@${namespace}`, path: this.pathFor(namespace) });
      for (const h of this.handlers) inf.on(h);
      this.byNs.set(namespace, inf);
      if (!this.running) return;
    } else if (!this.running || inf.hasSynced) return;
    await inf.start().catch(() => undefined);
  }

  get namespaces(): string[] { return [...this.byNs.keys()]; }
  /** The per-namespace informers (measurement hooks cut their watches). */
  get informers(): Informer[] { return [...this.byNs.values()]; }

  on(handler: InformerHandler): this { this.handlers.push(handler); for (const i of this.byNs.values()) i.on(handler); return this; }
  off(handler: InformerHandler): this {
    const at = this.handlers.indexOf(handler);
    if (at >= 0) this.handlers.splice(at, 1);
    for (const i of this.byNs.values()) i.off(handler);
    return this;
  }
  get(namespace: string | undefined, name: string): KubeObject | undefined { return namespace ? this.byNs.get(namespace)?.get(namespace, name) : undefined; }
  list(namespace?: string): KubeObject[] {
    if (namespace !== undefined) return this.byNs.get(namespace)?.list() ?? [];
    return [...this.byNs.values()].flatMap((i) => i.list());
  }
  byIndex(index: string, key: string): KubeObject[] { return [...this.byNs.values()].flatMap((i) => i.byIndex(index, key)); }
  get size(): number { let n = 0; for (const i of this.byNs.values()) n += i.size; return n; }
  async start(): Promise<void> { this.running = true; await Promise.all([...this.byNs.values()].map((i) => i.start())); }
  async stop(): Promise<void> { this.running = false; await Promise.all([...this.byNs.values()].map((i) => i.stop())); }
  get hasSynced(): boolean { return [...this.byNs.values()].every((i) => i.hasSynced); }
}
