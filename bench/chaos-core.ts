/**
 * The chaos run shared by `npm run chaos` (its own control plane, API server restart included) and
 * test/chaos/chaos.test.ts (the suite's control plane, no API server restart).
 *
 * M runs that ask for a DockerDaemon are created while the operator (a child process running
 * `pipeline-sidecars run`) is SIGKILLed K times at random moments and restarted, its informer
 * watches are cut (SIGUSR2, see bench/operator-process.ts) and, optionally, the API server is
 * restarted, and (with a control plane of its own) Tekton's controller too. The real Tekton starts
 * every unpended run; its one task holds on the kwok node until the driver releases it a moment
 * after Tekton started the run (80% succeed, 20% fail). Then it checks, from watches that recorded
 * every object uid and from the server:
 * - every run got its sidecars exactly once: one Deployment uid per run id, one uid per Secret (no
 *   re-minted TLS), left pending once, one SidecarsReady Event, never started before Ready;
 * - every finished run has 0 sidecar objects left;
 * - no run is pending past its startupTimeout, and none was cancelled;
 * - nothing is duplicated: exactly M runs exist.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ANNOTATIONS, API_VERSION, KIND, LABELS } from '../constructs/api/spec';
import { RawClient } from '../src/k8s/raw';
import { collectionPath } from '../src/k8s/resources';
import { OWNED_KINDS } from '../src/cleanup';
import { releaseTasks } from '../platform/runs';
import { TcpProxy } from '../platform/tcp-proxy';
import { operatorLogDir } from '../platform/work-dir';
import { benchRun, createRetrying, freePort, prepareNamespace, SIDECAR, sleep, Tracker } from './lib';
import { MeasuredOperator } from './measured-operator';
import { isDone } from '../src/pipelinerun';

/** The Lease the chaos run's operator elects its leader with (so an outage can take it away). */
const CHAOS_LEASE = 'pipeline-sidecars-chaos';

export interface ChaosOptions {
  readonly kubeconfig: string;
  /** Namespace to use; created unless it exists (labelled allow-privileged). */
  readonly namespace: string;
  readonly runs: number;
  readonly kills: number;
  /** Watch cuts through SIGUSR2 (default: as many as kills). */
  readonly watchCuts?: number;
  /** Runs created per second (default 10). */
  readonly rate?: number;
  /** The sidecar's startupTimeout (default 60s); a run pending longer is a violation. */
  readonly startupTimeout?: string;
  /** Restart the API server once at a random moment (only with a control plane of one's own). */
  readonly restartApiServer?: () => Promise<void>;
  /** SIGKILL and restart Tekton's controller this many times (only with a control plane of one's own). */
  readonly tektonKills?: number;
  readonly restartTektonController?: () => Promise<void>;
  /**
   * Take the operator's Lease away for this many seconds once (another holder, as after a crashed
   * leader): the webhook still gates runs, nobody reconciles them. Longer than startupTimeout, the
   * runs created meanwhile must still not be cancelled (the timeout counts from their first apply).
   */
  readonly outageSeconds?: number;
  /** Edit the PipelineSidecar's spec this many times (started runs' sidecars must not change). */
  readonly sidecarEdits?: number;
  /** Delete and re-create the PipelineSidecar this many times (started runs keep their sidecars). */
  readonly sidecarDeletions?: number;
  /**
   * Freeze the operator's open connections to the API server once, for this many seconds (a
   * half-open watch: both sockets stay open, nothing flows). The operator runs behind a local TCP
   * proxy with a 5 s watch idle timeout and must detect the stall and recover.
   */
  readonly freezeSeconds?: number;
  /** Give up waiting for runs to settle after this long (default 180 s). */
  readonly settleTimeoutMs?: number;
  readonly log?: (line: string) => void;
  /**
   * Where the operator's logs go (default operator-<ns>.log in .work/chaos, or in a jest test
   * file's folder of .work/test-logs).
   */
  readonly logFile?: string;
}

export interface ChaosResult {
  counts: Record<string, number>;
  violations: string[];
  /** What happened when (ms since start), for the report. */
  timeline: string[];
}

const parseSeconds = (d: string) => { const m = /^(\d+)(s|m)$/.exec(d); if (!m) throw new Error(`startupTimeout ${d}: use Ns or Nm`); return Number(m[1]) * (m[2] === 'm' ? 60 : 1); };

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  let t0 = Date.now();
  const timeline: string[] = [];
  const mark = (what: string) => { const line = `+${String(Date.now() - t0).padStart(6)} ms  ${what}`; timeline.push(line); log(line); };
  const rate = o.rate ?? 10;
  const startupTimeout = o.startupTimeout ?? '60s';
  const kc = new KubeConfig();
  kc.loadFromFile(o.kubeconfig);
  const client = new RawClient(kc);
  const ns = o.namespace;
  await prepareNamespace(client, ns, { startupTimeout });

  const tracker = new Tracker(kc, ns, 6);
  await tracker.start();
  const webhookConfig = `ps-chaos-${ns}`.slice(0, 63);
  // With a freeze, the operator reaches the API server through a proxy the driver can freeze.
  let proxy: TcpProxy | undefined;
  let operatorKubeconfig = o.kubeconfig;
  if (o.freezeSeconds) {
    proxy = new TcpProxy(new URL(kc.getCurrentCluster()!.server));
    const port = await proxy.start();
    operatorKubeconfig = path.join(path.dirname(o.kubeconfig), `kubeconfig-chaos-proxy-${port}`);
    fs.writeFileSync(operatorKubeconfig, fs.readFileSync(o.kubeconfig, 'utf8').replace(kc.getCurrentCluster()!.server, `https://127.0.0.1:${port}`));
  }
  const op = new MeasuredOperator({
    name: `operator-${ns}`, kubeconfig: operatorKubeconfig, namespace: ns, webhookPort: await freePort(), webhookConfig,
    logFile: o.logFile ?? path.join(operatorLogDir('chaos'), `operator-${ns}.log`),
    // With an outage, the operator elects itself through a Lease the driver can take away.
    leaderElection: o.outageSeconds ? { leaseName: CHAOS_LEASE, leaseDuration: '4s' } : undefined,
    watchIdleTimeout: o.freezeSeconds ? '5s' : undefined,
  });
  const counts: Record<string, number> = {
    runs: o.runs, kills: 0, restarts: 0, watchCuts: 0, apiServerRestarts: 0, tektonControllerRestarts: 0,
    outages: 0, runsCreatedDuringOutage: 0, sidecarEdits: 0, sidecarDeletions: 0, freezes: 0, frozenConnections: 0, stallsDetected: 0, createRetries: 0,
  };
  let inOutage = false;
  /** When the operator process last started (a freeze needs it leading, with its watches open). */
  let lastStart = Date.now();
  const sidecarPath = `${collectionPath(API_VERSION, KIND, ns)}/${SIDECAR}`;
  const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${CHAOS_LEASE}`;
  const violations: string[] = [];
  try {
    const s = await op.start();
    mark(`operator started (pid ${op.pid}, ${s.startMs} ms)`);
    t0 = Date.now(); // the creation schedule and the chaos moments count from here

    // Finisher: the held task of every run Tekton started is released 0.2..1.5 s later, exiting 0
    // (the run Succeeds) or 1 (it Fails).
    const finished = new Set<string>();
    let finishing = true;
    const finisher = (async () => {
      while (finishing) {
        for (const r of tracker.runs.values()) {
          if (r.tektonStarted === undefined || finished.has(r.name)) continue;
          finished.add(r.name);
          void (async () => {
            await sleep(200 + Math.random() * 1300);
            const exitCode = Math.random() < 0.8 ? 0 : 1;
            for (let i = 0; i < 400 && finishing; i++) {
              try { if (await releaseTasks(ns, r.name, { exitCode, client }) > 0) return; } catch { /* the API server may be restarting */ }
              await sleep(250);
            }
          })();
        }
        await sleep(100);
      }
    })();

    // Creator: fixed names, so a retried create after a lost response can never make a second run.
    const names = Array.from({ length: o.runs }, (_, i) => `chaos-${String(i).padStart(4, '0')}`);
    const creationMs = (o.runs / rate) * 1000;
    const creator = (async () => {
      const all: Promise<void>[] = [];
      for (let i = 0; i < names.length; i++) {
        const wait = t0 + (i * 1000) / rate - Date.now();
        if (wait > 0) await sleep(wait);
        const duringOutage = inOutage;
        all.push(createRetrying(client, collectionPath('tekton.dev/v1', 'PipelineRun', ns), benchRun(ns, names[i]), 180_000)
          .then((r) => { counts.createRetries += r.attempts - 1; if (duringOutage && inOutage) counts.runsCreatedDuringOutage++; }));
      }
      await Promise.all(all);
      mark(`all ${names.length} runs created`);
    })();

    // Chaos: kills, watch cuts and the API server restart at random moments of the creation window
    // (and a little after, while runs are still being provisioned and cleaned up).
    // Long enough that the kills (each followed by a restart of 1-3 s) do not bunch up.
    const window = Math.max(creationMs, o.kills * 3000) + 5000;
    const cuts = o.watchCuts ?? o.kills;
    type Act = { at: number; what: 'kill' | 'cut' | 'apiserver' | 'tekton' | 'outage' | 'edit' | 'delete' | 'freeze' };
    const acts: Act[] = [
      // The freeze needs a leading operator with open watches: well after any outage is over.
      ...(o.freezeSeconds ? [{ at: Math.max(creationMs * 0.6, o.outageSeconds ? creationMs * 0.2 + o.outageSeconds * 1000 + 8000 : 0), what: 'freeze' as const }] : []),
      ...(o.outageSeconds ? [{ at: creationMs * 0.2, what: 'outage' as const }] : []),
      ...Array.from({ length: o.sidecarEdits ?? 0 }, () => ({ at: Math.random() * window, what: 'edit' as const })),
      ...Array.from({ length: o.sidecarDeletions ?? 0 }, () => ({ at: Math.random() * window, what: 'delete' as const })),
      ...Array.from({ length: o.kills }, () => ({ at: Math.random() * window, what: 'kill' as const })),
      ...Array.from({ length: cuts }, () => ({ at: Math.random() * window, what: 'cut' as const })),
      ...(o.restartTektonController ? Array.from({ length: o.tektonKills ?? 1 }, () => ({ at: Math.random() * window, what: 'tekton' as const })) : []),
      ...(o.restartApiServer ? [{ at: window * (0.3 + Math.random() * 0.4), what: 'apiserver' as const }] : []),
    ].sort((a, b) => a.at - b.at);
    for (const a of acts) {
      const wait = t0 + a.at - Date.now();
      if (wait > 0) await sleep(wait);
      if (a.what === 'kill') {
        const pid = op.pid;
        await op.kill();
        counts.kills++;
        mark(`SIGKILL operator (pid ${pid})`);
        await sleep(Math.random() * 1000);
        const r = await op.start();
        lastStart = Date.now();
        counts.restarts++;
        mark(`operator restarted (pid ${op.pid}, ${r.startMs} ms)`);
      } else if (a.what === 'cut') {
        if (op.cutWatches()) { counts.watchCuts++; mark('cut the operator\'s watch connections (SIGUSR2)'); }
      } else if (a.what === 'outage') {
        // Another holder takes the Lease: our replica stops reconciling; its webhook still gates.
        const now = new Date().toISOString().replace(/\.(\d{3})\d*Z$/, '.$1000Z');
        await client.apply(leasePath, {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: CHAOS_LEASE, namespace: ns },
          spec: { holderIdentity: 'chaos-crashed-leader', leaseDurationSeconds: o.outageSeconds, acquireTime: now, renewTime: now },
        }, 'chaos', { force: true });
        inOutage = true;
        counts.outages++;
        mark(`operator outage: the Lease is held by another replica for ${o.outageSeconds} s (startupTimeout ${startupTimeout})`);
        void sleep(o.outageSeconds! * 1000).then(async () => {
          inOutage = false;
          await client.delete(leasePath).catch(() => undefined);
          mark('outage over: the Lease is free again');
        });
      } else if (a.what === 'freeze') {
        // Only a leading operator has watches open: wait until it has led for a few seconds.
        while (inOutage || Date.now() - lastStart < 8000) await sleep(200);
        const logBefore = fs.existsSync(op.logFile) ? fs.statSync(op.logFile).size : 0;
        counts.frozenConnections += proxy!.freeze();
        counts.freezes++;
        mark(`froze the operator's ${counts.frozenConnections} open connections to the API server for ${o.freezeSeconds} s (half-open: nothing flows, nothing closes)`);
        void sleep(o.freezeSeconds! * 1000).then(() => {
          const log = fs.readFileSync(op.logFile, 'utf8').slice(logBefore);
          counts.stallsDetected = (log.match(/"why":"stalled/g) ?? []).length;
          mark(`after the freeze the operator had given up ${counts.stallsDetected} stalled watches`);
          if (counts.stallsDetected === 0) violations.push('a frozen watch connection was not detected');
        });
      } else if (a.what === 'edit') {
        const mirrors = counts.sidecarEdits % 2 === 0 ? ['https://mirror-a.invalid'] : [];
        await client.mergePatch(sidecarPath, { spec: { dockerDaemon: { registryMirrors: mirrors } } }).catch((e) => mark(`edit failed: ${(e as Error).message}`));
        counts.sidecarEdits++;
        mark(`edited the PipelineSidecar (registryMirrors ${JSON.stringify(mirrors)})`);
      } else if (a.what === 'delete') {
        const cr = await client.get(sidecarPath);
        await client.delete(sidecarPath);
        counts.sidecarDeletions++;
        mark('deleted the PipelineSidecar');
        await sleep(300 + Math.random() * 1200);
        await client.create(collectionPath(API_VERSION, KIND, ns), { apiVersion: API_VERSION, kind: KIND, metadata: { name: SIDECAR, namespace: ns }, spec: cr.spec });
        mark('re-created the PipelineSidecar');
      } else if (a.what === 'tekton') {
        mark('SIGKILL Tekton\'s controller and start it again');
        await o.restartTektonController!();
        counts.tektonControllerRestarts++;
      } else {
        mark('restarting kube-apiserver (SIGKILL + start)');
        await o.restartApiServer!();
        counts.apiServerRestarts++;
        mark('kube-apiserver ready again');
      }
    }
    await creator;

    // Settle: every run done and every object of a done run gone (or the timeout).
    const settleBy = Date.now() + (o.settleTimeoutMs ?? 180_000);
    let settled = false;
    while (Date.now() < settleBy) {
      const runs = (await client.get(collectionPath('tekton.dev/v1', 'PipelineRun', ns)).catch(() => undefined))?.items;
      if (runs) {
        const allDone = runs.length >= names.length && runs.every(isDone);
        const left = allDone ? await ownedCount(client, ns) : -1;
        if (allDone && left === 0) { settled = true; break; }
      }
      await sleep(500);
    }
    finishing = false;
    await finisher;
    mark(settled ? 'every run done and its sidecars deleted' : 'gave up waiting for runs to settle');

    // --- Verify ----------------------------------------------------------------------------
    const runs: any[] = (await client.get(collectionPath('tekton.dev/v1', 'PipelineRun', ns))).items;
    const events: any[] = (await client.get(collectionPath('v1', 'Event', ns))).items;
    const now = Date.now();
    const timeoutMs = parseSeconds(startupTimeout) * 1000;
    const reasonCount = (name: string, reason: string) => events.filter((e) => e.involvedObject?.name === name && e.reason === reason).length;
    counts.runsInCluster = runs.length;
    if (runs.length !== names.length) violations.push(`${runs.length} runs exist, ${names.length} were created (duplicated or lost runs)`);
    for (const k of ['gotSidecarsOnce', 'notGated', 'neverStarted', 'cancelled', 'stuckPending', 'duplicateDeployments', 'remintedSecrets', 'halfPairsRestarted', 'startedTwice', 'startedBeforeReady', 'readyEventsNot1', 'startedSidecarsChanged', 'startedSidecarsRemovedEarly', 'finished', 'objectsLeft'] as const) counts[k] = 0;
    for (const run of runs) {
      const name = run.metadata.name;
      const ann = run.metadata.annotations ?? {};
      const runId = ann[ANNOTATIONS.runId];
      if (!runId || ann[ANNOTATIONS.gated] !== 'true') { counts.notGated++; violations.push(`${name}: not gated by the webhook`); continue; }
      const objs = tracker.objects(runId);
      const deps = objs.deploymentUids.size;
      // Left pending this many times (seen by the watch), at least once if Tekton started it.
      const tr = tracker.run(name);
      const startedN = tr.tektonStarted !== undefined || run.status?.startTime ? Math.max(1, tr.unpends) : tr.unpends;
      const ready = reasonCount(name, 'SidecarsReady');
      if (isDone(run)) counts.finished++;
      if (run.spec?.status === 'PipelineRunPending') {
        const age = now - Date.parse(run.metadata.creationTimestamp);
        if (age > timeoutMs + 5000) { counts.stuckPending++; violations.push(`${name}: still pending ${Math.round(age / 1000)} s after creation (startupTimeout ${startupTimeout})`); }
        else { counts.neverStarted++; violations.push(`${name}: still pending at the end`); }
      }
      if (ann['pipeline-sidecars.dev/cancelled'] || reasonCount(name, 'SidecarStartupFailed') > 0) { counts.cancelled++; violations.push(`${name}: cancelled by the operator (sidecars not ready in time)`); }
      if (deps > 1) { counts.duplicateDeployments++; violations.push(`${name}: ${deps} Deployments were created for run id ${runId}`); }
      for (const [secret, uids] of objs.secretUids) {
        if (uids.size <= 1) continue;
        // A half-written pair (a crash between the two creates) is deleted and minted again before any
        // Deployment uses it: allowed. A Secret replaced once the sidecar exists would rotate its TLS.
        const late = [...uids].slice(1).filter((u) => objs.deploymentSeen !== undefined && objs.uidSeenAt.get(u)! > objs.deploymentSeen);
        if (late.length) { counts.remintedSecrets++; violations.push(`${name}: Secret ${secret} was replaced after its sidecar Deployment existed (TLS rotated)`); }
        else counts.halfPairsRestarted++;
      }
      if (startedN > 1) { counts.startedTwice++; violations.push(`${name}: started ${startedN} times`); }
      // A started run's sidecar never changes (edits, upgrades) and is not removed before the run is done.
      // (Before it started, a run gets edits of its PipelineSidecar: that is allowed.)
      const startedAt = tr.unpended ?? tr.tektonStarted;
      const changedAfterStart = [...objs.deploymentGenerations].filter(([g, at]) => g > 1 && startedAt !== undefined && at > startedAt + 50);
      if (changedAfterStart.length) { counts.startedSidecarsChanged++; violations.push(`${name}: its sidecar Deployment changed after the run started (generation ${changedAfterStart.map(([g]) => g).join(', ')})`); }
      const doneAt = tracker.run(name).done;
      if (objs.deploymentDeleted !== undefined && doneAt !== undefined && objs.deploymentDeleted < doneAt - 50 && !ann['pipeline-sidecars.dev/cancelled']) {
        counts.startedSidecarsRemovedEarly++; violations.push(`${name}: its sidecar Deployment was deleted ${doneAt - objs.deploymentDeleted} ms before the run was done`);
      }
      if (objs.unpendedBeforeReady) { counts.startedBeforeReady++; violations.push(`${name}: started before its sidecar was Ready`); }
      if (startedN >= 1 && ready !== 1) { counts.readyEventsNot1++; violations.push(`${name}: ${ready} SidecarsReady Events`); }
      if (startedN === 0 && !isDone(run) && run.spec?.status !== 'PipelineRunPending') { counts.neverStarted++; violations.push(`${name}: unpended but never started`); }
      if (deps === 1 && startedN === 1 && ready === 1 && !objs.unpendedBeforeReady) counts.gotSidecarsOnce++;
      else if (deps === 0) violations.push(`${name}: never got a sidecar Deployment`);
    }
    counts.objectsLeft = await ownedCount(client, ns);
    if (counts.objectsLeft > 0) violations.push(`${counts.objectsLeft} sidecar objects left after every run finished`);
    if (counts.gotSidecarsOnce !== names.length) violations.push(`${counts.gotSidecarsOnce} of ${names.length} runs got their sidecars exactly once`);
    counts.operatorStarts = op.starts;
    return { counts, violations: [...new Set(violations)], timeline };
  } finally {
    await op.stop().catch(() => undefined);
    await proxy?.close();
    await tracker.stop();
    await client.delete(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${webhookConfig}`).catch(() => undefined);
    client.close();
  }
}


async function ownedCount(client: RawClient, ns: string): Promise<number> {
  let n = 0;
  for (const k of OWNED_KINDS) {
    const list = await client.get(collectionPath(k.apiVersion, k.kind, ns), { labelSelector: `${LABELS.managedBy}=pipeline-sidecars,${LABELS.runId}` });
    n += list.items?.length ?? 0;
  }
  return n;
}
