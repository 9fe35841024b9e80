import { LABELS, RunIdentity, SidecarSpecError } from '../../constructs';
import { sidecarEndpoints } from '../../constructs/endpoints';
import { isDns1035Label, objectName, ownerReference, sidecarLabels, truncateName } from '../../constructs/names';
import { RUN } from './fixtures';

const FALLBACK: RunIdentity = { ...RUN, naming: 'runName' };

describe('objectName', () => {
  test('webhook mode is <sidecar>-<runId>[-suffix]', () => {
    expect(objectName(RUN, 'docker')).toBe('docker-k3x9q2ab');
    expect(objectName(RUN, 'docker', 'client')).toBe('docker-k3x9q2ab-client');
  });

  test('fallback mode is <runName>-<sidecar>[-suffix], what $(context.pipelineRun.name)-<sidecar> gives', () => {
    expect(objectName(FALLBACK, 'docker')).toBe('build-42-docker');
    expect(objectName(FALLBACK, 'docker', 'server')).toBe('build-42-docker-server');
  });

  test('too long names are cut to 63 with a hash of the whole name, deterministically', () => {
    const long = 'a'.repeat(60);
    const a = objectName(RUN, long, 'client');
    const b = objectName(RUN, long, 'server');
    for (const n of [a, b]) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(isDns1035Label(n)).toBe(true);
      expect(n).toMatch(/-[0-9a-f]{8}$/);
    }
    expect(a).not.toBe(b);
    expect(objectName(RUN, long, 'client')).toBe(a);
  });

  test('the cut never leaves a trailing or doubled dash before the hash', () => {
    // 54 characters then a dash exactly at the cut point.
    const n = truncateName(`${'b'.repeat(53)}-${'c'.repeat(20)}`);
    expect(n).toMatch(/^b{53}-[0-9a-f]{8}$/);
    expect(isDns1035Label(n)).toBe(true);
  });

  test('in fallback mode a Service name over 63 is an error naming the limit, not a silent hash', () => {
    const run: RunIdentity = { ...FALLBACK, name: 'r'.repeat(58) };
    expect(() => objectName(run, 'docker')).toThrow(SidecarSpecError);
    expect(() => objectName(run, 'docker')).toThrow(/context\.pipelineRun\.name.*63/);
    // Other objects of that run are not looked up by tasks, so they are hashed.
    expect(objectName(run, 'docker', 'client').length).toBe(63);
  });

  test('names that cannot be DNS-1035 labels are refused', () => {
    expect(() => objectName(RUN, 'Docker')).toThrow(/DNS-1035/);
    expect(() => objectName({ ...RUN, runId: 'x_y' }, 'docker')).toThrow(SidecarSpecError);
  });
});

describe('labels and owner', () => {
  test('the five labels, with the run id, run uid and run name', () => {
    expect(sidecarLabels(RUN, 'docker')).toEqual({
      [LABELS.managedBy]: 'pipeline-sidecars',
      [LABELS.runId]: 'k3x9q2ab',
      [LABELS.runUid]: RUN.uid,
      [LABELS.pipelineRun]: 'build-42',
      [LABELS.sidecar]: 'docker',
    });
  });

  test('a run name longer than a label value allows is hashed into 63 characters', () => {
    const labels = sidecarLabels({ ...RUN, name: 'n'.repeat(100) }, 'docker');
    expect(labels[LABELS.pipelineRun].length).toBe(63);
  });

  test('ownerReference is the controlling PipelineRun and does not block deletion', () => {
    expect(ownerReference(RUN)).toEqual({
      apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', name: 'build-42', uid: RUN.uid, controller: true, blockOwnerDeletion: false,
    });
  });
});

describe('sidecarEndpoints', () => {
  test('DockerDaemon: Service DNS name, first port, both TLS Secrets', () => {
    expect(sidecarEndpoints(RUN, 'docker', { kind: 'DockerDaemon' })).toEqual({
      serviceName: 'docker-k3x9q2ab',
      host: 'docker-k3x9q2ab.ci.svc',
      port: 2376,
      address: 'docker-k3x9q2ab.ci.svc:2376',
      clientSecretName: 'docker-k3x9q2ab-client',
      serverSecretName: 'docker-k3x9q2ab-server',
    });
  });

  test('spec.ports overrides kind defaults; plain-TCP docker has no Secrets', () => {
    const ep = sidecarEndpoints(RUN, 'docker', { kind: 'DockerDaemon', dockerDaemon: { tls: false } });
    expect(ep.port).toBe(2375);
    expect(ep.clientSecretName).toBeUndefined();
    expect(sidecarEndpoints(RUN, 'reg', { kind: 'Registry', ports: [{ name: 'http', port: 8080 }] }).address).toBe('reg-k3x9q2ab.ci.svc:8080');
  });

  test('Postgres has a client (credentials) Secret but no server certificate', () => {
    const ep = sidecarEndpoints(RUN, 'db', { kind: 'Postgres' });
    expect(ep.clientSecretName).toBe('db-k3x9q2ab-client');
    expect(ep.serverSecretName).toBeUndefined();
    expect(ep.port).toBe(5432);
  });

  test('an unknown kind names the known ones', () => {
    expect(() => sidecarEndpoints(RUN, 'x', { kind: 'Redis' })).toThrow(/unknown kind "Redis".*BuildKitDaemon, Container, DockerDaemon, Postgres, Registry/);
  });
});
