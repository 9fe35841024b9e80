import { GateDecision, GateInput, SidecarObservation, decide } from '../../src/gate';
import { Lifecycle, PipelineRun, lifecycle, releasableByUs } from '../../src/pipelinerun';

/** The gate and the run's lifecycle are pure decisions: every case is a row. */

const T = 1_000_000;
const sc = (o: Partial<SidecarObservation> = {}): SidecarObservation => ({ name: 'db', ready: false, since: T, startupTimeoutMs: 5000, onSidecarFailure: 'Cancel', ...o });
const input = (o: Partial<GateInput> = {}): GateInput => ({ pending: true, releasable: true, sidecars: [sc()], now: T + 1000, ...o });

describe('decide(run, observed) → start | cancel | wait(until)', () => {
  const rows: Array<[string, GateInput, GateDecision]> = [
    ['not pending: nothing to do', input({ pending: false }), { kind: 'none' }],
    ['all Ready, ours: start', input({ sidecars: [sc({ ready: true }), sc({ name: 'b', ready: true })] }), { kind: 'start' }],
    ['all Ready, pended by someone else: wait for its owner', input({ releasable: false, sidecars: [sc({ ready: true })] }), { kind: 'wait' }],
    ['not Ready, before the deadline: wait until it', input(), { kind: 'wait', until: T + 5000 }],
    ['not Ready, two deadlines: the first', input({ sidecars: [sc({ since: T + 2000 }), sc({ name: 'b', since: T })] }), { kind: 'wait', until: T + 5000 }],
    ['not applied yet (no since): wait with no deadline', input({ sidecars: [sc({ since: undefined })], now: T + 10 ** 9 }), { kind: 'wait', until: undefined }],
    ['past the deadline, Cancel: cancel', input({ now: T + 5000 }), { kind: 'cancel', expired: ['db'] }],
    ['past the deadline, Ignore: start anyway', input({ now: T + 6000, sidecars: [sc({ onSidecarFailure: 'Ignore' })] }), { kind: 'start-anyway', expired: ['db'] }],
    ['one Cancel and one Ignore expired: cancel', input({ now: T + 6000, sidecars: [sc({ onSidecarFailure: 'Ignore' }), sc({ name: 'b' })] }), { kind: 'cancel', expired: ['db', 'b'] }],
    ['expired, pended by someone else: report only', input({ releasable: false, now: T + 6000 }), { kind: 'report', expired: ['db'] }],
    ['one Ready, one expired: cancel names only the late one', input({ now: T + 6000, sidecars: [sc({ name: 'a', ready: true }), sc()] }), { kind: 'cancel', expired: ['db'] }],
    // The timeout counts from the first apply, not from the run's creation: an outage before it costs nothing.
    ['applied a moment ago after a long outage: wait', input({ now: T + 10 ** 7, sidecars: [sc({ since: T + 10 ** 7 - 100 })] }), { kind: 'wait', until: T + 10 ** 7 - 100 + 5000 }],
  ];
  test.each(rows)('%s', (_why, i, want) => expect(decide(i)).toEqual(want));
});

describe('decide: the slow report (SidecarsApplied) of a run we gate', () => {
  const slow = (o: Partial<GateInput> = {}): GateInput => input({ slowAfterMs: 2000, ...o });
  const rows: Array<[string, GateInput, GateDecision]> = [
    ['before it is due: wait until then (sooner than the deadline)', slow({ now: T + 1000 }), { kind: 'wait', until: T + 2000 }],
    ['due: wait, naming the sidecars not Ready', slow({ now: T + 2500, sidecars: [sc(), sc({ name: 'b', ready: true })] }), { kind: 'wait', until: T + 5000, slow: ['db'] }],
    ['counted from the earliest since', slow({ now: T + 2500, sidecars: [sc({ since: T + 1000 }), sc({ name: 'b', since: T })] }), { kind: 'wait', until: T + 5000, slow: ['db', 'b'] }],
    ['already reported: a plain wait', slow({ now: T + 2500, slowReported: true }), { kind: 'wait', until: T + 5000 }],
    ['pended by someone else: never reported', slow({ now: T + 2500, releasable: false }), { kind: 'wait', until: T + 5000 }],
    ['not applied yet (no since): nothing to report', slow({ now: T + 2500, sidecars: [sc({ since: undefined })] }), { kind: 'wait', until: undefined }],
    ['all Ready: start, no report', slow({ now: T + 2500, sidecars: [sc({ ready: true })] }), { kind: 'start' }],
    ['expired: the timeout wins', slow({ now: T + 5000 }), { kind: 'cancel', expired: ['db'] }],
    ['negative control, no slowAfterMs: no report however long', input({ now: T + 4900 }), { kind: 'wait', until: T + 5000 }],
  ];
  test.each(rows)('%s', (_why, i, want) => expect(decide(i)).toEqual(want));
});

const run = (o: { status?: string; startTime?: string; done?: 'True' | 'False'; deleting?: boolean; annotations?: Record<string, string>; labels?: Record<string, string> } = {}): PipelineRun => ({
  metadata: { name: 'r', namespace: 'ns', uid: 'u', annotations: o.annotations, labels: o.labels, ...(o.deleting ? { deletionTimestamp: 'x' } : {}) },
  spec: o.status ? { status: o.status } : {},
  status: { ...(o.startTime ? { startTime: o.startTime } : {}), ...(o.done ? { conditions: [{ type: 'Succeeded', status: o.done }] } : {}) },
});

describe('lifecycle(run): when the sidecars go', () => {
  const rows: Array<[string, PipelineRun, Lifecycle['kind']]> = [
    ['pending', run({ status: 'PipelineRunPending' }), 'provide'],
    ['running', run({ startTime: 't' }), 'provide'],
    ['Succeeded', run({ done: 'True', startTime: 't' }), 'remove'],
    ['Failed', run({ done: 'False' }), 'remove'],
    ['being deleted', run({ deletionTimestamp: 'x', deleting: true } as any), 'remove'],
    ['Cancelled before Tekton started it', run({ status: 'Cancelled' }), 'remove'],
    ['Cancelled while running: until Tekton says done', run({ status: 'Cancelled', startTime: 't' }), 'provide'],
    ['CancelledRunFinally never started: Tekton will run its finally tasks', run({ status: 'CancelledRunFinally' }), 'provide'],
    ['StoppedRunFinally while running', run({ status: 'StoppedRunFinally', startTime: 't' }), 'provide'],
  ];
  test.each(rows)('%s', (_why, r, want) => expect(lifecycle(r).kind).toBe(want));
});

describe('releasableByUs(run): only what our webhook pended, or what its author allowed', () => {
  const admitted = { 'pipeline-sidecars.dev/admitted': 'abc' };
  // Every row has all four cells: jest would take a missing one for a `done` callback and wait.
  const rows: Array<[string, Record<string, string> | undefined, boolean, Record<string, string> | undefined]> = [
    ['gated by our webhook (run id with its admitted marker)', { 'pipeline-sidecars.dev/run-id': 'abc', 'pipeline-sidecars.dev/gated': 'true' }, true, admitted],
    ['gated and a run id, but no webhook marker (forged)', { 'pipeline-sidecars.dev/run-id': 'abc', 'pipeline-sidecars.dev/gated': 'true' }, false, undefined],
    ['a marker for another run id (copied labels)', { 'pipeline-sidecars.dev/run-id': 'abc', 'pipeline-sidecars.dev/gated': 'true' }, false, { 'pipeline-sidecars.dev/admitted': 'xyz' }],
    ['a run id but pended by someone else', { 'pipeline-sidecars.dev/run-id': 'abc' }, false, admitted],
    ['no webhook, no word from the author', undefined, false, undefined],
    ['no webhook, the author allowed it', { 'pipeline-sidecars.dev/release': 'when-ready' }, true, undefined],
    ['gated without a run id (not written by our webhook)', { 'pipeline-sidecars.dev/gated': 'true' }, false, undefined],
  ];
  test.each(rows)('%s', (_why, annotations, want, labels) => expect(releasableByUs(run({ status: 'PipelineRunPending', annotations, labels }))).toBe(want));
});
