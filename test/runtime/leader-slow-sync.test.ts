import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LABELS } from '../../constructs/api/spec';
import type { Controller } from '../../src/controller';
import { Informer } from '../../src/k8s/informer';
import { NamespacedInformers } from '../../src/k8s/namespaced-informers';
import { collectionPath } from '../../src/k8s/resources';
import { LeaderElector } from '../../src/leader';
import { createLogger } from '../../src/log';
import { Operator } from '../../src/operator';
import { createTestNamespace, eventually, rawClient, testKubeConfig } from '../../platform/cluster';
import { ensureCrd, testLogDir } from '../operator/helpers';
import { kubeConfigVia, TcpProxy } from '../../platform/tcp-proxy';

const LEASE_MS = 2000;
const RENEW_DEADLINE_MS = 1300;
const RETRY_MS = 300;
const timings = { leaseDurationMs: LEASE_MS, renewDeadlineMs: RENEW_DEADLINE_MS, retryPeriodMs: RETRY_MS };

interface Sample { readonly at: number; readonly holder?: string; readonly renewTime?: string }

/** Polls the Lease from the test's own (direct) client until stopped: who holds it, and when it was renewed. */
function watchLease(ns: string, name: string): { samples: Sample[]; stop: () => Promise<void> } {
  const samples: Sample[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const l = await rawClient().getOrUndefined(`${collectionPath('coordination.k8s.io/v1', 'Lease', ns)}/${name}`).catch(() => undefined);
      samples.push({ at: Date.now(), holder: l?.spec?.holderIdentity ?? undefined, renewTime: l?.spec?.renewTime });
      await sleep(100);
    }
  })();
  return { samples, stop: async () => { on = false; await loop; } };
}

/** The renewTimes seen, in order, without repeats. */
function renewals(samples: Sample[], from: number, to: number): number[] {
  const out: number[] = [];
  for (const s of samples) {
    if (s.at < from || s.at > to || !s.renewTime) continue;
    const t = Date.parse(s.renewTime);
    if (out[out.length - 1] !== t) out.push(t);
  }
  return out;
}

/** The controller's owned-object caches, informer by informer (one per served namespace). */
const ownedInformers = (c: Controller): Informer[] => [...c.caches.owned.values()].flatMap((o) => (o instanceof NamespacedInformers ? o.informers : [o as Informer]));

const maxGap = (ts: number[]) => ts.slice(1).reduce((m, t, i) => Math.max(m, t - ts[i]), 0);

function fileLogger(name: string) {
  const file = path.join(testLogDir(), `${name}.log`);
  return createLogger({ level: 'debug', write: (line) => fs.appendFileSync(file, line + '\n'), fields: { op: name } });
}

/** 4 MiB of Secrets with owned-object labels (the controller's Secret cache lists them); no run owns them, so a sweep deletes them. */
async function createBulk(ns: string): Promise<void> {
  const blob = Buffer.alloc(750 * 1024, 7).toString('base64');
  for (let i = 0; i < 4; i++) {
    await rawClient().create(collectionPath('v1', 'Secret', ns), {
      metadata: { name: `bulk-${i}`, labels: { [LABELS.managedBy]: 'pipeline-sidecars', [LABELS.runId]: 'slow-sync-bulk' } },
      data: { blob },
    });
  }
}

test('a leader keeps its Lease while its caches take several lease durations to sync (slow link), and a rival never takes over', async () => {
  await ensureCrd();
  const ns = await createTestNamespace('slowsync');
  const leaseName = `ps-${ns}`;
  // What makes the sync slow, for real: 4 MiB of Secrets the controller's cache lists (owned-object
  // labels), through a link that carries 400 KB/s per connection. A Lease request is ~1 KB each way.
  await createBulk(ns);
  const proxy = new TcpProxy(undefined, { bytesPerSecond: 400 * 1024 });
  const kc = kubeConfigVia(await proxy.start());
  const op = new Operator({
    kubeConfig: kc, namespace: ns, webhook: false, watchNamespaces: [ns], sweepIntervalMs: 3600_000,
    leaderElection: { leaseName, identity: 'leader', ...timings }, identity: 'leader', log: fileLogger(`slow-sync-${ns}`),
  });
  let rivalLedAt: number | undefined;
  const rival = new LeaderElector(testKubeConfig(), ns, { leaseName, identity: 'rival', ...timings }, {
    onStartedLeading: () => { rivalLedAt = Date.now(); },
    onStoppedLeading: () => undefined,
  });
  const lease = watchLease(ns, leaseName);
  try {
    await op.start();
    await eventually('the operator to take the Lease', async () => lease.samples.some((s) => s.holder === 'leader'), 10_000, 20);
    const tLead = Date.now();
    rival.start();
    await eventually('the controller\'s caches to sync', async () => {
      const c = op.controller?.caches;
      return c && [c.runs, c.sidecars, c.pipelines, c.namespaces, c.pods, ...c.owned.values()].every((i) => i.hasSynced);
    }, 60_000, 50);
    const tSync = Date.now();
    await eventually('the controller to reconcile', async () => op.controller?.synced, 5_000, 20);
    // And a lease beyond: the Lease seen renewed a whole lease duration after the sync, the rival
    // trying meanwhile (a leader that stopped renewing would have lost it to the rival by then).
    await eventually('a renewal a lease duration after the sync', async () => lease.samples.some((s) => s.holder === 'leader' && s.renewTime && Date.parse(s.renewTime) >= tSync + LEASE_MS), 10_000, 50);
    await lease.stop();

    const syncMs = tSync - tLead;
    const seen = renewals(lease.samples, tLead, tSync);
    const gap = maxGap(seen);
    process.stderr.write(`[leader-slow-sync] caches synced ${syncMs} ms after leading (lease ${LEASE_MS} ms); ${seen.length} renewals seen meanwhile, largest gap ${gap} ms; rival led: ${rivalLedAt !== undefined}\n`);
    // The setup really is slow: otherwise the rest proves nothing.
    expect(syncMs).toBeGreaterThan(2 * LEASE_MS);
    expect(rivalLedAt).toBeUndefined();
    const sinceLead = lease.samples.filter((s) => s.at >= tLead);
    expect(sinceLead.length).toBeGreaterThan(0);
    expect(sinceLead.filter((s) => s.holder !== 'leader')).toEqual([]);
    expect(seen.length).toBeGreaterThanOrEqual(Math.floor(syncMs / LEASE_MS));
    expect(gap).toBeLessThan(LEASE_MS);
    expect(op.isLeader).toBe(true);
  } finally {
    await lease.stop();
    await rival.stop({ release: false });
    await op.stop();
    await proxy.close();
  }
});

test('negative control: a leader whose Lease requests hang steps down within its renew deadline, before a rival can take over', async () => {
  const ns = await createTestNamespace('leasehang');
  const leaseName = `ps-${ns}`;
  const proxy = new TcpProxy();
  const kc = kubeConfigVia(await proxy.start());
  const events: Array<[string, number]> = [];
  const leader = new LeaderElector(kc, ns, { leaseName, identity: 'leader', ...timings }, {
    onStartedLeading: () => { events.push(['leader-started', Date.now()]); },
    onStoppedLeading: () => { events.push(['leader-stopped', Date.now()]); },
  });
  const rival = new LeaderElector(testKubeConfig(), ns, { leaseName, identity: 'rival', ...timings }, {
    onStartedLeading: () => { events.push(['rival-started', Date.now()]); },
    onStoppedLeading: () => undefined,
  });
  try {
    leader.start();
    await eventually('the leader to lead', async () => leader.isLeader, 10_000, 20);
    rival.start();
    // Several renewals with the rival campaigning (it tries once per retry period).
    const renewalsAtRival = leader.renewals;
    await eventually('three renewals with the rival campaigning', async () => leader.renewals >= renewalsAtRival + 3, 10_000, 20);
    expect(rival.isLeader).toBe(false);
    const renewedBefore = leader.renewals;
    // Every Lease connection of the leader goes silent, and new ones hang too (a black hole).
    const tFreeze = Date.now();
    proxy.freeze({ holdNew: true });
    await eventually('the rival to take over', async () => rival.isLeader, 10_000, 20);
    const stopped = events.find(([e]) => e === 'leader-stopped')?.[1];
    const rivalAt = events.find(([e]) => e === 'rival-started')![1];
    process.stderr.write(`[leader-hang] renewals before the freeze ${renewedBefore}; leader stepped down ${stopped === undefined ? 'never' : `${stopped - tFreeze} ms`} after the freeze, rival led ${rivalAt - tFreeze} ms after it\n`);
    expect(stopped).toBeDefined();
    // Never two leaders: the old one stepped down before the new one started.
    expect(stopped!).toBeLessThan(rivalAt);
    // The contract: it stops trusting the Lease before the Lease can have run out for others. Its last
    // renewal was at most one retry period before the freeze, so that is LEASE_MS - RETRY_MS after
    // the freeze; the renew deadline (RENEW_DEADLINE_MS) leaves the rest of it for the leader's own
    // timers on a loaded 2-core machine. The order check above is the same contract without a clock.
    expect(stopped! - tFreeze).toBeLessThan(LEASE_MS - RETRY_MS);
    expect(leader.isLeader).toBe(false);
    expect(renewedBefore).toBeGreaterThanOrEqual(2);
  } finally {
    await rival.stop();
    await leader.stop({ release: false });
    await proxy.close();
  }
});

test('a leader that loses its Lease while its caches sync stops at once and never starts reconciling', async () => {
  await ensureCrd();
  const ns = await createTestNamespace('lostsync');
  const leaseName = `ps-${ns}`;
  await createBulk(ns);
  const proxy = new TcpProxy(undefined, { bytesPerSecond: 400 * 1024 });
  const kc = kubeConfigVia(await proxy.start());
  const op = new Operator({
    kubeConfig: kc, namespace: ns, webhook: false, watchNamespaces: [ns], sweepIntervalMs: 3600_000,
    leaderElection: { leaseName, identity: 'leader', ...timings }, identity: 'leader', log: fileLogger(`lost-sync-${ns}`),
  });
  const secrets = async () => ((await rawClient().get(collectionPath('v1', 'Secret', ns), { labelSelector: `${LABELS.runId}=slow-sync-bulk` })).items ?? []).length;
  try {
    await op.start();
    const ctrl = await eventually('a controller to start syncing', async () => op.controller, 10_000, 10);
    // Its caches are listing (else a stop would find nothing under way, and the test would prove nothing).
    await eventually('the controller\'s caches to be listing', async () => ownedInformers(ctrl).every((i) => i.lists > 0), 10_000, 10);
    let everReconciling = false;
    const probe = setInterval(() => { everReconciling ||= ctrl.synced; }, 20);
    // Another replica takes the Lease (it believed it expired: a partition, a paused VM).
    // It keeps it (an hour-long lease), so this operator does not lead again within the test.
    const leasePath = `${collectionPath('coordination.k8s.io/v1', 'Lease', ns)}/${leaseName}`;
    const lease = await rawClient().get(leasePath);
    const now = new Date().toISOString().replace(/Z$/, '000Z');
    await rawClient().request('PUT', leasePath, { body: { ...lease, spec: { ...lease.spec, holderIdentity: 'thief', renewTime: now, acquireTime: now, leaseDurationSeconds: 3600 } } });
    const tSteal = Date.now();
    const syncingAtSteal = !ownedInformers(ctrl).every((i) => i.hasSynced);
    await eventually('the operator to step down', async () => !op.isLeader, 15_000, 10);
    const stepDownMs = Date.now() - tSteal;
    // What makes "never reconciled" meaningful: the slow lists of the stopped controller's caches
    // have landed (had it gone on, it would have started reconciling then), and its start has
    // returned (the operator's stop waits for it, and for the controller's own stop).
    await eventually('the stopped controller\'s caches to have their lists', async () => ownedInformers(ctrl).every((i) => i.hasSynced), 60_000, 50);
    await op.stop({ release: false });
    clearInterval(probe);
    const left = await secrets();
    process.stderr.write(`[leader-lost-sync] stepped down ${stepDownMs} ms after the Lease was taken, mid-sync; reconciling ever: ${everReconciling}; bulk Secrets left (a sweep would delete them): ${left}/4\n`);
    // The contract: the next renew attempt (one retry period) finds the Lease taken; the margin (3 s)
    // is what a loaded 2-core machine needs for that request and this test's polling.
    expect(stepDownMs).toBeLessThanOrEqual(RETRY_MS + 3000);
    expect(syncingAtSteal).toBe(true);
    expect(everReconciling).toBe(false);
    expect(ctrl.syncMs).toBeUndefined(); // set only by a start that went on past the sync
    expect(ctrl.reconciles).toBe(0);
    expect(left).toBe(4);
  } finally {
    await op.stop({ release: false });
    await proxy.close();
  }
});
