import { setImmediate } from 'node:timers/promises';
import { WorkQueue } from '../../src/queue';

/**
 * A run whose sidecars just became Ready is queued with priority: it is taken before every
 * waiting normal key (provisioning work), once, even when it was already waiting as a normal key.
 */
/** A queue whose handler counts the handlers running, so that a test can wait until it has drained. */
function countingQueue(handler: (key: string) => Promise<void>): { q: WorkQueue; drained: () => Promise<void> } {
  const q = new WorkQueue({ concurrency: 1 });
  let running = 0;
  q.start(async (key) => { running++; try { await handler(key); } finally { running--; } });
  return {
    q,
    // Nothing waiting and nothing running, twice across a turn of the event loop: a key a finished
    // handler re-queues is taken within the same turn, so it would show.
    drained: async () => {
      for (let i = 0; i < 1000; i++) {
        await setImmediate();
        if (q.depth === 0 && running === 0) { await setImmediate(); if (q.depth === 0 && running === 0) return; }
      }
      throw new Error('the queue did not drain');
    },
  };
}

async function order(adds: (q: WorkQueue) => void): Promise<string[]> {
  const seen: string[] = [];
  let release!: () => void;
  const blocked = new Promise<void>((r) => { release = r; });
  const { q, drained } = countingQueue(async (key) => { if (key === 'busy') await blocked; else seen.push(key); });
  q.add('busy'); // the one worker is busy: everything below waits in the queue
  adds(q);
  release();
  await drained();
  await q.stop();
  return seen;
}

test.each([
  ['priority key after normal ones is taken first', (q: WorkQueue) => { q.add('a'); q.add('b'); q.add('ready', { priority: true }); }, ['ready', 'a', 'b']],
  ['a waiting normal key promoted to priority is taken first, once', (q: WorkQueue) => { q.add('a'); q.add('b'); q.add('b', { priority: true }); }, ['b', 'a']],
  ['a normal add of a priority key does not demote it', (q: WorkQueue) => { q.add('a'); q.add('p', { priority: true }); q.add('p'); }, ['p', 'a']],
  ['priority keys keep their own order', (q: WorkQueue) => { q.add('a'); q.add('p1', { priority: true }); q.add('p2', { priority: true }); }, ['p1', 'p2', 'a']],
  // Negative control: without priority the queue is FIFO, so the rows above are not FIFO by accident.
  ['without priority: first in, first out', (q: WorkQueue) => { q.add('a'); q.add('b'); q.add('ready'); }, ['a', 'b', 'ready']],
])('%s', async (_what, adds, expected) => {
  expect(await order(adds)).toEqual(expected);
});

test('a priority add while the key is processed re-queues it with priority after', async () => {
  const seen: string[] = [];
  let release!: () => void;
  const blocked = new Promise<void>((r) => { release = r; });
  let first = true;
  const { q, drained } = countingQueue(async (key) => {
    seen.push(key);
    if (key === 'r' && first) { first = false; await blocked; }
  });
  q.add('r');
  expect(seen).toEqual(['r']); // r is being processed (and blocked)
  q.add('a');
  q.add('r', { priority: true }); // while r is processed
  release();
  await drained();
  await q.stop();
  expect(seen).toEqual(['r', 'r', 'a']);
});
