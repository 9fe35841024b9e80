import { setImmediate as yieldToIo, setTimeout as sleep } from 'node:timers/promises';
import { HandlerResult, WorkQueue } from '../../src/queue';

/**
 * No hot loops. Every test drives the real WorkQueue with real timers and counts how often
 * the handler runs over a fixed window; a hot loop shows as hundreds or thousands of calls.
 */

/** Runs `handler` for `key`s on a fresh queue for `windowMs` and returns the calls per key. */
async function countCalls(keys: string[], handler: (key: string) => Promise<HandlerResult | void>, windowMs: number, opts: ConstructorParameters<typeof WorkQueue>[0] = {}): Promise<Map<string, number>> {
  const q = new WorkQueue(opts);
  const calls = new Map<string, number>();
  // Each call yields to I/O like a real reconcile does: a hot loop then shows as a count, not a hung test.
  q.start(async (key) => { calls.set(key, (calls.get(key) ?? 0) + 1); await yieldToIo(); return handler(key); });
  for (const k of keys) q.add(k);
  await sleep(windowMs);
  await q.stop();
  return calls;
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

test('a reconcile that asks for requeueAfterMs: 0 every time is retried at a bounded, backing-off rate', async () => {
  const calls = await countCalls(['k'], async () => ({ requeueAfterMs: 0 }), 3000);
  const n = calls.get('k') ?? 0;
  process.stderr.write(`[queue] requeueAfterMs: 0 for 3 s: ${n} calls\n`);
  // Retried (not dropped) ...
  expect(n).toBeGreaterThanOrEqual(3);
  // ... but backing off: 200 ms doubling (with +-20 % jitter) fits at most 6 attempts in 3 s; a hot loop makes thousands.
  expect(n).toBeLessThanOrEqual(8);
});

test('a requeue below the floor (1 ms) backs off like an immediate one', async () => {
  const calls = await countCalls(['k'], async () => ({ requeueAfterMs: 1 }), 2000);
  const n = calls.get('k') ?? 0;
  process.stderr.write(`[queue] requeueAfterMs: 1 for 2 s: ${n} calls\n`);
  expect(n).toBeGreaterThanOrEqual(2);
  expect(n).toBeLessThanOrEqual(8);
});

test('a reconcile that fails every time is retried with exponential backoff', async () => {
  const calls = await countCalls(['k'], async () => { throw new Error('always'); }, 3000);
  const n = calls.get('k') ?? 0;
  process.stderr.write(`[queue] failing for 3 s: ${n} calls\n`);
  expect(n).toBeGreaterThanOrEqual(3);
  expect(n).toBeLessThanOrEqual(8);
});

test('many keys failing together are retried at the bucket rate, not each at its own backoff', async () => {
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
  const calls = await countCalls(keys, async () => { throw new Error('api down'); }, 2500);
  const retries = total(calls) - keys.length;
  process.stderr.write(`[queue] 1000 keys failing for 2.5 s: ${retries} retries\n`);
  expect([...calls.values()].every((n) => n >= 1)).toBe(true);
  // Default bucket: burst 300, then 50/s: at most 300 + 2.5 * 50 = 425 retries (slack for timer granularity).
  // Per-key backoff alone (200, 400, 800, 1600 ms) would retry each key 3 times: 3,000.
  expect(retries).toBeLessThanOrEqual(460);
  expect(retries).toBeGreaterThan(0);
});

test('a requeueAfterMs of 30 days waits (no setTimeout overflow spin)', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    const calls = await countCalls(['k'], async () => ({ requeueAfterMs: 30 * 24 * 3600 * 1000 }), 1500);
    process.stderr.write(`[queue] requeueAfterMs: 30 days, 1.5 s: ${calls.get('k')} calls\n`);
    expect(calls.get('k')).toBe(1);
    // And the same through addAfter directly, for callers other than handlers.
    const q = new WorkQueue();
    let n = 0;
    q.start(async () => { n++; });
    q.addAfter('x', 40 * 24 * 3600 * 1000);
    q.addAfter('y', Infinity);
    await sleep(500);
    await q.stop();
    expect(n).toBe(0);
    await sleep(10);
    expect(warnings).not.toContain('TimeoutOverflowWarning');
  } finally {
    process.off('warning', onWarning);
  }
});

test('a requeue at or above the floor is honoured as asked (no backoff added)', async () => {
  const calls = await countCalls(['k'], async () => ({ requeueAfterMs: 100 }), 1050);
  const n = calls.get('k') ?? 0;
  // 1 + 1000/100 attempts at most; a gate polling every 100 ms keeps its pace (not doubled).
  expect(n).toBeGreaterThanOrEqual(8);
  expect(n).toBeLessThanOrEqual(11);
});
