import { createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { podLog } from '../../platform/node';
import { TestNode, testNode, releaseTestNode } from '../../platform/node-shared';
import { BUSYBOX, podOnNode, retried, runPod } from '../../platform/node-pods';
import { DeployedSidecar, deploySidecar, sidecarPod, taskPodLabels } from '../../platform/node-sidecars';
import type { PipelineSidecarSpec } from '../../constructs';
import { BUILDKIT_DEFAULTS } from '../../constructs/buildkit-daemon';
import { POSTGRES_DEFAULTS } from '../../constructs/postgres';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';

/**
 * Every kind we ship starts for real with its default options (its real default image name,
 * built locally), becomes Ready through its own probe, and answers a client from a task pod of its
 * run. This file covers Registry, Container, Postgres and BuildKitDaemon; DockerDaemon is in
 * docker-daemon.test.ts.
 */
jest.setTimeout(240_000);

let node: TestNode;
beforeAll(async () => { node = await testNode({ verbose: true }); }, NODE_SETUP_TIMEOUT_MS);
afterAll(async () => {
  await releaseTestNode(node);
  rawClient().close();
}, 60_000);

async function readySidecar(ns: string, run: string, spec: PipelineSidecarSpec): Promise<{ d: DeployedSidecar; ms: number }> {
  const t0 = Date.now();
  const d = await deploySidecar(rawClient(), node.state, ns, run, 'sc', spec);
  await eventually(`the ${spec.kind} pod Ready`, async () => {
    const p = await sidecarPod(rawClient(), ns, d);
    return p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
  }, 120_000, 100);
  return { d, ms: Date.now() - t0 };
}

/** A task pod of `run`, answered by the sidecar at `host` (the Service DNS name resolved by busybox's nslookup). */
function client(ns: string, name: string, run: string, script: string, image?: string): Record<string, any> {
  return podOnNode(node.state, name, script, { labels: taskPodLabels(run, ns), image });
}

/**
 * `cmd` (expected to fail) retried until its output says `refusal`, then exits 1 with that output; a
 * connection that never gets that far exits 3. Refusal, not a network failure, is what is checked.
 */
function refusedUntil(cmd: string, refusal: string): string {
  return `i=0; while [ $i -lt 15 ]; do i=$((i+1)); out=$(${cmd} 2>&1) && { echo "unexpectedly accepted: $out"; exit 0; }; ` +
    `echo "$out"; case "$out" in *'${refusal}'*) exit 1;; esac; sleep 1; done; exit 3`;
}

/** A task pod with the sidecar's client Secret mounted at /client, as a task binds it as a workspace. */
function clientWithSecret(ns: string, name: string, run: string, script: string, image: string, secretName: string): Record<string, any> {
  const pod = client(ns, name, run, script, image);
  pod.spec.volumes = [{ name: 'client', secret: { secretName } }];
  pod.spec.containers[0].volumeMounts = [{ name: 'client', mountPath: '/client', readOnly: true }];
  return pod;
}

describe('kinds on the real node', () => {
  it('Registry (registry:2, defaults) is Ready through its probe and serves the v2 API to a task pod', async () => {
    const ns = await createTestNamespace('node-registry');
    const { d, ms } = await readySidecar(ns, 'reg-1', { kind: 'Registry' });
    process.stderr.write(`[node] Registry objects applied -> Ready in ${ms} ms\n`);
    const svc = await rawClient().get(`/api/v1/namespaces/${ns}/services/${d.host.split('.')[0]}`);
    // busybox is static (no NSS): connect by the Service's ClusterIP, which kube-proxy routes.
    const { pod } = await runPod(rawClient(), ns, client(ns, 'v2', 'reg-1', retried(`wget -q -S -O- http://${svc.spec.clusterIP}:${d.port}/v2/ 2>&1`)));
    expect(pod.status.phase).toBe('Succeeded');
    expect(podLog(node.state, ns, 'v2', 'main')).toMatch(/Docker-Distribution-Api-Version: registry\/2\.0/i);
  });

  it('Container (a user template) is Ready through its own probe and answers a task pod', async () => {
    const ns = await createTestNamespace('node-container');
    const spec: PipelineSidecarSpec = {
      kind: 'Container',
      template: {
        containers: [{
          name: 'web', image: BUSYBOX, imagePullPolicy: 'Never',
          command: ['sh', '-c', 'mkdir -p /www && echo from-the-sidecar > /www/index.html && exec httpd -f -p 8080 -h /www'],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
        }],
      },
    } as PipelineSidecarSpec;
    const { d, ms } = await readySidecar(ns, 'web-1', spec);
    process.stderr.write(`[node] Container objects applied -> Ready in ${ms} ms\n`);
    const svc = await rawClient().get(`/api/v1/namespaces/${ns}/services/${d.host.split('.')[0]}`);
    const { pod } = await runPod(rawClient(), ns, client(ns, 'get', 'web-1', retried(`wget -q -O- http://${svc.spec.clusterIP}:${d.port}/`)));
    expect(pod.status.phase).toBe('Succeeded');
    expect(podLog(node.state, ns, 'get', 'main')).toContain('from-the-sidecar');
  });

  it('Postgres (postgres:15, defaults) is Ready through pg_isready and answers a query with the injected password', async () => {
    const ns = await createTestNamespace('node-postgres');
    const { d, ms } = await readySidecar(ns, 'pg-1', { kind: 'Postgres' });
    process.stderr.write(`[node] Postgres objects applied -> Ready in ${ms} ms\n`);
    const image = (await sidecarPod(rawClient(), ns, d)).spec.containers[0].image;
    expect(image).toBe(POSTGRES_DEFAULTS.image);
    // The uri from the client Secret: user, injected password, the Service DNS name, the database.
    const query = `psql "$(cat /client/uri)" -tAc "select 'answer=' || (6*7) || ' user=' || current_user || ' db=' || current_database()"`;
    const ok = await runPod(rawClient(), ns, clientWithSecret(ns, 'query', 'pg-1', retried(query), image, d.clientSecretName!));
    expect(ok.pod.status.phase).toBe('Succeeded');
    expect(podLog(node.state, ns, 'query', 'main')).toContain('answer=42 user=app db=app');
    // Negative control: the same client with a wrong password is refused (the server checks it).
    // Retried while the connection itself fails (kube-router admits a new pod a moment after it starts).
    const wrong = refusedUntil('PGPASSWORD=wrong psql -h "$(cat /client/host)" -U "$(cat /client/username)" -d "$(cat /client/database)" -tAc "select 1"', 'password authentication failed');
    const bad = await runPod(rawClient(), ns, clientWithSecret(ns, 'wrong', 'pg-1', wrong, image, d.clientSecretName!));
    expect(bad.pod.status.phase).toBe('Failed');
    expect(podLog(node.state, ns, 'wrong', 'main')).toMatch(/password authentication failed for user "app"/);
  });

  it('BuildKitDaemon (moby/buildkit:rootless, defaults) is Ready through buildctl and builds a Dockerfile for a task over mTLS', async () => {
    const ns = await createTestNamespace('node-buildkit');
    const { d, ms } = await readySidecar(ns, 'bk-1', { kind: 'BuildKitDaemon' });
    process.stderr.write(`[node] BuildKitDaemon objects applied -> Ready in ${ms} ms\n`);
    const pod = await sidecarPod(rawClient(), ns, d);
    expect(pod.spec.containers[0].image).toBe(BUILDKIT_DEFAULTS.image);
    // Rootless for real: buildkitd runs as uid 1000 without privileges.
    expect(pod.spec.containers[0].securityContext.runAsUser).toBe(1000);
    expect(pod.spec.containers[0].securityContext.privileged).toBeUndefined();
    const marker = `built-by-buildkit-${Date.now()}`;
    const tls = '--tlscacert /client/ca.pem --tlscert /client/cert.pem --tlskey /client/key.pem';
    const addr = `tcp://${d.host}:${d.port}`;
    const build = [
      'set -e; mkdir -p /tmp/ctx && cd /tmp/ctx',
      `echo ${marker} > marker.txt`,
      "printf 'FROM scratch\\nCOPY marker.txt /marker.txt\\n' > Dockerfile",
      // The file comes out of the build's result (exported to the task), not from the context.
      retried(`buildctl --addr ${addr} ${tls} build --frontend dockerfile.v0 --local context=. --local dockerfile=. --output type=local,dest=/tmp/out && rm marker.txt && echo "result: $(cat /tmp/out/marker.txt)"`),
    ].join('\n');
    const b = await runPod(rawClient(), ns, clientWithSecret(ns, 'build', 'bk-1', build, BUILDKIT_DEFAULTS.image, d.clientSecretName!), undefined, 180_000);
    const log = podLog(node.state, ns, 'build', 'main');
    expect(b.pod.status.phase).toBe('Succeeded');
    expect(log).toContain(`result: ${marker}`);
    // Negative control: without the client certificate the daemon refuses the same build. The
    // client trusts the daemon (it has the run's CA), so the refusal is the daemon's: a TLS alert
    // from the server, not a client-side x509 error.
    const noCert = [
      'set -e; mkdir -p /tmp/ctx && cd /tmp/ctx', `echo ${marker} > marker.txt`, "printf 'FROM scratch\\nCOPY marker.txt /marker.txt\\n' > Dockerfile",
      refusedUntil(`buildctl --addr ${addr} --tlscacert /client/ca.pem build --frontend dockerfile.v0 --local context=. --local dockerfile=. --output type=local,dest=/tmp/out`, 'certificate required'),
    ].join('\n');
    const refused = await runPod(rawClient(), ns, clientWithSecret(ns, 'nocert', 'bk-1', noCert, BUILDKIT_DEFAULTS.image, d.clientSecretName!), undefined, 120_000);
    expect(refused.pod.status.phase).toBe('Failed');
    const refusedLog = podLog(node.state, ns, 'nocert', 'main');
    expect(refusedLog).toMatch(/remote error: tls: certificate required/);
    expect(refusedLog).not.toMatch(/x509|unexpectedly accepted/);
  });
});
