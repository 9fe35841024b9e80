import { ApiError } from './raw';
import { WatchStalledError } from './watch';

/**
 * What an informer does after a watch ends: pure decisions, tested as tables
 * (test/runtime/informer-relist.test.ts).
 */

/** What to do after a watch ended with an error Status (an ERROR event, or the watch request's answer). */
export type WatchRecovery = 'relist' | 'retry';

/**
 * The resourceVersion we watch from is unusable: compacted away (410 Gone / Expired, "too old
 * resource version") or ahead of this API server's cache (ResourceVersionTooLarge, e.g. after a
 * failover to a lagging replica). Only a fresh list helps; anything else is retried from where we were.
 */
export function watchRecovery(status: Record<string, any> | undefined): WatchRecovery {
  if (!status) return 'retry';
  if (status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone') return 'relist';
  if ((status.details?.causes ?? []).some((c: any) => c?.reason === 'ResourceVersionTooLarge')) return 'relist';
  if (/too (old|large) resource version/i.test(String(status.message ?? ''))) return 'relist';
  return 'retry';
}

/** A watch this short that delivered nothing is not a sign of health: the next one waits (no reconnect loop). */
const HEALTHY_WATCH_MS = 1000;

/** How one watch ended. */
export interface WatchEnd {
  /** The Status of an ERROR event, if one ended it. */
  readonly errorStatus?: Record<string, any>;
  /** What the stream ended with (WatchStalledError, ApiError for a refused request, a transport error), if not cleanly. */
  readonly error?: unknown;
  /** Whether anything (an event, a bookmark) arrived. */
  readonly delivered: boolean;
  readonly lastedMs: number;
  /** Stalls in a row, before this one, of watches that delivered nothing at all. */
  readonly emptyStallsBefore: number;
}

/** What to do next: list afresh or resume from our resourceVersion, wait first or not, and whether the backoff starts over. */
export interface WatchNext {
  readonly action: 'relist' | 'rewatch' | 'fail';
  readonly wait: boolean;
  readonly resetBackoff: boolean;
  readonly why: string;
}

/**
 * The informer's decision after a watch ends. Only a clean end of a healthy watch (the server's own
 * timeout) re-watches at once; every failure waits a backoff, so no server answer can
 * make the informer reconnect in a loop. A stalled watch that delivered nothing at all, twice in a
 * row, relists: the API server answers a watch from a resourceVersion it has not reached with
 * silence, not an error (checked on kube-apiserver 1.36), so re-watching would never end it.
 */
export function afterWatch(end: WatchEnd): WatchNext {
  const resetBackoff = end.delivered || end.lastedMs >= HEALTHY_WATCH_MS;
  const status = end.errorStatus ?? (end.error instanceof ApiError ? end.error.status : undefined);
  if ((end.errorStatus || end.error instanceof ApiError) && watchRecovery(status) === 'relist') {
    return { action: 'relist', wait: true, resetBackoff, why: `cannot resume from our resourceVersion: ${status?.message ?? status?.reason ?? status?.code}` };
  }
  if (end.errorStatus) return { action: 'rewatch', wait: true, resetBackoff, why: `ERROR event: ${end.errorStatus.message ?? end.errorStatus.reason ?? end.errorStatus.code}` };
  if (end.error instanceof WatchStalledError) {
    if (!end.delivered && end.emptyStallsBefore >= 1) return { action: 'relist', wait: true, resetBackoff, why: `stalled again without a single event or bookmark: ${end.error.message}` };
    return { action: 'rewatch', wait: true, resetBackoff, why: `stalled: ${end.error.message}` };
  }
  if (end.error) return { action: 'fail', wait: true, resetBackoff, why: String((end.error as Error)?.message ?? end.error) };
  return { action: 'rewatch', wait: !resetBackoff, resetBackoff, why: resetBackoff ? 'ended by the server' : 'ended at once without a single event' };
}
