import { createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { podLog } from '../../platform/node';
import { TestNode, testNode, releaseTestNode } from '../../platform/node-shared';
import { podOnNode, retried, runPod } from '../../platform/node-pods';
import { DeployedSidecar, deploySidecar, sidecarPod, taskPodLabels } from '../../platform/node-sidecars';
import { serviceDnsNames } from '../../constructs';
import { mintRunTls } from '../../src/tls';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';

/**
 * The DockerDaemon kind for real: the constructs' own Deployment, Service, Secrets and
 * NetworkPolicy on the real node, with the locally built docker:27-dind, and task-like pods using
 * the docker:27 CLI image. Tekton is not involved here: pods carry the label Tekton puts on a run's
 * task pods (tekton.dev/pipelineRun and pipelineRunUID), which is what the NetworkPolicy selects.
 */
jest.setTimeout(240_000);

const CLI = 'docker.io/library/docker:27';
const RUN = 'build-1';
let node: TestNode;
let ns: string;
let daemon: DeployedSidecar;
let readyMs: number;

/** A pod of run `run` with a Secret mounted at /certs (if given), talking to the daemon with `script`. */
function taskPod(name: string, run: string, script: string, secret?: string): Record<string, any> {
  const pod = podOnNode(node.state, name, script, { image: CLI, labels: taskPodLabels(run, ns) });
  const c = pod.spec.containers[0];
  c.env = [{ name: 'DOCKER_HOST', value: `tcp://${daemon.host}:${daemon.port}` }, { name: 'DOCKER_BUILDKIT', value: '0' }];
  if (secret) {
    c.env.push({ name: 'DOCKER_TLS_VERIFY', value: '1' }, { name: 'DOCKER_CERT_PATH', value: '/certs' });
    pod.spec.volumes = [{ name: 'certs', secret: { secretName: secret } }];
    c.volumeMounts = [{ name: 'certs', mountPath: '/certs', readOnly: true }];
  }
  return pod;
}

beforeAll(async () => {
  node = await testNode({ verbose: true });
  ns = await createTestNamespace('node-docker');
  const t0 = Date.now();
  daemon = await deploySidecar(rawClient(), node.state, ns, RUN, 'docker', { kind: 'DockerDaemon', dockerDaemon: { tls: true } });
  await eventually('the daemon pod Ready', async () => {
    const p = await sidecarPod(rawClient(), ns, daemon);
    return p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
  }, 120_000, 100);
  readyMs = Date.now() - t0;
  process.stderr.write(`[node] DockerDaemon objects applied -> pod Ready in ${readyMs} ms\n`);
}, NODE_SETUP_TIMEOUT_MS);

afterAll(async () => {
  await releaseTestNode(node);
  rawClient().close();
}, 60_000);

describe('DockerDaemon on the real node', () => {
  it('a task pod of the run reaches the daemon over mutual TLS by its Service DNS name', async () => {
    const { pod, ms } = await runPod(rawClient(), ns, taskPod('version', RUN, retried('docker version --format "server={{.Server.Version}}"'), daemon.clientSecretName));
    const log = podLog(node.state, ns, 'version', 'main');
    expect({ phase: pod.status.phase, log }).toMatchObject({ phase: 'Succeeded' });
    expect(log).toMatch(/^server=\d+\.\d+\.\d+/m);
    process.stderr.write(`[node] mTLS docker version from a new task pod: ${ms} ms, ${/attempts=\d+/.exec(log)?.[0]}\n`);
  });

  it('the TEP story: one pod builds an image with the per-run daemon, the next pod runs that exact image', async () => {
    const marker = `built-${Math.random().toString(36).slice(2)}`;
    const build = [
      'set -e', 'mkdir -p /tmp/ctx', 'cp /bin/busybox /tmp/ctx/busybox', 'cd /tmp/ctx',
      `printf 'FROM scratch\\nCOPY busybox /bin/busybox\\nENTRYPOINT ["/bin/busybox", "echo"]\\n' > Dockerfile`,
    ].join('; ') + '; ' + retried('docker build -t tep/built:1 .');
    const b = await runPod(rawClient(), ns, taskPod('build', RUN, build, daemon.clientSecretName), undefined, 120_000);
    expect({ phase: b.pod.status.phase, log: podLog(node.state, ns, 'build', 'main') }).toMatchObject({ phase: 'Succeeded' });
    const r = await runPod(rawClient(), ns, taskPod('run', RUN, retried(`docker run --rm tep/built:1 ${marker}`), daemon.clientSecretName), undefined, 120_000);
    const log = podLog(node.state, ns, 'run', 'main');
    expect({ phase: r.pod.status.phase, log }).toMatchObject({ phase: 'Succeeded' });
    // The marker is random and only the built image's entrypoint (busybox echo) prints it.
    expect(log).toContain(marker);
  });

  it('isolation: only the run\'s own pods can open a TCP connection to the daemon; without the policy the others can', async () => {
    const client = rawClient();
    const svc = await client.get(`/api/v1/namespaces/${ns}/services/${daemon.host.split('.')[0]}`);
    // Connect (3 s timeout) and close at once: exit 0 only if the TCP handshake completed.
    const connect = retried(`timeout 3 nc ${svc.spec.clusterIP} ${daemon.port} -e true`, 5);
    const other = await createTestNamespace('node-docker-other');
    const attempt = async (name: string, run: string | undefined, where = ns): Promise<string> => {
      // Labelled as Tekton labels a task pod of `run` in the daemon's namespace (its uid included).
      const pod = podOnNode(node.state, name, connect, { labels: run ? taskPodLabels(run, ns) : {} });
      return (await runPod(client, where, pod)).pod.status.phase;
    };
    expect(await attempt('own-task', RUN)).toBe('Succeeded');
    expect(await attempt('other-run', 'build-2')).toBe('Failed');
    expect(await attempt('plain', undefined)).toBe('Failed');
    // Even with the run's label: the policy admits pods of the daemon's namespace only.
    expect(await attempt('other-ns', RUN, other)).toBe('Failed');
    // Negative control: without the NetworkPolicy the other run's pod connects.
    await client.delete(`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/${daemon.policyName}`);
    let n = 0;
    await eventually('the other run to connect once the policy is gone', async () => (await attempt(`other-run-open-${n++}`, 'build-2')) === 'Succeeded', 60_000, 500);
    // ...and so does the pod of the other namespace: it was the policy that kept it out, not the network.
    expect(await attempt('other-ns-open', RUN, other)).toBe('Succeeded');
  });

  /** A Secret of PEM files, as the run's client Secret holds them. */
  const pemSecret = (name: string, data: Record<string, string>) => rawClient().create(`/api/v1/namespaces/${ns}/secrets`, {
    apiVersion: 'v1', kind: 'Secret', metadata: { name }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  });
  const ownPem = async (): Promise<Record<string, string>> => {
    const own = await rawClient().get(`/api/v1/namespaces/${ns}/secrets/${daemon.clientSecretName}`);
    return Object.fromEntries(Object.entries(own.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  };
  const tlsLines = (log: string) => log.split('\n').filter((l) => /onnect|tls|certificate/i.test(l)).join(' | ');

  it('the daemon refuses a client without a certificate, or with one from another run\'s CA (the client does not check the daemon here, so the refusal is the daemon\'s); the run\'s own certificate gets in', async () => {
    const client = rawClient();
    const own = await ownPem();
    const otherTls = await mintRunTls({ hosts: serviceDnsNames('docker-build2', ns) });
    await pemSecret('ca-only', { 'ca.pem': own['ca.pem'] });
    await pemSecret('other-run', { 'ca.pem': otherTls.caCert, 'cert.pem': otherTls.clientCert, 'key.pem': otherTls.clientKey });
    // The policy admits these pods (they carry the run's label): only TLS stands between them and the daemon.
    const noCert = await runPod(client, ns, taskPod('no-cert', RUN, retried('docker --tlsverify --tlscacert /certs/ca.pem version', 5), 'ca-only'));
    expect(noCert.pod.status.phase).toBe('Failed');
    const noCertLog = podLog(node.state, ns, 'no-cert', 'main');
    process.stderr.write(`[node] no client certificate: ${tlsLines(noCertLog)}\n`);
    expect(noCertLog).toMatch(/remote error: tls: certificate required/);
    expect(noCertLog).not.toMatch(/^Server:/m);
    // Another run's client certificate, presented without checking the server (so the daemon's check alone decides).
    const foreign = await runPod(client, ns, taskPod('other-cert', RUN, retried('docker --tlsverify=false --tls --tlscert /certs/cert.pem --tlskey /certs/key.pem version', 5), 'other-run'));
    expect(foreign.pod.status.phase).toBe('Failed');
    const foreignLog = podLog(node.state, ns, 'other-cert', 'main');
    process.stderr.write(`[node] another run's client certificate: ${tlsLines(foreignLog)}\n`);
    expect(foreignLog).toMatch(/remote error: tls: unknown certificate authority/);
    expect(foreignLog).not.toMatch(/^Server:/m);
    // Negative control: the same command with the run's own certificate gets in.
    const ok = await runPod(client, ns, taskPod('own-cert', RUN, retried('docker --tlsverify=false --tls --tlscert /certs/cert.pem --tlskey /certs/key.pem version'), daemon.clientSecretName));
    expect(ok.pod.status.phase).toBe('Succeeded');
    expect(podLog(node.state, ns, 'own-cert', 'main')).toMatch(/^Server:/m);
  });

  it('a client that trusts only another run\'s CA refuses the daemon\'s server certificate, even holding the run\'s own client certificate; trusting the run\'s CA, the same client gets in', async () => {
    const client = rawClient();
    const own = await ownPem();
    const otherTls = await mintRunTls({ hosts: serviceDnsNames('docker-build3', ns) });
    // The run's own client certificate and key (which the daemon accepts), with another run's CA to check the daemon by.
    await pemSecret('other-ca', { 'ca.pem': otherTls.caCert, 'cert.pem': own['cert.pem'], 'key.pem': own['key.pem'] });
    const theirs = await runPod(client, ns, taskPod('other-ca', RUN, retried('docker --tlsverify --tlscacert /certs/ca.pem --tlscert /certs/cert.pem --tlskey /certs/key.pem version', 5), 'other-ca'));
    expect(theirs.pod.status.phase).toBe('Failed');
    const theirsLog = podLog(node.state, ns, 'other-ca', 'main');
    process.stderr.write(`[node] a client trusting another run's CA: ${tlsLines(theirsLog)}\n`);
    expect(theirsLog).toMatch(/x509: certificate signed by unknown authority/);
    // The client gave up, not the daemon: no TLS alert from the server, no answer.
    expect(theirsLog).not.toMatch(/remote error/);
    expect(theirsLog).not.toMatch(/^Server:/m);
    // Negative control: the same command, checking the daemon by the run's own CA.
    const ok = await runPod(client, ns, taskPod('own-ca', RUN, retried('docker --tlsverify --tlscacert /certs/ca.pem --tlscert /certs/cert.pem --tlskey /certs/key.pem version'), daemon.clientSecretName));
    expect(ok.pod.status.phase).toBe('Succeeded');
    expect(podLog(node.state, ns, 'own-ca', 'main')).toMatch(/^Server:/m);
  });
});
