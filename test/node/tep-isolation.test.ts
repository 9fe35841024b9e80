import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { serviceDnsNames } from '../../constructs';
import { mintRunTls } from '../../src/tls';
import { eventually, rawClient } from '../../platform/cluster';
import { podLog } from '../../platform/node';
import type { TestNode } from '../../platform/node-shared';
import { succeededCondition } from '../../src/pipelinerun';
import { readRun, taskPodsOf, waitRunDone } from '../../platform/runs';
import { createRun, ServedOperator } from '../operator/helpers';
import { TektonOnNode, tektonOnNode } from './tekton-fixture';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';

/**
 * On the real Tekton: while a run is going, a task of another run in the same namespace
 * cannot open a TCP connection to the run's daemon, the run's own task reaches it over mTLS, and
 * with the NetworkPolicy removed the other run's task connects (so the check is able to fail).
 */
jest.setTimeout(300_000);

const CLI = 'docker.io/library/docker:27';
let node: TestNode;
let fx: ServedOperator;

let setup: TektonOnNode;
beforeAll(async () => {
  setup = await tektonOnNode('node-iso');
  ({ node, fx } = setup);
}, NODE_SETUP_TIMEOUT_MS);

afterAll(() => setup?.stop(), 120_000);

/** A one-task inline pipeline whose step runs `script` in the docker CLI image. */
function oneStep(script: string, withDocker: boolean): Record<string, any> {
  const env = withDocker ? [
    { name: 'DOCKER_HOST', value: '$(params.docker-host)' }, { name: 'DOCKER_TLS_VERIFY', value: '1' },
    { name: 'DOCKER_CERT_PATH', value: '$(workspaces.docker-tls-certs.path)' },
  ] : [];
  const params = withDocker ? [{ name: 'docker-host' }] : [];
  const workspaces = withDocker ? [{ name: 'docker-tls-certs' }] : [];
  return {
    params, workspaces,
    tasks: [{
      name: 'main',
      params: params.map((p) => ({ name: p.name, value: `$(params.${p.name})` })),
      workspaces: workspaces.map((w) => ({ name: w.name, workspace: w.name })),
      taskSpec: { params, workspaces, steps: [{ name: 'main', image: CLI, env, script }] },
    }],
  };
}

/** Tries a TCP connection to ip:port `tries` times; prints CONNECTED or REFUSED and always exits 0. */
function tcpCheck(ip: string, port: number, tries: number): string {
  return `i=0; while [ $i -lt ${tries} ]; do i=$((i+1)); if timeout 3 nc ${ip} ${port} -e true; then echo CONNECTED; exit 0; fi; sleep 1; done; echo REFUSED`;
}

async function stepLog(ns: string, run: string): Promise<string> {
  const pod = (await taskPodsOf(ns, run))[0];
  return pod ? podLog(node.state, ns, pod.metadata.name, 'step-main') : '';
}

it('mTLS holds on the real Tekton: a task without the client certificate, or with another run\'s, is refused by the daemon; the run\'s own certificate works', async () => {
  const ns = fx.ns;
  const other = await mintRunTls({ hosts: serviceDnsNames('docker-other', ns) });
  await rawClient().create(`/api/v1/namespaces/${ns}/secrets`, {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'another-runs-certs' },
    stringData: { 'ca.pem': other.caCert, 'cert.pem': other.clientCert, 'key.pem': other.clientKey },
  });
  // (Tekton runs a script without a shebang under `set -e`: a failing client must not end it.)
  // Each client tries until the daemon answers at all (a new pod is admitted by kube-router after a
  // moment), then prints what the daemon said; the TLS client does not check the server here, so
  // only the daemon's own check of the client decides.
  const attempt = (cmd: string) => `i=0; while [ $i -lt 10 ]; do i=$((i+1)); out=$(${cmd} 2>&1) || true; case "$out" in *"remote error"*|*"Server:"*) break;; esac; sleep 1; done; echo "$out"`;
  const task = (name: string, script: string, certs?: string): Record<string, any> => {
    const workspaces = certs ? [{ name: 'certs' }] : [];
    return {
      name,
      params: [{ name: 'docker-host', value: '$(params.docker-host)' }],
      workspaces: certs ? [{ name: 'certs', workspace: certs }] : [],
      taskSpec: {
        params: [{ name: 'docker-host' }], workspaces,
        steps: [{ name: 'main', image: CLI, env: [{ name: 'DOCKER_HOST', value: '$(params.docker-host)' }], script }],
      },
    };
  };
  const run = await createRun(ns, {
    metadata: { generateName: 'mtls-', annotations: { [ANNOTATIONS.sidecars]: 'docker' } },
    spec: {
      pipelineSpec: {
        params: [{ name: 'docker-host' }],
        workspaces: [{ name: 'docker-tls-certs' }, { name: 'foreign' }],
        tasks: [
          // The run's CA to check the daemon, and no client certificate.
          task('no-cert', attempt('docker --tlsverify --tlscacert $(workspaces.certs.path)/ca.pem version'), 'docker-tls-certs'),
          task('foreign-cert', attempt('docker --tls --tlscacert $(workspaces.certs.path)/ca.pem --tlscert $(workspaces.certs.path)/cert.pem --tlskey $(workspaces.certs.path)/key.pem version'), 'foreign'),
          task('own-cert', attempt('docker --tls --tlscacert $(workspaces.certs.path)/ca.pem --tlscert $(workspaces.certs.path)/cert.pem --tlskey $(workspaces.certs.path)/key.pem version'), 'docker-tls-certs'),
        ],
      },
      workspaces: [{ name: 'foreign', secret: { secretName: 'another-runs-certs' } }],
    },
  });
  const done = await waitRunDone(ns, run.metadata.name, 180_000);
  const { status, reason, message } = succeededCondition(done);
  if (status !== 'True') throw new Error(`the run did not succeed: ${reason}: ${message}`);
  const pods = await taskPodsOf(ns, run.metadata.name);
  const log = (task: string) => podLog(node.state, ns, pods.find((p) => p.metadata.labels['tekton.dev/pipelineTask'] === task)!.metadata.name, 'step-main');
  expect(log('no-cert')).toContain('remote error: tls: certificate required');
  expect(log('foreign-cert')).toContain('remote error: tls: unknown certificate authority');
  // Negative control: the same client with the run's own certificate is served.
  expect(log('own-cert')).toMatch(/^Server:/m);
});

// Last: its negative control stops the operator.
it('on the real Tekton: another run\'s task cannot connect to the run\'s daemon, its own task can; without the policy the other connects', async () => {
  const ns = fx.ns;
  const client = rawClient();
  // Run A: its own task reaches the daemon over mTLS, then keeps the run (and its daemon) going.
  const a = await createRun(ns, {
    metadata: { generateName: 'owner-', annotations: { [ANNOTATIONS.sidecars]: 'docker' } },
    spec: { pipelineSpec: oneStep('docker version --format "own-server={{.Server.Version}}"; sleep 120', true) },
  });
  const runId = a.metadata.annotations[ANNOTATIONS.runId];
  await eventually('run A\'s own task to reach its daemon', async () => /own-server=\d/.test(await stepLog(ns, a.metadata.name)), 120_000, 500);
  const svc = (await client.get(`/api/v1/namespaces/${ns}/services`, { labelSelector: `${LABELS.runId}=${runId}` })).items[0];
  const ip: string = svc.spec.clusterIP;
  const port: number = svc.spec.ports[0].port;

  // Run B, same namespace, no sidecar: its task is refused at the TCP level.
  const b = await createRun(ns, { metadata: { generateName: 'other-' }, spec: { pipelineSpec: oneStep(tcpCheck(ip, port, 4), false) } });
  expect(succeededCondition(await waitRunDone(ns, b.metadata.name, 120_000)).status).toBe('True');
  expect(await stepLog(ns, b.metadata.name)).toMatch(/^REFUSED$/m);

  // Negative control: without the run's NetworkPolicy, the same task of another run connects. The
  // operator puts a deleted policy back (hand edits are repaired), so it is stopped first.
  const policiesPath = `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`;
  const policies = (await client.get(policiesPath, { labelSelector: `${LABELS.runId}=${runId}` })).items;
  expect(policies.length).toBeGreaterThan(0);
  await fx.op.stop();
  for (const p of policies) await client.delete(`${policiesPath}/${p.metadata.name}`);
  const c = await createRun(ns, { metadata: { generateName: 'other-open-' }, spec: { pipelineSpec: oneStep(tcpCheck(ip, port, 10), false) } });
  expect(succeededCondition(await waitRunDone(ns, c.metadata.name, 120_000)).status).toBe('True');
  expect(await stepLog(ns, c.metadata.name)).toMatch(/^CONNECTED$/m);

  // Run A was going all along (its daemon existed during both checks); stop it.
  expect(succeededCondition(await readRun(ns, a.metadata.name)).status).toBe('Unknown');
  await client.mergePatch(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${a.metadata.name}`, { spec: { status: 'Cancelled' } });
  await waitRunDone(ns, a.metadata.name, 60_000);
});
