import { clusterState, createTestNamespace, rawClient } from '../../platform/cluster';
import { ensureNodeBinaries, startNode } from '../../platform/node';
import { acquireNodeLock, NODE_SETUP_TIMEOUT_MS, releaseNodeLock } from '../../platform/node-lock';
import { NODE_STATE_ENV } from '../../platform/node-shared';
import { hostSnapshot, readSysctl, withoutControlPlanes } from '../../platform/node-host';
import { podOnNode, runPod } from '../../platform/node-pods';
import * as path from 'node:path';

/**
 * Teardown puts the host back: whatever the real node changes on the host (iptables rules,
 * sysctls, links, addresses, routes, network namespaces, mounts, cgroups, fixed paths) is the same
 * after stop as before start. The snapshot is also taken while the node runs, so that the
 * comparison is known to see the node's changes (it would pass vacuously otherwise).
 */
jest.setTimeout(300_000);

afterAll(() => rawClient().close());

it('stopping the node leaves the host exactly as it found it', async () => {
  const sbin = path.join(ensureNodeBinaries(false), 'sbin');
  // Held from the first snapshot to the last: no other node may come or go in between. A node
  // shared by the whole run (started by globalSetup) holds the lock already and stays up
  // throughout, so it is in both snapshots alike.
  const shared = !!process.env[NODE_STATE_ENV];
  const lock = shared ? undefined : await acquireNodeLock();
  try {
    await compareAround(sbin);
  } finally {
    if (lock) releaseNodeLock(lock);
  }
}, NODE_SETUP_TIMEOUT_MS);

async function compareAround(sbin: string): Promise<void> {
  // Control planes of other files may come and go meanwhile: their lines are left out (see
  // withoutControlPlanes); the node's are all kept.
  const snapshot = () => withoutControlPlanes(hostSnapshot(sbin));
  const before = snapshot();
  const overcommitBefore = readSysctl('vm/overcommit_memory');
  const node = await startNode(clusterState(), { lock: false });
  let during: Record<string, string>;
  try {
    const ns = await createTestNamespace('node-host');
    const { pod } = await runPod(rawClient(), ns, podOnNode(node.state, 'touch', 'echo ok'));
    expect(pod.status.phase).toBe('Succeeded');
    during = snapshot();
    // The kubelet really changed a global sysctl while it ran (restored at stop): a value it set
    // that differs from the host's own, so the restore check below is not vacuous for it.
    expect(readSysctl('vm/overcommit_memory')).toBe('1');
    expect(overcommitBefore).not.toBe('1');
  } finally {
    const errors = await node.stop();
    expect(errors).toEqual([]);
  }
  const after = snapshot();
  // Negative control: the snapshot does see a running node (its veth, mounts and cgroups).
  expect(during.links).toContain(node.state.hostVeth);
  expect(during.cgroups).toContain(node.state.cgroupRoot);
  expect(during.mounts).toContain(node.state.workDir);
  expect(during.netns).toContain(node.state.netns);
  expect(during).not.toEqual(before);
  for (const key of Object.keys(before)) expect({ key, value: after[key] }).toEqual({ key, value: before[key] });
  expect(readSysctl('vm/overcommit_memory')).toBe(overcommitBefore);
}
