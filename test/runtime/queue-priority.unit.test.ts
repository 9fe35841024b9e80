import { WorkQueue } from '../../src/queue';

/**
 * A run whose sidecars just became Ready is queued with priority: it is taken before every
 * waiting normal key (provisioning work), once, even when it was already waiting as a normal key.
 */
async function order(adds: (q: WorkQueue) => void): Promise<string[]> {
  const seen: string[] = [];
  let release!: () => void;
  const blocked = new Promise<void>((r) => { release = r; });
  const q = new WorkQueue({ concurrency: 1 });
  q.start(async (key) => { if (key === 'busy') await blocked; else seen.push(key); });
  q.add('busy'); // the one worker is busy: everything below waits in the queue
  adds(q);
  release();
  await new Promise((r) => setTimeout(r, 50));
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
  const q = new WorkQueue({ concurrency: 1 });
  let first = true;
  q.start(async (key) => {
    seen.push(key);
    if (key === 'r' && first) { first = false; await blocked; }
  });
  q.add('r');
  await new Promise((r) => setTimeout(r, 10));
  q.add('a');
  q.add('r', { priority: true }); // while r is processed
  release();
  await new Promise((r) => setTimeout(r, 50));
  await q.stop();
  expect(seen).toEqual(['r', 'r', 'a']);
});
