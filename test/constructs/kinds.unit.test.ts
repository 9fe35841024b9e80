import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LABELS, PipelineSidecarSpec, SidecarSpecError, synthesizeRun, TlsBundle } from '../../constructs';
import { DockerDaemon } from '../../constructs/docker-daemon';
import { isDns1035Label } from '../../constructs/names';
import { Chart, App } from 'cdk8s';
import { decode, materialFor, one, RUN, sharedTls, SPECS } from './fixtures';

async function synth(name: string, spec: PipelineSidecarSpec, allowPrivileged = true) {
  return synthesizeRun({ run: RUN, sidecars: [{ name, spec, material: await materialFor(name, spec) }], allowPrivileged });
}

function containsLabels(labels: Record<string, string>, subset: Record<string, string>): boolean {
  return Object.entries(subset).every(([k, v]) => labels[k] === v);
}

let tls: TlsBundle;
beforeAll(async () => { tls = await sharedTls(); });

describe.each(Object.keys(SPECS))('every kind: %s', (name) => {
  let objs: Array<Record<string, any>>;
  beforeAll(async () => { objs = await synth(name, SPECS[name]); });

  test('every object: DNS-1035 name within 63, our five labels, owned by the PipelineRun, in the run namespace', () => {
    expect(objs.length).toBeGreaterThanOrEqual(4);
    for (const o of objs) {
      expect(isDns1035Label(o.metadata.name)).toBe(true);
      expect(o.metadata.namespace).toBe('ci');
      expect(o.metadata.labels).toEqual({
        [LABELS.managedBy]: 'pipeline-sidecars', [LABELS.runId]: RUN.runId, [LABELS.runUid]: RUN.uid, [LABELS.pipelineRun]: RUN.name, [LABELS.sidecar]: name,
      });
      expect(o.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'PipelineRun', uid: RUN.uid, name: RUN.name, controller: true })]);
    }
  });

  test('Deployment: 1 replica, Recreate, selects its own pods by run-id + sidecar, never by a cdk8s hash label', () => {
    const d = one(objs, 'Deployment');
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    expect(d.spec.selector.matchLabels).toEqual({ [LABELS.runId]: RUN.runId, [LABELS.sidecar]: name });
    expect(containsLabels(d.spec.template.metadata.labels, d.spec.selector.matchLabels)).toBe(true);
    expect(JSON.stringify(d)).not.toContain('cdk8s.io/metadata.addr');
  });

  test('Service and NetworkPolicy select the same pods as the Deployment; Service targets container ports', () => {
    const d = one(objs, 'Deployment');
    const podLabels = d.spec.template.metadata.labels;
    const svc = one(objs, 'Service');
    expect(svc.spec.type).toBe('ClusterIP');
    expect(containsLabels(podLabels, svc.spec.selector)).toBe(true);
    // Another sidecar of the same run must not be selected.
    expect(containsLabels({ ...podLabels, [LABELS.sidecar]: 'other' }, svc.spec.selector)).toBe(false);
    const np = one(objs, 'NetworkPolicy');
    expect(np.spec.podSelector.matchLabels).toEqual(svc.spec.selector);
    const containerPorts = d.spec.template.spec.containers.flatMap((c: any) => (c.ports ?? []).map((p: any) => p.containerPort));
    for (const p of svc.spec.ports) expect(containerPorts).toContain(p.targetPort);
    expect(np.spec.ingress[0].ports.map((p: any) => p.port).sort()).toEqual(svc.spec.ports.map((p: any) => p.port).sort());
  });

  test('ServiceAccount without token automount, used by the pod, which does not automount either', () => {
    const sa = one(objs, 'ServiceAccount');
    expect(sa.automountServiceAccountToken).toBe(false);
    const pod = one(objs, 'Deployment').spec.template.spec;
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  test('probes aim at a port the container serves; volume mounts name existing volumes; no cdk8s-plus defaults', () => {
    const pod = one(objs, 'Deployment').spec.template.spec;
    const volumes = new Set((pod.volumes ?? []).map((v: any) => v.name));
    for (const c of pod.containers) {
      expect(c.imagePullPolicy).toBe('IfNotPresent');
      expect(c.securityContext?.readOnlyRootFilesystem).toBeUndefined();
      expect(c.resources).toBeUndefined();
      const ports = (c.ports ?? []).map((p: any) => p.containerPort);
      for (const probe of [c.startupProbe, c.readinessProbe].filter(Boolean)) {
        const port = probe.tcpSocket?.port ?? probe.httpGet?.port;
        if (port !== undefined) expect(ports).toContain(port);
        else expect(probe.exec?.command?.length).toBeGreaterThan(0);
      }
      for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name)).toBe(true);
    }
    expect(pod.containers.some((c: any) => c.readinessProbe)).toBe(true);
  });
});

describe('TLS kinds mount the right Secret keys', () => {
  test.each([['docker', 'dockerd', (p: string, k: string) => `--tls${k}=${p}`], ['buildkit', 'buildkitd', null]] as const)('%s', async (name, container, flag) => {
    const objs = await synth(name, SPECS[name]);
    const server = one(objs, 'Secret', `${name}-${RUN.runId}-server`);
    const client = one(objs, 'Secret', `${name}-${RUN.runId}-client`);
    expect(decode(server, 'cert.pem')).toBe(tls.serverCert);
    expect(decode(server, 'key.pem')).toBe(tls.serverKey);
    expect(decode(server, 'ca.pem')).toBe(tls.caCert);
    expect(Object.keys(client.data).sort()).toEqual(['ca.pem', 'cert.pem', 'key.pem']);
    expect(decode(client, 'cert.pem')).toBe(tls.clientCert);
    expect(decode(client, 'key.pem')).toBe(tls.clientKey);
    expect(decode(client, 'ca.pem')).toBe(tls.caCert);

    const pod = one(objs, 'Deployment').spec.template.spec;
    const vol = pod.volumes.find((v: any) => v.secret?.secretName === server.metadata.name);
    expect(vol).toBeDefined();
    const c = pod.containers.find((x: any) => x.name === container);
    const mount = c.volumeMounts.find((m: any) => m.name === vol.name);
    expect(mount.readOnly).toBe(true);
    // Every certificate path the daemon is given is a key of the mounted Secret.
    const paths = c.args.join(' ').match(new RegExp(`${mount.mountPath}/[a-z.]+`, 'g'));
    expect(paths).toHaveLength(3);
    for (const p of paths!) expect(Object.keys(server.data)).toContain(p.slice(mount.mountPath.length + 1));
    if (flag) {
      expect(c.args).toContain(flag(`${mount.mountPath}/ca.pem`, 'cacert'));
      expect(c.args).toContain(flag(`${mount.mountPath}/key.pem`, 'key'));
    }
  });
});

describe('DockerDaemon', () => {
  test('the start-up probe\'s script asks until the daemon answers, and succeeds then (a stand-in docker on PATH)', async () => {
    const c = one(await synth('docker', SPECS.docker), 'Deployment').spec.template.spec.containers[0];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'probe-'));
    try {
      // Fails twice (the daemon not up yet), then answers; counts its calls.
      fs.writeFileSync(path.join(dir, 'docker'), `#!/bin/sh\nn=$(cat ${dir}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${dir}/n; [ $n -ge 3 ]\n`, { mode: 0o755 });
      const r = spawnSync(c.startupProbe.exec.command[0], c.startupProbe.exec.command.slice(1), { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
      expect(r.status).toBe(0);
      expect(fs.readFileSync(path.join(dir, 'n'), 'utf8').trim()).toBe('3');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('dind with --tlsverify on 2376, no in-container certs, API probes on the unix socket, storage driver and mirrors', async () => {
    const objs = await synth('docker', SPECS.docker);
    const c = one(objs, 'Deployment').spec.template.spec.containers[0];
    expect(c.image).toBe('docker:27-dind');
    // Starting with "dockerd" makes the entrypoint skip its own defaults (a plaintext 2375 listener).
    expect(c.args[0]).toBe('dockerd');
    expect(c.args).toEqual(expect.arrayContaining(['--host=tcp://0.0.0.0:2376', '--tlsverify', '--storage-driver=overlay2', '--registry-mirror=https://mirror.gcr.io']));
    expect(c.args.join(' ')).not.toContain('2375');
    expect(c.env).toContainEqual({ name: 'DOCKER_TLS_CERTDIR', value: '' });
    expect(c.securityContext).toEqual({ privileged: true });
    // The daemon is Ready when it answers its API, not when its port is bound.
    const probe = ['docker', '--host=unix:///var/run/docker.sock', 'version'];
    expect(c.readinessProbe.exec).toEqual({ command: probe });
    // Start-up asks the same, again every 50 ms within one exec.
    expect(c.startupProbe.exec.command.slice(0, 2)).toEqual(['sh', '-c']);
    expect(c.startupProbe.exec.command[2]).toContain(probe.join(' '));
    expect(c.startupProbe.timeoutSeconds).toBeGreaterThan(4);
    const graph = one(objs, 'Deployment').spec.template.spec.volumes.find((v: any) => v.name === 'docker-graph');
    expect(graph.emptyDir).toEqual({ sizeLimit: '20Gi' });
    expect(c.volumeMounts).toContainEqual({ name: 'docker-graph', mountPath: '/var/lib/docker' });
  });

  test('custom storage driver; tls: false serves 2375 without Secrets', async () => {
    const objs = await synth('docker', { kind: 'DockerDaemon', dockerDaemon: { tls: false, storageDriver: 'vfs' } });
    const c = one(objs, 'Deployment').spec.template.spec.containers[0];
    expect(c.args).toContain('--storage-driver=vfs');
    expect(c.args).toContain('--host=tcp://0.0.0.0:2375');
    expect(c.args).not.toContain('--tlsverify');
    expect(c.args).toContain('--tls=false');
    expect(objs.filter(o => o.kind === 'Secret')).toHaveLength(0);
    expect(one(objs, 'Service').spec.ports[0].port).toBe(2375);
  });

  test('privileged is refused unless the caller allows it, with what to do about it', async () => {
    const material = await materialFor('docker', SPECS.docker);
    const attempt = () => synthesizeRun({ run: RUN, sidecars: [{ name: 'docker', spec: SPECS.docker, material }], allowPrivileged: false });
    expect(attempt).toThrow(SidecarSpecError);
    expect(attempt).toThrow(/privileged.*pipeline-sidecars\.dev\/allow-privileged=true/);
    // The construct itself refuses too, for callers that bypass synthesizeRun.
    const chart = new Chart(new App(), 'c');
    expect(() => new DockerDaemon(chart, 'd', { run: RUN, sidecarName: 'docker', tls })).toThrow(/allow-privileged/);
    expect(() => new DockerDaemon(new Chart(new App(), 'c'), 'd', { run: RUN, sidecarName: 'docker', tls, allowPrivileged: true })).not.toThrow();
  });

  test('bad options name the field', async () => {
    await expect(synth('docker', { kind: 'DockerDaemon', dockerDaemon: { registryMirrors: ['mirror.gcr.io'] } })).rejects.toThrow(/spec\.dockerDaemon\.registryMirrors\[0\]/);
    await expect(synth('docker', { kind: 'DockerDaemon', dockerDaemon: { storgeDriver: 'vfs' } as any })).rejects.toThrow(/spec\.dockerDaemon\.storgeDriver: unknown field/);
    await expect(synth('reg', { kind: 'Registry', registry: { imag: 'registry:2' } as any })).rejects.toThrow(/spec\.registry\.imag: unknown field; the only field is image/);
    await expect(synth('pg', { kind: 'Postgres', postgres: { db: 'x' } as any })).rejects.toThrow(/spec\.postgres\.db: unknown field; known fields are image, database, user/);
  });
});

describe('BuildKitDaemon', () => {
  test('rootless: no privilege, Unconfined seccomp/AppArmor (so beyond baseline), uid 1000, fsGroup for the key, TLS on 1234', async () => {
    const objs = await synth('buildkit', SPECS.buildkit);
    const pod = one(objs, 'Deployment').spec.template.spec;
    const c = pod.containers[0];
    expect(c.image).toBe('moby/buildkit:rootless');
    expect(c.securityContext.privileged).toBeUndefined();
    expect(c.securityContext).toEqual({
      seccompProfile: { type: 'Unconfined' }, appArmorProfile: { type: 'Unconfined' }, runAsUser: 1000, runAsGroup: 1000,
    });
    expect(pod.securityContext).toEqual({ fsGroup: 1000 });
    expect(c.args).toEqual(expect.arrayContaining(['tcp://0.0.0.0:1234', '--oci-worker-no-process-sandbox']));
    expect(c.startupProbe.tcpSocket).toEqual({ port: 1234 });
  });
});

describe('Postgres', () => {
  test('the password comes from the per-run Secret, which tasks can bind for credentials', async () => {
    const spec = SPECS.db;
    const objs = synthesizeRun({ run: RUN, sidecars: [{ name: 'db', spec, material: { password: 's3cr3t/+' } }], allowPrivileged: false });
    const c = one(objs, 'Deployment').spec.template.spec.containers[0];
    const pw = c.env.find((e: any) => e.name === 'POSTGRES_PASSWORD');
    const secret = one(objs, 'Secret');
    expect(pw.valueFrom.secretKeyRef).toEqual({ name: secret.metadata.name, key: 'password' });
    expect(decode(secret, 'password')).toBe('s3cr3t/+');
    expect(decode(secret, 'username')).toBe('tester');
    expect(decode(secret, 'database')).toBe('orders');
    expect(decode(secret, 'uri')).toBe(`postgresql://tester:s3cr3t%2F%2B@db-${RUN.runId}.ci.svc:5432/orders`);
    expect(c.env).toContainEqual({ name: 'POSTGRES_USER', value: 'tester' });
    expect(c.readinessProbe.exec.command).toEqual(['pg_isready', '-h', '127.0.0.1', '-p', '5432', '-U', 'tester', '-d', 'orders']);
    expect(JSON.stringify(c)).not.toContain('s3cr3t');
  });

  test('without a minted password synthesis says what to do', () => {
    expect(() => synthesizeRun({ run: RUN, sidecars: [{ name: 'db', spec: SPECS.db, material: {} }], allowPrivileged: false })).toThrow(/randomPassword/);
  });
});

describe('Registry', () => {
  test('registry:2 on 5000, ready when /v2/ answers', async () => {
    const objs = await synth('registry', SPECS.registry, false);
    const c = one(objs, 'Deployment').spec.template.spec.containers[0];
    expect(c.image).toBe('registry:2');
    expect(c.env).toContainEqual({ name: 'REGISTRY_HTTP_ADDR', value: '0.0.0.0:5000' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/v2/', port: 5000 });
    expect(one(objs, 'Service').spec.ports).toEqual([{ name: 'registry', port: 5000, targetPort: 5000, protocol: 'TCP' }]);
  });
});

describe('Container', () => {
  test('containers pass through; Service ports come from the container ports', async () => {
    const objs = await synth('generic', SPECS.generic, false);
    const c = one(objs, 'Deployment').spec.template.spec.containers[0];
    expect(c.args).toEqual(['-listen=:5678', '-text=hi']);
    expect(one(objs, 'Service').spec.ports).toEqual([{ name: 'http', port: 5678, targetPort: 5678, protocol: 'TCP' }]);
  });

  test('a privileged container needs permission; a missing image is named', () => {
    const spec: PipelineSidecarSpec = { kind: 'Container', template: { containers: [{ name: 'x', image: 'busybox', securityContext: { privileged: true } }] }, ports: [{ name: 'x', port: 1 }] };
    expect(() => synthesizeRun({ run: RUN, sidecars: [{ name: 'x', spec, material: {} }], allowPrivileged: false })).toThrow(/privileged/);
    const noImage = { kind: 'Container', template: { containers: [{ name: 'x' }] } } as any;
    expect(() => synthesizeRun({ run: RUN, sidecars: [{ name: 'x', spec: noImage, material: {} }], allowPrivileged: true })).toThrow(/spec\.template\.containers\[0\]\.image/);
  });
});
