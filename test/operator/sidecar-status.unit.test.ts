import { PipelineSidecarSpec, PipelineSidecarStatus } from '../../constructs/api/spec';
import { SidecarSpecError } from '../../constructs/errors';
import { defaultKinds, defineKind } from '../../constructs/kinds';
import { PipelineSidecar } from '../../constructs/pipeline-sidecar';
import { checkSidecar, SidecarCheck, sidecarStatus, statusChanged } from '../../src/sidecar-status';

/** What a PipelineSidecar's status says, decided by pure functions: the table behind docs/operator.md's "PipelineSidecar status". */

const NOW = '2026-12-01T10:00:00.000Z';
const EARLIER = '2026-11-30T09:00:00.000Z';
const conditionsOf = (s: PipelineSidecarStatus) => Object.fromEntries((s.conditions ?? []).map((c) => [c.type, [c.status, c.reason]]));

describe('sidecarStatus: Valid says the spec passes the checks, Ready says runs of the namespace that ask for it get it', () => {
  test.each<[string, SidecarCheck, Record<string, [string, string]>]>([
    ['valid, and its objects are allowed here', { problems: [] }, { Valid: ['True', 'SpecValid'], Ready: ['True', 'Ready'] }],
    ['invalid', { problems: ['spec.ports[0].name: bad'] }, { Valid: ['False', 'SpecInvalid'], Ready: ['False', 'SpecInvalid'] }],
    ['valid, but its pods break the baseline profile where privilege is not allowed', { problems: [], refusal: { reason: 'PrivilegeNotAllowed', message: 'label the namespace' } },
      { Valid: ['True', 'SpecValid'], Ready: ['False', 'PrivilegeNotAllowed'] }],
    ['valid, but its kind refuses the spec when it builds the objects', { problems: [], refusal: { reason: 'SpecRefused', message: 'no' } },
      { Valid: ['True', 'SpecValid'], Ready: ['False', 'SpecRefused'] }],
    ['valid, but its objects could not be built to check them', { problems: [], checkFailed: 'boom' }, { Valid: ['True', 'SpecValid'], Ready: ['Unknown', 'CheckFailed'] }],
    ['invalid outranks a refusal', { problems: ['x'], refusal: { reason: 'PrivilegeNotAllowed', message: 'm' } }, { Valid: ['False', 'SpecInvalid'], Ready: ['False', 'SpecInvalid'] }],
  ])('%s', (_title, check, expected) => {
    expect(conditionsOf(sidecarStatus({ check, activeRuns: 0, now: NOW }))).toEqual(expected);
  });

  test('messages say what is wrong: the problems in Valid, the refusal in Ready', () => {
    const invalid = sidecarStatus({ check: { problems: ['a: bad', 'b: worse'] }, activeRuns: 0, now: NOW });
    expect(invalid.conditions![0].message).toBe('a: bad; b: worse');
    expect(invalid.conditions![1].message).toContain('rejected at CREATE until the spec is fixed');
    const refused = sidecarStatus({ check: { problems: [], refusal: { reason: 'PrivilegeNotAllowed', message: 'label the namespace' } }, activeRuns: 0, now: NOW });
    expect(refused.conditions![1].message).toBe('runs of this namespace that ask for this sidecar are refused: label the namespace');
  });

  test('activeRuns and generation pass through; a condition keeps its lastTransitionTime while its status holds', () => {
    const previous: PipelineSidecarStatus = {
      conditions: [
        { type: 'Valid', status: 'True', reason: 'SpecValid', lastTransitionTime: EARLIER },
        { type: 'Ready', status: 'True', reason: 'Ready', lastTransitionTime: EARLIER },
      ],
    };
    const s = sidecarStatus({ generation: 4, check: { problems: [], refusal: { reason: 'PrivilegeNotAllowed', message: 'm' } }, activeRuns: 3, previous, now: NOW });
    expect(s.activeRuns).toBe(3);
    expect(s.observedGeneration).toBe(4);
    expect(s.conditions!.map((c) => [c.type, c.lastTransitionTime, c.observedGeneration])).toEqual([['Valid', EARLIER, 4], ['Ready', NOW, 4]]);
  });
});

describe('statusChanged: a write only when the status says something new', () => {
  const desired = sidecarStatus({ generation: 2, check: { problems: [] }, activeRuns: 1, now: NOW });
  /** The same status as the API server returns it: keys in alphabetical order, a different transition time. */
  const asStored = (s: PipelineSidecarStatus, lastTransitionTime = EARLIER): PipelineSidecarStatus => JSON.parse(JSON.stringify({
    activeRuns: s.activeRuns,
    conditions: s.conditions!.map((c) => ({ lastTransitionTime, message: c.message, observedGeneration: c.observedGeneration, reason: c.reason, status: c.status, type: c.type })),
    observedGeneration: s.observedGeneration,
  }));

  test.each<[string, PipelineSidecarStatus | undefined, boolean]>([
    ['nothing written yet', undefined, true],
    ['the same, with keys in the API server\'s order and an older transition time', asStored(desired), false],
    ['the same, conditions in the other order', { ...asStored(desired), conditions: [...asStored(desired).conditions!].reverse() }, false],
    ['activeRuns differs', { ...asStored(desired), activeRuns: 2 }, true],
    ['a condition\'s message differs', { ...asStored(desired), conditions: asStored(desired).conditions!.map((c) => (c.type === 'Ready' ? { ...c, message: 'old words' } : c)) }, true],
    ['observedGeneration differs', { ...asStored(desired), observedGeneration: 1 }, true],
  ])('%s', (_title, current, changed) => {
    expect(statusChanged(current, desired)).toBe(changed);
  });
});

describe('checkSidecar: what a run of the namespace would meet', () => {
  const kinds = defaultKinds();
  const check = (spec: PipelineSidecarSpec, privilegedAllowed: boolean) => checkSidecar('sc', 'ci', spec, kinds, privilegedAllowed);

  test.each<[string, PipelineSidecarSpec, boolean, string | undefined]>([
    ['Registry, unprivileged namespace', { kind: 'Registry' }, false, undefined],
    ['Postgres (needs a password), unprivileged namespace', { kind: 'Postgres' }, false, undefined],
    ['DockerDaemon, unprivileged namespace', { kind: 'DockerDaemon' }, false, 'PrivilegeNotAllowed'],
    ['DockerDaemon, privilege allowed', { kind: 'DockerDaemon' }, true, undefined],
    ['BuildKitDaemon (rootless, Unconfined seccomp), unprivileged namespace', { kind: 'BuildKitDaemon' }, false, 'PrivilegeNotAllowed'],
    ['Container asking for privileged, unprivileged namespace', { kind: 'Container', template: { containers: [{ name: 'c', image: 'i', securityContext: { privileged: true } }] }, ports: [{ name: 'p', port: 1 }] }, false, 'PrivilegeNotAllowed'],
    ['plain Container, unprivileged namespace', { kind: 'Container', template: { containers: [{ name: 'c', image: 'i' }] }, ports: [{ name: 'p', port: 1 }] }, false, undefined],
  ])('%s', (_title, spec, privilegedAllowed, refusal) => {
    const c = check(spec, privilegedAllowed);
    expect(c.problems).toEqual([]);
    expect(c.refusal?.reason).toBe(refusal);
    expect(c.checkFailed).toBeUndefined();
  });

  test('a refused DockerDaemon says how to allow it; an invalid spec is only its problems', () => {
    expect(check({ kind: 'DockerDaemon' }, false).refusal?.message).toContain('pipeline-sidecars.dev/allow-privileged=true');
    const invalid = check({ kind: 'Nope' }, false);
    expect(invalid.problems.join()).toContain('unknown kind "Nope"');
    expect(invalid.refusal).toBeUndefined();
  });

  test('a kind that throws while building: a spec error is a refusal, any other error leaves Ready unknown', () => {
    const throwing = (e: Error) => defineKind({ name: 'Throws', defaultPorts: [{ name: 'p', port: 1 }], create: (): PipelineSidecar => { throw e; } });
    const spec = { kind: 'Throws' };
    expect(checkSidecar('sc', 'ci', spec, defaultKinds().register(throwing(new SidecarSpecError('spec', 'not here', 'sc'))), false).refusal?.reason).toBe('SpecRefused');
    expect(checkSidecar('sc', 'ci', spec, defaultKinds().register(throwing(new Error('boom'))), false)).toEqual({ problems: [], checkFailed: 'boom' });
  });

  test('end to end: a valid DockerDaemon in an unprivileged namespace is Valid but not Ready', () => {
    expect(conditionsOf(sidecarStatus({ check: check({ kind: 'DockerDaemon' }, false), activeRuns: 0, now: NOW })))
      .toEqual({ Valid: ['True', 'SpecValid'], Ready: ['False', 'PrivilegeNotAllowed'] });
  });
});
