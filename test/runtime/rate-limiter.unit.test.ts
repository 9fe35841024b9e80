import { BucketRateLimiter, ItemExponentialFailureRateLimiter, MaxOfRateLimiter, exponentialDelay, requeueDelay } from '../../src/rate-limiter';
import { MAX_TIMER_MS, timerDelay } from '../../src/timers';

describe('rate limiters (tables)', () => {
  test.each([
    // failures, base, max, delay
    [0, 5, 1000, 5],
    [1, 5, 1000, 10],
    [4, 5, 1000, 80],
    [7, 5, 1000, 640],
    [8, 5, 1000, 1000], // 1280 capped
    [60, 5, 1000, 1000],
    [5000, 5, 1000, 1000], // 2^5000 is Infinity: still the cap, never NaN
    [3, 200, 60_000, 1600],
    [0, 0, 1000, 0],
  ])('exponentialDelay(%d failures, base %d, max %d) = %d', (failures, base, max, want) => {
    expect(exponentialDelay(failures, base, max)).toBe(want);
  });

  test('ItemExponentialFailureRateLimiter: per key, doubling, capped, forget resets', () => {
    const l = new ItemExponentialFailureRateLimiter(5, 100);
    expect([1, 2, 3, 4, 5, 6].map(() => l.when('a'))).toEqual([5, 10, 20, 40, 80, 100]);
    expect(l.when('b')).toBe(5); // another key has its own count
    expect(l.retries('a')).toBe(6);
    l.forget('a');
    expect(l.retries('a')).toBe(0);
    expect(l.when('a')).toBe(5);
  });

  test('BucketRateLimiter: a burst at once, then one token per 1/qps', () => {
    let now = 1_000_000;
    const l = new BucketRateLimiter(10, 3, () => now);
    // burst 3: free; then reservations queue up 100 ms apart.
    expect([1, 2, 3, 4, 5, 6].map(() => l.when('x'))).toEqual([0, 0, 0, 100, 200, 300]);
    now += 1000; // the reserved tokens are spent by now and the bucket refilled to its burst (never more)
    expect(l.when('x')).toBe(0);
    now += 10_000;
    expect([1, 2, 3, 4].map(() => l.when('y'))).toEqual([0, 0, 0, 100]);
    // forget does nothing to a shared bucket
    l.forget('y');
    expect(l.when('y')).toBe(200);
  });

  test('MaxOfRateLimiter: the larger of the per-key backoff and the bucket', () => {
    let now = 0;
    const l = new MaxOfRateLimiter(new ItemExponentialFailureRateLimiter(50, 1000), new BucketRateLimiter(10, 2, () => now));
    expect(l.when('a')).toBe(50); // bucket free, backoff 50
    expect(l.when('b')).toBe(50);
    expect(l.when('c')).toBe(100); // bucket empty: the reservation waits 100 ms, more than c's 50
    expect(l.when('a')).toBe(200); // a's backoff is 100, bucket says 200
    expect(l.retries('a')).toBe(2);
    l.forget('a');
    expect(l.retries('a')).toBe(0);
  });

  test.each([
    // asked, floor, backoff, delay, rateLimited
    [undefined, 50, 200, undefined, false],
    [0, 50, 200, 200, true],
    [1, 50, 200, 200, true],
    [49, 50, 10, 50, true], // backoff below the floor: the floor
    [Number.NaN, 50, 200, 200, true],
    [-5, 50, 200, 200, true],
    [50, 50, 200, 50, false],
    [5000, 50, 200, 5000, false],
    [30 * 24 * 3600 * 1000, 50, 200, 30 * 24 * 3600 * 1000, false], // the queue re-arms timers longer than MAX_TIMER_MS
  ])('requeueDelay(asked %p, floor %d, backoff %d) = %p (rate limited: %p)', (asked, floor, backoff, want, limited) => {
    let used = false;
    const got = requeueDelay(asked as number | undefined, floor, () => { used = true; return backoff; });
    expect(got).toBe(want);
    expect(used).toBe(limited);
  });

  test.each([
    [0, 0],
    [-1, 0],
    [Number.NaN, 0],
    [1.2, 2],
    [1000, 1000],
    [MAX_TIMER_MS, MAX_TIMER_MS],
    [MAX_TIMER_MS + 1, MAX_TIMER_MS],
    [30 * 24 * 3600 * 1000, MAX_TIMER_MS],
    [Infinity, MAX_TIMER_MS],
  ])('timerDelay(%p) = %p', (ms, want) => {
    expect(timerDelay(ms)).toBe(want);
  });
});
