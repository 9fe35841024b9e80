import { PipelineSidecarSpec, SidecarSpecError, synthesizeRun, validateSidecarSpec } from '../../constructs';
import { mintRunTls } from '../../src/tls';
import { materialFor, RUN, SPECS } from './fixtures';

async function allSidecars() {
  return Promise.all(Object.entries(SPECS).map(async ([name, spec]) => ({ name, spec, material: await materialFor(name, spec) })));
}

describe('synthesizeRun', () => {
  test('same input, same output: byte-identical JSON across calls', async () => {
    const sidecars = await allSidecars();
    const a = JSON.stringify(synthesizeRun({ run: RUN, sidecars, allowPrivileged: true }));
    const b = JSON.stringify(synthesizeRun({ run: RUN, sidecars, allowPrivileged: true }));
    expect(a).toBe(b);
  });

  test('order is by sidecar name then a fixed per-sidecar order, whatever the input order', async () => {
    const sidecars = await allSidecars();
    const fwd = synthesizeRun({ run: RUN, sidecars, allowPrivileged: true });
    const rev = synthesizeRun({ run: RUN, sidecars: [...sidecars].reverse(), allowPrivileged: true });
    expect(JSON.stringify(rev)).toBe(JSON.stringify(fwd));
    const sidecarOrder = fwd.map(o => o.metadata.labels['pipeline-sidecars.dev/sidecar']).filter((s, i, arr) => arr.indexOf(s) === i);
    expect(sidecarOrder).toEqual([...Object.keys(SPECS)].sort());
    // Secrets and ServiceAccount exist before the Deployment that mounts and uses them.
    const docker = fwd.filter(o => o.metadata.labels['pipeline-sidecars.dev/sidecar'] === 'docker').map(o => o.kind);
    expect(docker).toEqual(['ServiceAccount', 'Secret', 'Secret', 'Service', 'NetworkPolicy', 'Deployment']);
  });

  test('different material changes only the Secrets', async () => {
    const spec = SPECS.docker;
    const other = await mintRunTls({ hosts: ['x'] });
    const a = synthesizeRun({ run: RUN, sidecars: [{ name: 'docker', spec, material: await materialFor('docker', spec) }], allowPrivileged: true });
    const b = synthesizeRun({ run: RUN, sidecars: [{ name: 'docker', spec, material: { tls: other } }], allowPrivileged: true });
    const changed = a.filter((o, i) => JSON.stringify(o) !== JSON.stringify(b[i])).map(o => o.kind);
    expect(changed).toEqual(['Secret', 'Secret']);
  });

  test('errors are SidecarSpecErrors naming the sidecar and field', () => {
    const bad: PipelineSidecarSpec = { kind: 'Registry', ports: [{ name: 'reg', port: 0 }] };
    let err: unknown;
    try { synthesizeRun({ run: RUN, sidecars: [{ name: 'registry', spec: bad, material: {} }], allowPrivileged: false }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(SidecarSpecError);
    expect((err as SidecarSpecError).field).toBe('spec.ports[0].port');
    expect((err as SidecarSpecError).sidecar).toBe('registry');
    expect(() => synthesizeRun({ run: RUN, sidecars: [{ name: 'a', spec: { kind: 'Nope' }, material: {} }], allowPrivileged: false })).toThrow(/unknown kind "Nope"/);
    expect(() => synthesizeRun({ run: RUN, sidecars: [{ name: 'r', spec: SPECS.registry, material: {} }, { name: 'r', spec: SPECS.registry, material: {} }], allowPrivileged: false })).toThrow(/twice/);
    expect(() => synthesizeRun({ run: { ...RUN, runId: '' }, sidecars: [], allowPrivileged: false })).toThrow(/runId/);
  });

  test('a name too long for fallback mode is refused at synthesis', () => {
    expect(() => synthesizeRun({ run: { ...RUN, naming: 'runName', name: 'x'.repeat(55) }, sidecars: [{ name: 'registry', spec: SPECS.registry, material: {} }], allowPrivileged: false }))
      .toThrow(/63-character/);
  });

  test('no sidecars: no manifests', () => {
    expect(synthesizeRun({ run: RUN, sidecars: [], allowPrivileged: false })).toEqual([]);
  });
});

describe('validateSidecarSpec', () => {
  test('every built-in example is valid', () => {
    for (const [name, spec] of Object.entries(SPECS)) expect(validateSidecarSpec(name, spec)).toEqual([]);
  });

  test('lists every problem with its field', () => {
    const spec = {
      kind: 'Registry',
      ports: [{ name: 'r', port: 70000 }, { name: 'r', port: 5000, protocol: 'SCTP' }],
      isolation: { from: 'Cluster' },
      lifecycle: { startupTimeout: '5 minutes', onSidecarFailure: 'Retry' },
      registry: { image: 'registry:2', tag: 'x' },
    } as unknown as PipelineSidecarSpec;
    const fields = validateSidecarSpec('Bad_Name', spec).map(p => p.field);
    expect(fields).toEqual([
      'metadata.name',
      'spec.ports[0].port',
      'spec.ports[1].name',
      'spec.ports[1].protocol',
      'spec.isolation.from',
      'spec.lifecycle.startupTimeout',
      'spec.lifecycle.onSidecarFailure',
      'spec.registry.tag',
    ]);
  });

  test('unknown kind lists known kinds; Container without ports or containers says what is missing', () => {
    expect(validateSidecarSpec('x', { kind: 'Docker' })[0].message).toMatch(/known kinds are BuildKitDaemon, Container, DockerDaemon, Postgres, Registry/);
    expect(validateSidecarSpec('x', { kind: 'Container' }).map(p => p.field)).toEqual(['spec.template.containers']);
    const noPorts = validateSidecarSpec('x', { kind: 'Container', template: { containers: [{ name: 'c', image: 'busybox' }] } });
    expect(noPorts.map(p => p.field)).toEqual(['spec.ports']);
    expect(validateSidecarSpec('x', { kind: 'Registry', ports: [] })[0].message).toMatch(/leave ports out/);
  });
});
