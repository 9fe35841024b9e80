import { ApiObject, App, Chart, JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import { defaultKinds, defineKind, PipelineSidecar, PipelineSidecarSpec, SidecarCommonProps, SidecarSpecError, synthesizeRun } from '../../constructs';
import { baselineViolations, podTemplateOf } from '../../constructs/pod-security';
import { BASELINE_CASES } from './pod-security-cases';
import { materialFor, one, RUN, SPECS } from './fixtures';

describe('baselineViolations: every Pod Security baseline rule, broken and kept', () => {
  test.each(BASELINE_CASES.map(c => [c.name, c] as const))('%s', (_name, c) => {
    expect(baselineViolations(c.pod).map(v => v.path)).toEqual(c.violations);
  });

  test('each violation carries the offending value and the rule', () => {
    const [v] = baselineViolations({ spec: { containers: [{ name: 'c', image: 'x', securityContext: { capabilities: { add: ['CHOWN', 'SYS_ADMIN'] } } }] } });
    expect(v).toEqual({ path: 'containers[0].securityContext.capabilities.add[1]', value: 'SYS_ADMIN', rule: expect.stringContaining('NET_BIND_SERVICE') });
  });

  test('the table covers both verdicts (no vacuous pass)', () => {
    expect(BASELINE_CASES.filter(c => c.violations.length === 0).length).toBeGreaterThan(10);
    expect(BASELINE_CASES.filter(c => c.violations.length > 0).length).toBeGreaterThan(15);
  });

  test('podTemplateOf finds the pod of every workload kind, and nothing in others', () => {
    const tpl = { metadata: {}, spec: { hostPID: true, containers: [] } };
    for (const kind of ['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job']) expect(podTemplateOf({ kind, spec: { template: tpl } })).toBe(tpl);
    expect(podTemplateOf({ kind: 'CronJob', spec: { jobTemplate: { spec: { template: tpl } } } })).toBe(tpl);
    expect(podTemplateOf({ kind: 'Pod', metadata: {}, spec: tpl.spec })?.spec).toBe(tpl.spec);
    expect(podTemplateOf({ kind: 'Service', spec: { template: tpl } })).toBeUndefined();
  });
});

const container = (securityContext: Record<string, unknown>): PipelineSidecarSpec => ({
  kind: 'Container', ports: [{ name: 'x', port: 80 }],
  template: { containers: [{ name: 'x', image: 'busybox', securityContext }] },
});

function attempt(spec: PipelineSidecarSpec, allowPrivileged: boolean, kinds = defaultKinds()) {
  return () => synthesizeRun({ run: RUN, sidecars: [{ name: 'x', spec, material: {} }], allowPrivileged, kinds });
}

describe('the pod that will run is checked, whatever the kind', () => {
  test.each([
    ['capabilities.add SYS_ADMIN', { capabilities: { add: ['SYS_ADMIN'] } }, 'containers[0].securityContext.capabilities.add[0]=SYS_ADMIN'],
    ['capabilities.add ALL', { capabilities: { add: ['NET_BIND_SERVICE', 'ALL'] } }, 'containers[0].securityContext.capabilities.add[1]=ALL'],
    ['procMount Unmasked', { procMount: 'Unmasked' }, 'containers[0].securityContext.procMount=Unmasked'],
    ['seccomp Unconfined', { seccompProfile: { type: 'Unconfined' } }, 'containers[0].securityContext.seccompProfile.type=Unconfined'],
    ['privileged', { privileged: true }, 'containers[0].securityContext.privileged=true'],
  ])('a Container sidecar with %s is refused without allow-privileged, naming the field and the fix', (_n, sc, named) => {
    const run = attempt(container(sc), false);
    expect(run).toThrow(SidecarSpecError);
    expect(run).toThrow(named);
    expect(run).toThrow(/kubectl label namespace ci pipeline-sidecars\.dev\/allow-privileged=true/);
    expect(run).toThrow(/remove these fields/);
    // The same spec is fine where the namespace opted in.
    expect(attempt(container(sc), true)).not.toThrow();
  });

  test('a Container sidecar within baseline runs anywhere (negative control)', () => {
    expect(attempt(container({ capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] }, runAsUser: 1000 }), false)).not.toThrow();
  });

  test.each([
    ['DockerDaemon', 'docker', 'containers[0].securityContext.privileged=true'],
    ['BuildKitDaemon', 'buildkit', 'containers[0].securityContext.seccompProfile.type=Unconfined'],
    ['Postgres', 'db', undefined],
    ['Registry', 'registry', undefined],
    ['Container', 'generic', undefined],
  ])('built-in kind %s without allow-privileged: %s', async (_kind, name, named) => {
    const material = await materialFor(name, SPECS[name]);
    const run = () => synthesizeRun({ run: RUN, sidecars: [{ name, spec: SPECS[name], material }], allowPrivileged: false });
    if (named) expect(run).toThrow(named);
    else expect(run).not.toThrow();
  });

  /** A custom kind whose construct adds a hostPath volume through the base construct's props. */
  class HostPathSidecar extends PipelineSidecar {
    constructor(scope: Construct, id: string, props: SidecarCommonProps) {
      super(scope, id, {
        ...props,
        containers: [{ name: 'agent', image: 'agent:1', volumeMounts: [{ name: 'docker-sock', mountPath: '/var/run/docker.sock' }] }],
        volumes: [{ name: 'docker-sock', hostPath: { path: '/var/run/docker.sock' } }],
      });
    }
  }
  /** A custom kind that edits the Deployment after the base construct built it, and adds a Pod of its own. */
  class SneakySidecar extends PipelineSidecar {
    constructor(scope: Construct, id: string, props: SidecarCommonProps & { extraPod?: boolean }) {
      super(scope, id, { ...props, containers: [{ name: 'agent', image: 'agent:1' }] });
      if (props.extraPod) {
        new ApiObject(this, 'Helper', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'helper', namespace: props.run.namespace }, spec: { hostIPC: true, containers: [{ name: 'h', image: 'h' }] } } as any);
      } else {
        this.deployment.addJsonPatch(JsonPatch.add('/spec/template/spec/hostNetwork', true));
      }
    }
  }
  const customKinds = () => defaultKinds()
    .register(defineKind({ name: 'HostPath', defaultPorts: [{ name: 'a', port: 1 }], create: (s, id, p) => new HostPathSidecar(s, id, p) }))
    .register(defineKind({ name: 'Sneaky', defaultPorts: [{ name: 'a', port: 1 }], create: (s, id, p) => new SneakySidecar(s, id, p) }))
    .register(defineKind({ name: 'SneakyPod', defaultPorts: [{ name: 'a', port: 1 }], create: (s, id, p) => new SneakySidecar(s, id, { ...p, extraPod: true }) }));

  test.each([
    ['HostPath', 'volumes[0].hostPath=/var/run/docker.sock'],
    ['Sneaky', 'hostNetwork=true'],
    ['SneakyPod', 'hostIPC=true'],
  ])('custom kind %s that never says it is privileged is refused for %s', (kind, named) => {
    const kinds = customKinds();
    expect(kinds.get(kind).privileged({ kind })).toBe(false); // it does not declare it...
    expect(attempt({ kind }, false, kinds)).toThrow(named); // ...and is refused anyway
    expect(attempt({ kind }, true, kinds)).not.toThrow();
  });

  test('the base construct refuses by itself, for callers that bypass synthesizeRun', () => {
    const props = { run: RUN, sidecarName: 'agent', ports: [{ name: 'a', port: 1 }] };
    expect(() => new HostPathSidecar(new Chart(new App(), 'c'), 'h', props)).toThrow(/volumes\[0\]\.hostPath/);
    const ok = new HostPathSidecar(new Chart(new App(), 'c'), 'h', { ...props, allowPrivileged: true });
    expect(one([ok.deployment.toJson()], 'Deployment').spec.template.spec.volumes[0].hostPath.path).toBe('/var/run/docker.sock');
  });
});
