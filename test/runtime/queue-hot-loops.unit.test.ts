import { setImmediate as yieldToIo } from 'node:timers/promises';
import { HandlerResult, WorkQueue } from '../../src/queue';

/**
 * No hot loops. Every test drives the real WorkQueue on jest's fake clock (timers and Date) and
 * counts how often the handler runs over a window of fake time: the counts follow from the queue's
 * configured delays alone, not from how busy the machine is. A hot loop shows as hundreds or
 * thousands of calls, or as jest's runaway-timer error; the handler also yields a turn of the real
 * event loop, so a loop that needs no timer at all cannot hang the test silently either.
 */

/** Real turns of the event loop, which the fake clock leaves alone (the handler's yield). */
const REAL = ['setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask'] as const;

beforeEach(() => { jest.useFakeTimers({ doNotFake: [...REAL] }); });
afterEach(() => { jest.useRealTimers(); });

/** Advances the fake clock by `ms`, letting each due timer's handler finish before the next. */
async function advance(ms: number): Promise<void> {
  const step = 10;
  for (let t = 0; t < ms; t += step) {
    await jest.advanceTimersByTimeAsync(Math.min(step, ms - t));
    await yieldToIo();
  }
}

/** Runs `handler` for `key`s on a fresh queue for `windowMs` of fake time and returns the calls per key. */
async function countCalls(keys: string[], handler: (key: string) => Promise<HandlerResult | void>, windowMs: number, opts: ConstructorParameters<typeof WorkQueue>[0] = {}): Promise<Map<string, number>> {
  const q = new WorkQueue(opts);
  const calls = new Map<string, number>();
  // Each call yields to I/O like a real reconcile does: a hot loop then shows as a count, not a hung test.
  q.start(async (key) => { calls.set(key, (calls.get(key) ?? 0) + 1); await yieldToIo(); return handler(key); });
  for (const k of keys) q.add(k);
  await advance(windowMs);
  await q.stop();
  return calls;
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

test('a reconcile that asks for requeueAfterMs: 0 every time is retried at a bounded, backing-off rate', async () => {
  const calls = await countCalls(['k'], async () => ({ requeueAfterMs: 0 }), 3000);
  const n = calls.get('k') ?? 0;
  // Retried (not dropped) ...
  expect(n).toBeGreaterThanOrEqual(3);
  // ... but backing off: 200 ms doubling (with up to +25 % jitter) fits at most 5 attempts in 3 s; a hot loop makes thousands.
  expect(n).toBeLessThanOrEqual(5);
});

test('a requeue below the floor (1 ms) backs off like an immediate one', async () => {
  const calls = await countCalls(['k'], async () => ({ requeueAfterMs: 1 }), 2000);
  const n = calls.get('k') ?? 0;
  expect(n).toBeGreaterThanOrEqual(2);
  expect(n).toBeLessThanOrEqual(5);
});

test('a reconcile that fails every time is retried with exponential backoff', async () => {
  const calls = await countCalls(['k'], async () => { throw new Error('always'); }, 3000);
  const n = calls.get('k') ?? 0;
  expect(n).toBeGreaterThanOrEqual(3);
  expect(n).toBeLessThanOrEqual(5);
});

test('many keys failing together are retried at the bucket rate, not each at its own backoff', async () => {
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
  const calls = await countCalls(keys, async () => { throw new Error('api down'); }, 2500);
  const retries = total(calls) - keys.length;
  expect(calls.size).toBe(keys.length);
  expect([...calls.values()].filter((n) => n < 1)).toEqual([]);
  // Default bucket: burst 300, then 50/s: at most 300 + 2.5 * 50 = 425 retries.
  // Per-key backoff alone (200, 400, 800, 1600 ms) would retry each key 3 times: 3,000.
  expect(retries).toBeLessThanOrEqual(425);
  expect(retries).toBeGreaterThan(0);
});

test('a requeueAfterMs of 30 days waits that long (no setTimeout overflow spin), and then comes', async () => {
  const DAY = 24 * 3600 * 1000;
  const q = new WorkQueue();
  const calls = new Map<string, number>();
  q.start(async (key) => { calls.set(key, (calls.get(key) ?? 0) + 1); return key === 'k' ? { requeueAfterMs: 30 * DAY } : undefined; });
  q.add('k');
  // And through addAfter directly, for callers other than handlers.
  q.addAfter('x', 40 * DAY);
  q.addAfter('y', Infinity);
  await jest.advanceTimersByTimeAsync(30 * DAY - 1);
  expect(Object.fromEntries(calls)).toEqual({ k: 1 });
  await jest.advanceTimersByTimeAsync(1);
  expect(Object.fromEntries(calls)).toEqual({ k: 2 });
  await jest.advanceTimersByTimeAsync(10 * DAY);
  expect(Object.fromEntries(calls)).toEqual({ k: 2, x: 1 });
  await q.stop();
});

test('no delay the queue gives setTimeout is beyond what it can hold (Node would fire such a timer at once)', async () => {
  jest.useRealTimers();
  const MAX_TIMER_MS = 2 ** 31 - 1;
  // The global setTimeout the queue's timers call, observed (Node's own overflow warning goes to the
  // worker's process, which a test cannot listen to).
  const spy = jest.spyOn(global, 'setTimeout');
  const q = new WorkQueue();
  try {
    q.start(async () => undefined);
    q.addAfter('x', 40 * 24 * 3600 * 1000);
    q.addAfter('y', Infinity);
    const delays = spy.mock.calls.map((c) => c[1]);
    expect(delays.length).toBeGreaterThanOrEqual(2);
    expect(delays.filter((d) => !(typeof d === 'number' && d <= MAX_TIMER_MS))).toEqual([]);
    // Negative control: a delay beyond the limit, given to the same setTimeout, is seen (not scheduled).
    spy.mockImplementationOnce((() => undefined) as any);
    setTimeout(() => undefined, 40 * 24 * 3600 * 1000);
    expect(spy.mock.calls.map((c) => c[1]).filter((d) => !(typeof d === 'number' && d <= MAX_TIMER_MS))).toEqual([40 * 24 * 3600 * 1000]);
  } finally {
    spy.mockRestore();
    await q.stop();
  }
});

test('a requeue at or above the floor is honoured as asked (no backoff added)', async () => {
  const calls = await countCalls(['k'], async () => ({ requeueAfterMs: 100 }), 1050);
  const n = calls.get('k') ?? 0;
  // 1 + 1000/100 attempts: a gate polling every 100 ms keeps its pace (not doubled).
  expect(n).toBe(11);
});
