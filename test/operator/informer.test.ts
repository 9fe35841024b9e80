import * as net from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { Informer } from '../../src/k8s/informer';
import { InformerEvent } from '../../src/k8s/object-store';
import { RawClient } from '../../src/k8s/raw';
import { collectionPath } from '../../src/k8s/resources';
import { WorkQueue } from '../../src/queue';
import { clusterState, createTestNamespace, eventually, rawClient, testKubeConfig } from '../../platform/cluster';

/** A TCP link to the real API server that the test can cut (every connection dropped, new ones refused) and restore. */
class FlakyLink {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly target: URL) {}

  async up(): Promise<void> {
    this.server = net.createServer((c) => {
      const u = net.connect(Number(this.target.port), this.target.hostname);
      for (const s of [c, u]) { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); s.on('error', () => s.destroy()); }
      c.pipe(u).pipe(c);
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', () => r()));
    this.port = (this.server!.address() as net.AddressInfo).port;
  }

  async cut(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
  }
}

function kubeConfigVia(port: number): KubeConfig {
  const admin = testKubeConfig();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'via-link', server: `https://127.0.0.1:${port}`, caFile: clusterState().caFile }],
    users: [{ ...admin.getCurrentUser()!, name: 'admin' }],
    contexts: [{ name: 'via-link', cluster: 'via-link', user: 'admin' }],
    currentContext: 'via-link',
  });
  return kc;
}

test('the informer survives a dropped connection: it reconnects and sees what changed meanwhile, deletes included', async () => {
  const ns = await createTestNamespace('informer');
  const link = new FlakyLink(new URL(clusterState().server));
  await link.up();
  const kc = kubeConfigVia(link.port);
  const client = new RawClient(kc);
  const cms = collectionPath('v1', 'ConfigMap', ns);
  const seen: Array<[InformerEvent, string]> = [];
  const informer = new Informer(kc, client, { name: 'cm', path: cms, minBackoffMs: 50, maxBackoffMs: 500 });
  informer.on((t, o) => seen.push([t, o.metadata.name]));
  try {
    await rawClient().create(cms, { metadata: { name: 'a' } });
    await informer.start();
    expect(informer.get(ns, 'a')).toBeDefined();

    await link.cut();
    const watchesAtCut = informer.watches;
    // Changes while the operator cannot hear: one create, one delete.
    await rawClient().create(cms, { metadata: { name: 'b' } });
    await rawClient().delete(`${cms}/a`);
    // Two reconnect attempts fail meanwhile (the informer keeps trying, and the link really is down).
    await eventually('two reconnect attempts while the link is down', async () => informer.watches >= watchesAtCut + 2, 10_000, 20);
    expect(informer.get(ns, 'b')).toBeUndefined();
    await link.up();

    await eventually('the informer to catch up', async () => informer.get(ns, 'b') !== undefined && informer.get(ns, 'a') === undefined, 10_000, 50);
    expect(seen).toEqual(expect.arrayContaining([['add', 'a'], ['add', 'b'], ['delete', 'a']]));
    expect(informer.watches).toBeGreaterThan(1);
    // And it keeps watching after the reconnect.
    await rawClient().create(cms, { metadata: { name: 'c' } });
    await eventually('a later create', async () => informer.get(ns, 'c') !== undefined, 5_000, 50);
  } finally {
    await informer.stop();
    client.close();
    await link.cut();
  }
});

test('the work queue: one worker per key, duplicates folded, failures retried with backoff, bounded concurrency', async () => {
  const q = new WorkQueue({ concurrency: 2, baseDelayMs: 20 });
  const active = new Set<string>();
  let maxParallel = 0;
  let overlap = false;
  const runs: string[] = [];
  let failuresLeft = 2;
  q.start(async (key) => {
    if (active.has(key)) overlap = true;
    active.add(key);
    maxParallel = Math.max(maxParallel, active.size);
    runs.push(key);
    await new Promise((r) => setTimeout(r, 30));
    active.delete(key);
    if (key === 'flaky' && failuresLeft-- > 0) throw new Error('transient');
  });
  for (let i = 0; i < 5; i++) q.add('a');
  q.add('b'); q.add('c'); q.add('flaky');
  expect(active.has('a')).toBe(true);
  q.add('a'); // while a is processing: run once more after, not in parallel
  await eventually('the queue to drain', async () => runs.filter((k) => k === 'flaky').length === 3 && q.depth === 0, 5_000, 20);
  await q.stop();
  expect(overlap).toBe(false);
  expect(maxParallel).toBeLessThanOrEqual(2);
  expect(runs.filter((k) => k === 'a')).toHaveLength(2);
  expect(runs.filter((k) => k === 'b')).toHaveLength(1);
});
