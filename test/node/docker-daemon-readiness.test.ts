import { setTimeout as sleep } from 'node:timers/promises';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { TestNode, testNode, releaseTestNode } from '../../platform/node-shared';
import { deploySidecar, sidecarPod } from '../../platform/node-sidecars';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';

/**
 * Readiness is real: a daemon that binds its port and then dies (here: a storage driver that
 * cannot work on the pod's file system) must never be reported started or Ready, because a Ready
 * daemon is what releases the run. dockerd binds its listeners before it initialises the storage
 * driver (real-docker.md), so a tcpSocket probe passes in that window.
 */
jest.setTimeout(240_000);

let node: TestNode;
beforeAll(async () => { node = await testNode(); }, NODE_SETUP_TIMEOUT_MS);
afterAll(async () => {
  await releaseTestNode(node);
  rawClient().close();
}, 60_000);

it('a daemon that starts and then dies is never started nor Ready', async () => {
  const client = rawClient();
  const ns = await createTestNamespace('node-dind-dies');
  const d = await deploySidecar(client, node.state, ns, 'dies-1', 'docker', { kind: 'DockerDaemon', dockerDaemon: { tls: true, storageDriver: 'btrfs' } });
  const seen = { started: false, ready: false, restarts: 0, exited: false };
  // Watched through two whole lives of the daemon (it died, was restarted, died again, was restarted
  // again): the probes had each of them to pass in, not a window of a guessed length.
  const deadline = Date.now() + 150_000;
  while (Date.now() < deadline && seen.restarts < 2) {
    const p = await sidecarPod(client, ns, d);
    const cs = p?.status?.containerStatuses?.[0];
    if (cs?.started) seen.started = true;
    if (p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')) seen.ready = true;
    seen.restarts = Math.max(seen.restarts, cs?.restartCount ?? 0);
    if (cs?.lastState?.terminated || cs?.state?.terminated) seen.exited = true;
    await sleep(50);
  }
  // The daemon really did start and die, twice (else the check below would pass vacuously).
  expect(seen.exited).toBe(true);
  expect(seen.restarts).toBeGreaterThanOrEqual(2);
  expect({ started: seen.started, ready: seen.ready }).toEqual({ started: false, ready: false });
});
