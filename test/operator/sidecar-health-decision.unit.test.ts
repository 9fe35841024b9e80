import { containerCrashes, crashesToReport, crashMessage, CrashDecisionInput, hasCrashed, parseReported } from '../../src/sidecar-health';

/** Which sidecar crashes are reported on the run: the pure decision, as a table. */

const running = { name: 'dind', restartCount: 0, state: { running: { startedAt: 't' } } };
const restarted = (n: number, exitCode = 137, reason = 'Error') => ({ name: 'dind', restartCount: n, state: { running: {} }, lastState: { terminated: { exitCode, reason } } });
const downNow = (n: number) => ({ name: 'dind', restartCount: n, state: { terminated: { exitCode: 1, reason: 'Error' } } });
const pod = (statuses: any[], extra: Record<string, any> = {}) => ({ metadata: { name: 'p1', ...extra }, status: { containerStatuses: statuses } });

describe('containerCrashes', () => {
  test.each([
    ['a healthy container', [running], 0, false],
    ['restarted twice', [restarted(2)], 2, false],
    ['terminated, not restarted yet', [downNow(0)], 1, true],
    ['terminated again after one restart', [downNow(1)], 2, true],
    ['no status yet', [], undefined, undefined],
  ])('%s', (_name, statuses, crashes, down) => {
    const c = containerCrashes(pod(statuses as any[]));
    expect(c[0]?.crashes).toBe(crashes);
    expect(c[0]?.down).toBe(down);
  });

  it('counts init containers (restartable ones are sidecars) and reads exit code and reason', () => {
    const p = { metadata: { name: 'p' }, status: { initContainerStatuses: [{ name: 'init', restartCount: 1, lastState: { terminated: { exitCode: 2, reason: 'Error', signal: 9 } } }], containerStatuses: [running] } };
    expect(containerCrashes(p)).toEqual([
      { container: 'init', crashes: 1, restartCount: 1, exitCode: 2, reason: 'Error', signal: 9, down: false },
      { container: 'dind', crashes: 0, restartCount: 0, exitCode: undefined, reason: undefined, signal: undefined, down: false },
    ]);
    expect(hasCrashed(p)).toBe(true);
    expect(hasCrashed(pod([running]))).toBe(false);
  });
});

describe('crashesToReport', () => {
  const live = { done: false };
  const base = (o: Partial<CrashDecisionInput>): CrashDecisionInput => ({
    run: live, pod: { name: 'p1', deleting: false }, crashes: containerCrashes(pod([restarted(1)])), reported: {}, ...o,
  });
  test.each<[string, Partial<CrashDecisionInput>, number[]]>([
    ['first crash of a live run: reported', {}, [1]],
    ['already reported (restart-safe: the record survives the operator)', { reported: { 'p1/dind': 1 } }, []],
    ['crashed again since the record', { crashes: containerCrashes(pod([restarted(3)])), reported: { 'p1/dind': 1 } }, [3]],
    ['terminated now, restart pending: reported at once', { crashes: containerCrashes(pod([downNow(0)])) }, [1]],
    ['the same crash after the kubelet restarted it: not again', { crashes: containerCrashes(pod([restarted(1)])), reported: { 'p1/dind': 1 } }, []],
    ['the run is done (teardown stops containers on purpose)', { run: { done: true } }, []],
    ['the run is gone', { run: undefined }, []],
    ['the pod is being deleted', { pod: { name: 'p1', deleting: true } }, []],
    ['a healthy container', { crashes: containerCrashes(pod([running])) }, []],
    ['a record of another pod does not count for this one', { reported: { 'p0/dind': 5 } }, [1]],
  ])('%s', (_name, input, expected) => {
    expect(crashesToReport(base(input)).map((r) => r.crashes)).toEqual(expected);
  });

  it('names the sidecar, container, exit code, reason and restart count in the message', () => {
    const [r] = crashesToReport(base({ crashes: containerCrashes(pod([restarted(2, 137, 'Error')])) }));
    const m = crashMessage('docker', 'p1', r);
    expect(m).toContain('sidecar "docker"');
    expect(m).toContain('container "dind" of pod p1');
    expect(m).toContain('exit code 137');
    expect(m).toContain('reason Error');
    expect(m).toContain('restarts: 2');
    expect(m).toContain('not cancelled');
  });
});

describe('parseReported', () => {
  test.each<[string | undefined, Record<string, number>]>([
    [undefined, {}],
    ['', {}],
    ['not json', {}],
    ['[1,2]', {}],
    ['{"p1/dind":2,"p1/x":"3"}', { 'p1/dind': 2 }],
  ])('%p', (value, expected) => {
    expect(parseReported(value)).toEqual(expected);
  });
});
