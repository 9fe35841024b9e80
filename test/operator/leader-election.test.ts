import * as fs from 'node:fs';
import * as net from 'node:net';
import { ANNOTATIONS } from '../../constructs/api/spec';
import { WEBHOOK_PATH } from '../../constructs/api/webhook-config';
import { collectionPath } from '../../src/k8s/resources';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { behaviourLabels, releaseTasks } from '../../platform/runs';
import { freePort } from '../../platform/control-plane';
import { OperatorProcess } from '../../platform/operator-process';
import { createRun, createSidecar, deleteWebhookConfig, ensureCrd, eventsFor, eventually, getRun, sleep } from './helpers';

let ns: string;
let proxy: net.Server;
const procs: OperatorProcess[] = [];
const LEASE_MS = 3000;

/**
 * What a Service does in a cluster: one address for the webhook of every replica. Connections go to
 * the first replica that accepts them, so the webhook keeps answering when a replica dies.
 */
function webhookFrontend(backends: number[]): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((client) => {
    client.on('error', () => client.destroy());
    const tryBackend = (i: number) => {
      if (i >= backends.length) { client.destroy(); return; }
      const up = net.connect(backends[i], '127.0.0.1');
      up.once('connect', () => { client.pipe(up).pipe(client); });
      up.once('error', () => { up.destroy(); tryBackend(i + 1); });
    };
    tryBackend(0);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port })));
}

/** One replica: its own webhook port, the frontend's URL registered, the shared Lease. */
function replica(identity: string, webhookPort: number, frontendPort: number): OperatorProcess {
  return new OperatorProcess({
    name: `${ns}-${identity}`, namespace: ns, identity, leaderElection: { leaseName: `ps-${ns}`, leaseDuration: `${LEASE_MS}ms` },
    webhookPort, webhookUrl: `https://127.0.0.1:${frontendPort}${WEBHOOK_PATH}`, sweepInterval: '2s', logLevel: 'debug',
  });
}

async function leaseHolder(): Promise<string | undefined> {
  const lease = await rawClient().getOrUndefined(`${collectionPath('coordination.k8s.io/v1', 'Lease', ns)}/ps-${ns}`);
  return lease?.spec?.holderIdentity ?? undefined;
}

const inline = { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] };
const controllerLines = (p: OperatorProcess) => fs.readFileSync(p.logFile, 'utf8').split('\n').filter((l) => l.includes('"part":"controller"'));

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('leader');
});

afterAll(async () => {
  for (const p of procs) await p.kill();
  proxy?.close();
  await deleteWebhookConfig(`ps-${ns}`);
});

test('two replicas: only the leader reconciles; SIGKILL of the leader hands over within the lease time', async () => {
  await createSidecar(ns, 'cache', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
  const [portA, portB] = [await freePort(), await freePort()];
  const fe = await webhookFrontend([portA, portB]);
  proxy = fe.server;
  const a = replica('replica-a', portA, fe.port);
  const b = replica('replica-b', portB, fe.port);
  procs.push(a, b);
  // Both start at once (process start is the slow part); whichever wins the Lease leads.
  await Promise.all([a.start(), b.start()]);
  const holder = await eventually('a leader', async () => leaseHolder(), 10_000);
  const [leader, follower] = holder === 'replica-a' ? [a, b] : [b, a];
  const [leaderId, followerId] = holder === 'replica-a' ? ['replica-a', 'replica-b'] : ['replica-b', 'replica-a'];

  // Run one's task holds until after the handover, so that the new leader is the one to clean up.
  const run1 = await createRun(ns, { metadata: { generateName: 'one-', labels: behaviourLabels({ hold: true }), annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { pipelineSpec: inline } });
  expect(run1.spec.status).toBe('PipelineRunPending');
  await eventually('run one to start', async () => (await getRun(ns, run1.metadata.name)).spec.status === undefined, 20_000);
  // The Event follows the start patch: wait for it rather than race it.
  const ready1 = await eventually('SidecarsReady on run one', async () => (await eventsFor(ns, run1.metadata.name)).find((e) => e.reason === 'SidecarsReady'), 5_000);
  expect(ready1?.reportingInstance).toBe(leaderId);
  expect(controllerLines(leader).length).toBeGreaterThan(0);
  expect(controllerLines(follower)).toEqual([]); // the follower never ran a controller

  // Crash the leader: its Lease is not released, so the follower must wait for it to expire.
  const tKill = Date.now();
  await leader.kill();
  await eventually('the follower to take the lease', async () => (await leaseHolder()) === followerId, 15_000, 50);
  const handoverMs = Date.now() - tKill;
  process.stderr.write(`[leader-election] handover after SIGKILL: ${handoverMs} ms (lease ${LEASE_MS} ms)\n`);
  // The contract: the lease time plus one retry period (lease/5). The margin on top (3 s) is what a
  // loaded 2-core machine needs for the follower's next renew attempt and this test's polling.
  expect(handoverMs).toBeLessThan(LEASE_MS + LEASE_MS / 5 + 3000);

  // The new leader reconciles; the webhook (now only the survivor behind the frontend) still gates.
  const run2 = await createRun(ns, { metadata: { generateName: 'two-', annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { pipelineSpec: inline } });
  expect(run2.spec.status).toBe('PipelineRunPending');
  await eventually('run two to start', async () => (await getRun(ns, run2.metadata.name)).spec.status === undefined, 20_000);
  const ready2 = await eventually('SidecarsReady on run two', async () => (await eventsFor(ns, run2.metadata.name)).find((e) => e.reason === 'SidecarsReady'), 5_000);
  expect(ready2?.reportingInstance).toBe(followerId);

  // Run one finishing is handled by the new leader too.
  await eventually('run one\'s task pod', async () => (await releaseTasks(ns, run1.metadata.name)) === 1, 20_000);
  await eventually('run one cleaned by the new leader', async () => (await eventsFor(ns, run1.metadata.name)).some((e) => e.reason === 'SidecarsDeleted' && e.reportingInstance === followerId), 10_000);

  // Graceful stop releases the Lease at once.
  await follower.stop();
  await sleep(100);
  expect(await leaseHolder()).toBeUndefined();
});
