import { Informer } from '../../src/k8s/informer';
import { RawClient } from '../../src/k8s/raw';
import { collectionPath } from '../../src/k8s/resources';
import { createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { kubeConfigVia, TcpProxy } from '../../platform/tcp-proxy';

const IDLE_MS = 2000;

test('a half-open watch connection (frozen proxy) is detected within the idle timeout; the informer re-watches and gets what was created meanwhile', async () => {
  const ns = await createTestNamespace('stall');
  const cms = collectionPath('v1', 'ConfigMap', ns);
  const proxy = new TcpProxy();
  const kc = kubeConfigVia(await proxy.start());
  const client = new RawClient(kc);
  // The informer under test, and a control with no idle bound through the same proxy: it shows the
  // freeze really silences the stream (without it, the first check could pass vacuously).
  const informer = new Informer(kc, client, { name: 'cm', path: cms, watchIdleTimeoutMs: IDLE_MS, minBackoffMs: 50 });
  const control = new Informer(kc, client, { name: 'cm-control', path: cms, watchIdleTimeoutMs: 10 * 60_000, minBackoffMs: 50 });
  try {
    await Promise.all([informer.start(), control.start()]);
    await rawClient().create(cms, { metadata: { name: 'before' } });
    await eventually('both watches live', async () => informer.get(ns, 'before') && control.get(ns, 'before'), 10_000, 20);

    const stallsBefore = informer.stalls;
    const tFreeze = Date.now();
    const frozen = proxy.freeze();
    expect(frozen).toBeGreaterThanOrEqual(2); // at least the two watch connections
    await rawClient().create(cms, { metadata: { name: 'during' } });

    await eventually('the informer to detect the stall and see the object created meanwhile', async () => informer.get(ns, 'during'), IDLE_MS + 15_000, 20);
    const recoveredMs = Date.now() - tFreeze;
    process.stderr.write(`[watch-stall] idle timeout ${IDLE_MS} ms: frozen watch given up and the new object cached ${recoveredMs} ms after the freeze (stalls ${informer.stalls - stallsBefore})\n`);
    expect(informer.stalls).toBeGreaterThan(stallsBefore);
    // The contract: detected within the idle timeout, plus a relist and re-watch; the margin (4 s)
    // is what a loaded 2-core machine needs for those two requests.
    expect(recoveredMs).toBeLessThanOrEqual(IDLE_MS + 4000);
    // The control, on its frozen connection, has heard nothing: the stream was really silent.
    expect(control.get(ns, 'during')).toBeUndefined();

    // And the new watch is live: a later change arrives on it, not through another stall given up
    // and a relist (which a dead watch would also end in, after the idle timeout).
    const t = Date.now();
    const [stallsNow, listsNow] = [informer.stalls, informer.lists];
    await rawClient().create(cms, { metadata: { name: 'after' } });
    await eventually('a later create', async () => informer.get(ns, 'after'), IDLE_MS + 15_000, 20);
    process.stderr.write(`[watch-stall] next create seen after ${Date.now() - t} ms\n`);
    expect({ stalls: informer.stalls, lists: informer.lists }).toEqual({ stalls: stallsNow, lists: listsNow });
  } finally {
    await Promise.all([informer.stop(), control.stop()]);
    client.close();
    await proxy.close();
  }
});
