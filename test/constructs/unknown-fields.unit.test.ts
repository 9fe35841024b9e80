import { defaultKinds, defineKind, PipelineSidecar, PipelineSidecarSpec, validateSidecarSpec } from '../../constructs';
import { PIPELINE_SIDECAR_SPEC_SCHEMA } from '../../constructs/api/crd';

const web = { name: 'web', image: 'nginx:1', ports: [{ containerPort: 80 }] };
const kinds = defaultKinds().register(defineKind({ name: 'Redis', defaultPorts: [{ name: 'redis', port: 6379 }], create: (s, id, p) => new PipelineSidecar(s, id, { ...p, containers: [{ name: 'r', image: 'redis' }] }) }));
const problems = (spec: Record<string, unknown>) => validateSidecarSpec('s', spec as PipelineSidecarSpec, kinds).map(p => `${p.field}: ${p.problem}`);

describe('a field the CRD does not know is named, never ignored', () => {
  test.each([
    ['spec.hostNetwork', { kind: 'Registry', hostNetwork: true }, 'spec.hostNetwork: unknown field; known fields are selector, kind, ports, expose, isolation, lifecycle, registry'],
    ['spec.template.hostPID', { kind: 'Container', template: { containers: [web], hostPID: true } }, 'spec.template.hostPID: unknown field; the only field is containers'],
    ['a container field', { kind: 'Container', template: { containers: [{ ...web, lifecycle: {} }] } }, 'spec.template.containers[0].lifecycle: unknown field; known fields are name, image, command, args, env'],
    ['a container port field', { kind: 'Container', template: { containers: [{ ...web, ports: [{ containerPort: 80, hostPort: 80 }] }] } }, 'spec.template.containers[0].ports[0].hostPort: unknown field; known fields are name, containerPort, protocol'],
    ['an env field', { kind: 'Container', template: { containers: [{ ...web, env: [{ name: 'A', valu: 'b' }] }] } }, 'spec.template.containers[0].env[0].valu: unknown field; known fields are name, value, valueFrom'],
    ['an option block field', { kind: 'DockerDaemon', dockerDaemon: { storgeDriver: 'vfs' } }, 'spec.dockerDaemon.storgeDriver: unknown field; known fields are tls, storageDriver'],
    ['another kind\'s block', { kind: 'Postgres', template: { containers: [web] } }, 'spec.template: is the option block of another kind; this kind reads spec.postgres'],
    ['lifecycle', { kind: 'Registry', lifecycle: { startupTimeOut: '5m' } }, 'spec.lifecycle.startupTimeOut: unknown field; known fields are startupTimeout, onSidecarFailure'],
    ['expose.params[]', { kind: 'Registry', expose: { params: [{ name: 'a', value: '$(host)', default: 'x' }] } }, 'spec.expose.params[0].default: unknown field; known fields are name, value'],
    ['a custom kind\'s root', { kind: 'Redis', redis: {}, rediss: {} }, 'spec.rediss: unknown field; known fields are selector, kind, ports, expose, isolation, lifecycle, redis'],
  ])('%s', (_n, spec, expected) => {
    const p = problems(spec);
    expect(p).toEqual([expect.stringContaining(expected)]);
  });

  test.each([
    ['every common field', { kind: 'Registry', selector: { pipelineRef: 'p', matchLabels: { a: 'b' } }, ports: [{ name: 'r', port: 5000, protocol: 'TCP' }], expose: { params: [{ name: 'r', value: '$(address)' }], workspace: 'w' }, isolation: { from: 'SameRun', matchRunUid: true, egress: [{ to: [{ podSelector: {} }], anything: 1 }] }, lifecycle: { startupTimeout: '5m', onSidecarFailure: 'Cancel' } }],
    ['free-form containers parts', { kind: 'Container', template: { containers: [{ ...web, securityContext: { runAsUser: 1, whatever: 2 }, readinessProbe: { httpGet: { path: '/', port: 80 } }, env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }], resources: { limits: { memory: '1Gi' } } }] } }],
    ['a custom kind\'s own block, free-form', { kind: 'Redis', redis: { maxMemory: '1mb', anything: true } }],
  ])('nothing is reported for %s (negative control)', (_n, spec) => {
    expect(problems(spec)).toEqual([]);
  });

  test('the CRD keeps unknown fields at every object that lists its properties', () => {
    const missing: string[] = [];
    const walk = (s: any, path: string) => {
      if (s.properties && s['x-kubernetes-preserve-unknown-fields'] !== true) missing.push(path);
      for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${path}.${k}`);
      if (s.items) walk(s.items, `${path}[]`);
    };
    walk(PIPELINE_SIDECAR_SPEC_SCHEMA, 'spec');
    expect(missing).toEqual([]);
  });
});
