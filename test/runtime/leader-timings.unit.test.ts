import { leaderTimings } from '../../src/leader';

describe('leader election timings (table)', () => {
  test.each([
    // lease, renew deadline, retry -> durations, or the error's hint
    [{}, { durationMs: 15_000, renewDeadlineMs: 10_000, retryMs: 3000 }],
    [{ leaseDurationMs: 3000 }, { durationMs: 3000, renewDeadlineMs: 2000, retryMs: 600 }],
    [{ leaseDurationMs: 1000 }, { durationMs: 1000, renewDeadlineMs: 666, retryMs: 200 }],
    [{ leaseDurationMs: 2000, renewDeadlineMs: 1300, retryPeriodMs: 300 }, { durationMs: 2000, renewDeadlineMs: 1300, retryMs: 300 }],
    [{ leaseDurationMs: 500 }, /at least 1s/],
    [{ leaseDurationMs: 5000, renewDeadlineMs: 5000 }, /must be shorter than the lease duration.*lower it/],
    [{ leaseDurationMs: 5000, renewDeadlineMs: 2000, retryPeriodMs: 2000 }, /shorter than the renew deadline.*lower it/],
    [{ leaseDurationMs: 5000, retryPeriodMs: 0 }, /must be positive/],
  ])('leaderTimings(%p)', (opts, want) => {
    if (want instanceof RegExp) expect(() => leaderTimings(opts)).toThrow(want);
    else expect(leaderTimings(opts)).toEqual(want);
  });
});
