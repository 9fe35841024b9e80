import { PipelineSidecarSpec, validateSidecarSpec } from '../../constructs';
import { findSidecarReferences, validateSidecarReferences } from '../../constructs/references';
import { parseDuration } from '../../src/duration';

const base: PipelineSidecarSpec = { kind: 'Registry' };
/** The fields validateSidecarSpec complains about, with their messages. */
const problems = (spec: Record<string, unknown>) => validateSidecarSpec('reg', { ...base, ...spec } as PipelineSidecarSpec).map(p => `${p.field}: ${p.problem}`);

describe('expose.params[].name follows Tekton\'s param name rules', () => {
  test.each([
    ['docker-host', true], ['_private', true], ['a.b.c', true], ['A1_b-2', true], ['x', true],
    ['1abc', false], ['-x', false], ['.x', false], ['a b', false], ['a/b', false], ['', false], ['dockér', false], ['$(host)', false],
  ])('%j valid: %s', (name, ok) => {
    const p = problems({ expose: { params: [{ name, value: '$(address)' }] } });
    if (ok) expect(p).toEqual([]);
    else expect(p).toEqual([expect.stringMatching(/^spec\.expose\.params\[0\]\.name: .* is not a Tekton param name/)]);
  });

  test('a name given twice is named, and a missing name too', () => {
    expect(problems({ expose: { params: [{ name: 'a', value: '$(host)' }, { name: 'a', value: '$(port)' }] } })).toEqual(['spec.expose.params[1].name: param "a" is listed twice']);
    expect(problems({ expose: { params: [{ value: '$(host)' }] } })).toEqual([expect.stringContaining('spec.expose.params[0].name: undefined is not a Tekton param name')]);
  });
});

describe('expose.params[].value: only known placeholders and references', () => {
  test.each([
    ['$(address)', []],
    ['tcp://$(host):$(port)', []],
    ['literal, no placeholder', []],
    ['$(hots)', ['spec.expose.params[0].value: unknown placeholder $(hots): a value can use $(host), $(port) and $(address)']],
    ['$(Host):$(port)', ['spec.expose.params[0].value: unknown placeholder $(Host): a value can use $(host), $(port) and $(address)']],
    ['$(sidecars.db.hots)', ['spec.expose.params[0].value: $(sidecars.db.hots) unknown field "hots": a sidecar reference can name host, port, address']],
    [42, ['spec.expose.params[0].value: must be a string, e.g. "$(address)" or "tcp://$(host):$(port)"']],
  ])('%j', (value, expected) => {
    expect(problems({ expose: { params: [{ name: 'p', value }] } })).toEqual(expected);
  });
});

describe('expose.workspace is a Pipeline workspace name (DNS-1123 label)', () => {
  test.each([
    ['docker-tls', true], ['a', true], ['0cache', true], ['a'.repeat(63), true],
    ['Docker', false], ['a_b', false], ['a.b', false], ['-a', false], ['a-', false], ['', false], ['a'.repeat(64), false], [7, false],
  ])('%j valid: %s', (workspace, ok) => {
    const p = problems({ expose: { workspace } });
    if (ok) expect(p).toEqual([]);
    else expect(p).toEqual([expect.stringMatching(/^spec\.expose\.workspace: .* must be a Pipeline workspace name: a DNS-1123 label/)]);
  });

  test('expose itself must be an object', () => {
    expect(problems({ expose: ['docker-tls'] })).toEqual(['spec.expose: must be an object with params and/or workspace']);
  });
});

describe('findSidecarReferences / validateSidecarReferences (for the webhook at CREATE)', () => {
  test.each([
    ['no reference', []],
    ['$(sidecars.db.host)', [{ text: '$(sidecars.db.host)', index: 0, name: 'db', field: 'host' }]],
    ['tcp://$(sidecars.dind.host):$(sidecars.dind.port)', [
      { text: '$(sidecars.dind.host)', index: 6, name: 'dind', field: 'host' },
      { text: '$(sidecars.dind.port)', index: 28, name: 'dind', field: 'port' },
    ]],
    ['$(sidecars.db.hots)', [{ text: '$(sidecars.db.hots)', index: 0, name: 'db', field: 'hots' }]],
    ['$(sidecars.db)', [{ text: '$(sidecars.db)', index: 0 }]],
    ['$(sidecars.db.host.x)', [{ text: '$(sidecars.db.host.x)', index: 0 }]],
    ['$(params.host) $(sidecar.db.host)', []],
  ])('%j', (text, expected) => {
    expect(findSidecarReferences(text)).toEqual(expected);
  });

  test.each([
    ['$(sidecars.db.host)', undefined, []],
    ['$(sidecars.db.address) $(sidecars.db.port)', undefined, []],
    ['$(sidecars.db.hostname)', undefined, ['$(sidecars.db.hostname): unknown field "hostname": a sidecar reference can name host, port, address']],
    ['$(sidecars.db.HOST)', undefined, ['$(sidecars.db.HOST): unknown field "HOST": a sidecar reference can name host, port, address']],
    ['$(sidecars.db)', undefined, ['$(sidecars.db): is not a sidecar reference: write $(sidecars.NAME.FIELD) with NAME a PipelineSidecar name and FIELD one of host, port, address']],
    ['$(sidecars.cache.host)', ['db', 'dind'], ['$(sidecars.cache.host): this run has no sidecar "cache" (it has db, dind): ask for it (annotation pipeline-sidecars.dev/sidecars or a selector) or fix the name']],
    ['$(sidecars.db.host)', ['db'], []],
  ])('%j with sidecars %j', (text, sidecars, expected) => {
    expect(validateSidecarReferences(text, { sidecars }).map(p => `${p.reference}: ${p.problem}`)).toEqual(expected);
  });

  test('paths lead into any JSON value (params, an inline pipelineSpec)', () => {
    const spec = { params: [{ name: 'a', value: 'ok' }, { name: 'b', value: ['x', '$(sidecars.db.ip)'] }], pipelineSpec: { tasks: [{ params: [{ value: '$(sidecars.db.porte)' }] }] } };
    expect(validateSidecarReferences(spec, { path: 'spec' }).map(p => p.path)).toEqual(['spec.params[1].value[1]', 'spec.pipelineSpec.tasks[0].params[0].value']);
  });
});

describe('durations have sane bounds', () => {
  test.each([
    ['1s', undefined], ['90s', undefined], ['5m', undefined], ['1h30m', undefined], ['1.5h', undefined], ['24h', undefined], ['1440m', undefined],
    ['999ms', 'shorter than allowed: use a duration between 1s and 24h'],
    ['0s', 'shorter than allowed'],
    ['24h1s', 'longer than allowed: use a duration between 1s and 24h'],
    ['600h', 'longer than allowed'],
    ['99999999999h', 'longer than allowed'],
    ['soon', 'must be a duration such as 90s, 5m or 1h, between 1s and 24h'],
    ['', 'must be a duration'],
    ['5', 'must be a duration'],
  ])('startupTimeout %j', (startupTimeout, problem) => {
    const p = problems({ lifecycle: { startupTimeout } });
    if (problem === undefined) expect(p).toEqual([]);
    else expect(p).toEqual([expect.stringContaining(`spec.lifecycle.startupTimeout: `)]), expect(p[0]).toContain(problem);
  });

  test.each([
    ['90s', 90_000], ['1h30m', 5_400_000], ['500ms', 500], ['596h', 596 * 3_600_000],
    // Beyond 2^31-1 ms a Node timer fires at once: such a duration must not come back as a number.
    ['597h', undefined], ['600h', undefined], ['9999999h', undefined],
    ['soon', undefined], ['', undefined],
  ])('parseDuration(%j) = %j', (s, ms) => {
    expect(parseDuration(s)).toBe(ms);
  });
});
