import type { PipelineSidecarSpec } from '../../constructs/api/spec';
import { missingWait } from '../../src/missing-sidecars';

const spec = (startupTimeout?: string): PipelineSidecarSpec => ({ kind: 'Container', ...(startupTimeout ? { lifecycle: { startupTimeout } } : {}) } as any);
/** The reconciler's rule: the spec's own startupTimeout, else the operator's default. */
const timeoutOf = (s: PipelineSidecarSpec) => (s.lifecycle?.startupTimeout ? Number(s.lifecycle.startupTimeout.replace('s', '')) * 1000 : DEFAULT);
const DEFAULT = 60_000;

describe('how long a run waits for a missing PipelineSidecar', () => {
  test.each<[string, string[], Array<[string, PipelineSidecarSpec]>, number, RegExp]>([
    ['its objects recorded its own timeout', ['db'], [['db', spec('10s')]], 10_000, /startupTimeout "db" had/],
    ['recorded without a timeout: the default, through its spec', ['db'], [['db', spec()]], DEFAULT, /"db" had/],
    ['no objects recorded it: the operator default', ['db'], [], DEFAULT, /operator's default/],
    ['another sidecar\'s record does not count', ['db'], [['cache', spec('10s')]], DEFAULT, /operator's default/],
    ['two missing, both recorded: the longer', ['a', 'b'], [['a', spec('10s')], ['b', spec('30s')]], 30_000, /"b" had/],
    ['two missing, one unrecorded: the longer of own and default', ['a', 'b'], [['a', spec('90s')]], 90_000, /"a" had/],
    ['two missing, one unrecorded, default longer', ['a', 'b'], [['a', spec('10s')]], DEFAULT, /operator's default/],
  ])('%s', (_what, missing, snaps, timeoutMs, whose) => {
    const w = missingWait(missing, new Map(snaps), timeoutOf, DEFAULT);
    expect(w.timeoutMs).toBe(timeoutMs);
    expect(w.whose).toMatch(whose);
  });
});
