import * as net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { clusterState, testKubeConfig } from './cluster';

export interface TcpProxyOptions {
  /** Bytes per second from the API server to the client, per connection (default: unlimited): a slow link. */
  readonly bytesPerSecond?: number;
}

interface Pair { readonly client: net.Socket; readonly upstream: net.Socket; frozen: boolean }

/**
 * A TCP proxy on loopback in front of the real API server (TLS passes through untouched). It can
 * throttle each connection (a slow link) and freeze connections: stop forwarding while keeping both
 * sockets open, which is what a half-open connection looks like to both ends (no FIN, no RST, silence).
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly pairs = new Set<Pair>();
  private holdNew = false;
  port = 0;
  /** Connections accepted so far. */
  accepted = 0;

  constructor(private readonly target: URL = new URL(clusterState().server), private readonly opts: TcpProxyOptions = {}) {}

  async start(): Promise<number> {
    this.server = net.createServer((client) => this.accept(client));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server!.address() as net.AddressInfo).port;
    return this.port;
  }

  /**
   * Stop forwarding on every open connection; both sockets stay open. New connections are forwarded
   * normally (the dead path was one connection's), unless `holdNew`: then they are accepted and frozen too.
   */
  freeze(opts: { holdNew?: boolean } = {}): number {
    for (const p of this.pairs) this.freezePair(p);
    this.holdNew = !!opts.holdNew;
    return this.pairs.size;
  }

  private freezePair(p: Pair): void {
    p.frozen = true;
    p.client.pause();
    p.upstream.pause();
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const upstream = net.connect(Number(this.target.port), this.target.hostname);
    const p: Pair = { client, upstream, frozen: false };
    this.pairs.add(p);
    for (const s of [client, upstream]) {
      s.on('error', () => s.destroy());
      s.on('close', () => { this.pairs.delete(p); client.destroy(); upstream.destroy(); });
    }
    if (this.holdNew) { this.freezePair(p); return; }
    client.on('data', (c: Buffer) => { if (!p.frozen) upstream.write(c); });
    const rate = this.opts.bytesPerSecond;
    if (!rate) {
      upstream.on('data', (c: Buffer) => { if (!p.frozen) client.write(c); });
      return;
    }
    // Throttled: a chunk goes out in slices every 20 ms; the upstream is paused meanwhile (TCP backpressure).
    const slice = Math.max(1, Math.floor(rate / 50));
    upstream.on('data', (c: Buffer) => {
      upstream.pause();
      let off = 0;
      const tick = () => {
        if (p.frozen || client.destroyed) return;
        client.write(c.subarray(off, off + slice));
        off += slice;
        if (off < c.length) setTimeout(tick, 20);
        else upstream.resume();
      };
      tick();
    });
  }

  async close(): Promise<void> {
    for (const p of this.pairs) { p.client.destroy(); p.upstream.destroy(); }
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** An admin KubeConfig whose server is the proxy on `port` (same CA and credentials as the real one). */
export function kubeConfigVia(port: number): KubeConfig {
  const admin = testKubeConfig();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'via-proxy', server: `https://127.0.0.1:${port}`, caFile: clusterState().caFile }],
    users: [{ ...admin.getCurrentUser()!, name: 'admin' }],
    contexts: [{ name: 'via-proxy', cluster: 'via-proxy', user: 'admin' }],
    currentContext: 'via-proxy',
  });
  return kc;
}
