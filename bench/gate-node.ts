/**
 * Gate latency on the real node: N TEP runs (examples/docker-daemon, the per-run DockerDaemon,
 * one after another) on a fresh control plane with the real node and the operator as a child
 * process (its log in .work/bench/operator-gate-node.log); prints, per run and as p50/p99, created
 * → unpended and created → first task pod running, each broken into the consecutive parts of the
 * run's path (bench/gate-timeline.ts) with who owns each. A benchmark prints numbers; it asserts
 * nothing (docs/benchmarks.md).
 *
 *   npm run bench:gate-node -- [--runs 20] [--json FILE]
 *
 * Moments are stamped by this process when a watch event arrives (pods, Deployments and
 * PipelineRuns in the bench namespace), from just before the CREATE; dockerd's own start comes from
 * its log lines as containerd timestamped them (the node shares this machine's clock).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { ANNOTATIONS, LABELS } from '../constructs/api/spec';
import { RawClient } from '../src/k8s/raw';
import { startWatch, WatchHandle } from '../src/k8s/watch';
import { applyAll } from '../platform/bootstrap';
import { ControlPlane } from '../platform/control-plane';
import { NodeState, podLogTimed, realNodeSupport } from '../platform/node';
import { REAL_NODE_NAMESPACE_LABEL, waitPinned } from '../platform/node-pin';
import { OperatorProcess } from '../platform/operator-process';
import { operatorLogDir } from '../platform/work-dir';
import { DemoNode, prepareNodeCache, runnablePipeline, startDemoNode } from '../platform/tep-on-node';
import { GATE_PARTS, GATE_TOTALS, GateMoments, gateParts } from './gate-timeline';
import { dist } from './lib';

const REPO = path.resolve(__dirname, '..');
const NS = 'gate';
const PIPELINE_RUN_LABEL = 'tekton.dev/pipelineRun';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

function loadYaml(file: string): Array<Record<string, any>> {
  return parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS()).filter(Boolean);
}

const isTrue = (o: any, type: string) => (o?.status?.conditions ?? []).some((c: any) => c.type === type && c.status === 'True');

/**
 * First-seen epoch times of each moment, keyed by what the objects carry: the daemon's objects by
 * run id, the run and its task pods by run name. Stamped whichever run the bench waits on, so an
 * event that arrives before the CREATE's answer is not lost.
 */
class Stamps {
  private readonly byKey = new Map<string, Record<string, number>>();
  readonly daemonPod = new Map<string, string>();

  private stamp(key: string, moment: keyof GateMoments, at = Date.now()): void {
    const m = this.byKey.get(key) ?? {};
    m[moment] ??= at;
    this.byKey.set(key, m);
  }

  get(key: string): Record<string, number> { return this.byKey.get(key) ?? {}; }

  onDeployment(d: any): void {
    const id = d.metadata?.labels?.[LABELS.runId];
    if (!id) return;
    this.stamp(id, 'deployment');
    if (isTrue(d, 'Available')) this.stamp(id, 'available');
  }

  onPod(p: any): void {
    const labels = p.metadata?.labels ?? {};
    const run = labels[PIPELINE_RUN_LABEL];
    if (run) {
      // A task pod (Tekton copies the run's labels to it, our run id included).
      this.stamp(run, 'taskPodCreated');
      if (p.status?.phase === 'Running' || p.status?.phase === 'Succeeded') this.stamp(run, 'taskPodRunning');
      return;
    }
    const id = labels[LABELS.runId];
    if (!id) return;
    this.daemonPod.set(id, p.metadata.name);
    this.stamp(id, 'podCreated');
    if (p.spec?.nodeName) this.stamp(id, 'scheduled');
    if ((p.status?.containerStatuses ?? []).some((c: any) => c.name === 'dockerd' && c.state?.running)) this.stamp(id, 'running');
    if (isTrue(p, 'Ready')) this.stamp(id, 'podReady');
  }

  onRun(r: any): void {
    const name = r.metadata?.name;
    if (!name) return;
    if (r.spec?.status === undefined) this.stamp(name, 'unpended');
    const c = (r.status?.conditions ?? []).find((x: any) => x.type === 'Succeeded');
    if (c && c.status !== 'Unknown') this.stamp(name, 'done');
  }
}

async function watchAll(kc: KubeConfig, stamps: Stamps): Promise<WatchHandle[]> {
  const on = (f: (o: any) => void) => (e: { type: string; object: any }) => { if (e.type === 'ADDED' || e.type === 'MODIFIED') f(e.object); };
  return Promise.all([
    startWatch(kc, `/apis/apps/v1/namespaces/${NS}/deployments`, {}, on((o) => stamps.onDeployment(o))),
    startWatch(kc, `/api/v1/namespaces/${NS}/pods`, {}, on((o) => stamps.onPod(o))),
    startWatch(kc, `/apis/tekton.dev/v1/namespaces/${NS}/pipelineruns`, {}, on((o) => stamps.onRun(o))),
  ]);
}

interface RunResult { readonly name: string; readonly moments: GateMoments; readonly ok: boolean }

let logShown = false;

/** dockerd's first log line and its "API listen on" the unix socket, read while its pod still exists. */
async function daemonLogMoments(state: NodeState, pod: string, timeoutMs: number): Promise<{ processStarted?: number; daemonServing?: number }> {
  const t0 = Date.now();
  for (;;) {
    const lines = podLogTimed(state, NS, pod, 'dockerd');
    const serving = lines.find((l) => /API listen on \/var\/run\/docker\.sock/.test(l.text));
    if (serving || Date.now() - t0 > timeoutMs) {
      // Once, what dockerd did between its first line and serving (where its own start goes).
      if (!logShown && lines.length) {
        logShown = true;
        process.stderr.write(`[gate-node] dockerd's log in ${pod}, ms from its first line:\n${lines.map((l) => `  ${String(l.at - lines[0].at).padStart(6)}  ${l.text.slice(0, 160)}`).join('\n')}\n`);
      }
      return { processStarted: lines[0]?.at, daemonServing: serving?.at };
    }
    await sleep(100);
  }
}

async function oneRun(client: RawClient, template: Record<string, any>, stamps: Stamps, state: NodeState): Promise<RunResult> {
  const t0 = Date.now();
  const run = await client.create(`/apis/tekton.dev/v1/namespaces/${NS}/pipelineruns`, {
    ...template, metadata: { generateName: 'gate-', namespace: NS, annotations: template.metadata.annotations },
  });
  const gated = Date.now() - t0;
  if (run.spec.status !== 'PipelineRunPending') throw new Error(`run ${run.metadata.name} was not gated by the webhook`);
  const name: string = run.metadata.name;
  const runId: string = run.metadata.annotations[ANNOTATIONS.runId];
  let logMoments: { processStarted?: number; daemonServing?: number } | undefined;
  for (;;) {
    const r = stamps.get(name);
    // The daemon pod is deleted with the run, and its log with it: read the log once the run is released.
    const pod = stamps.daemonPod.get(runId);
    if (!logMoments && r.unpended !== undefined && pod) logMoments = await daemonLogMoments(state, pod, 10_000);
    if (r.done !== undefined) {
      const rel = (at: number | undefined) => (at === undefined ? undefined : at - t0);
      const d = stamps.get(runId);
      const moments: GateMoments = {
        gated,
        deployment: rel(d.deployment), podCreated: rel(d.podCreated), scheduled: rel(d.scheduled),
        processStarted: rel(logMoments?.processStarted), daemonServing: rel(logMoments?.daemonServing),
        running: rel(d.running), podReady: rel(d.podReady), available: rel(d.available),
        unpended: rel(r.unpended), taskPodCreated: rel(r.taskPodCreated), taskPodRunning: rel(r.taskPodRunning), done: rel(r.done),
      };
      const cur = await client.get(`/apis/tekton.dev/v1/namespaces/${NS}/pipelineruns/${name}`);
      const ok = (cur.status?.conditions ?? []).some((c: any) => c.type === 'Succeeded' && c.status === 'True');
      return { name, moments, ok };
    }
    if (Date.now() - t0 > 300_000) throw new Error(`run ${name} not done after 300 s`);
    await sleep(50);
  }
}

const fmt = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : String(Math.round(x)));

type SummaryRow = { p50: number; p99: number; max: number; owner?: string };

/**
 * The JSON summary: a row per total (`created -> unpended`, `created -> first task pod running`),
 * each followed by its parts, then dockerd's own start on its own row.
 */
function summarize(results: readonly RunResult[]): Record<string, SummaryRow> {
  const row = (xs: number[], owner?: string): SummaryRow => {
    const d = dist(xs);
    return { p50: d?.p50 ?? NaN, p99: d?.p99 ?? NaN, max: d?.max ?? NaN, ...(owner ? { owner } : {}) };
  };
  const parts = results.map((r) => gateParts(r.moments));
  const out: Record<string, SummaryRow> = {};
  const unpendIdx = GATE_PARTS.findIndex((p) => p.to === 'unpended');
  for (const t of GATE_TOTALS) {
    out[t.row] = row(results.map((r) => r.moments[t.to] ?? NaN));
    const mine = t.to === 'unpended' ? GATE_PARTS.slice(0, unpendIdx + 1) : t.to === 'taskPodRunning' ? GATE_PARTS.slice(unpendIdx + 1) : [];
    for (const p of mine) out[`  ${t.to === 'unpended' ? 'unpended' : 'first task pod'}: ${p.part}`] = row(parts.map((x) => x[p.part]), p.owner);
  }
  out["dockerd's own start (first log line -> API on the socket)"] = row(parts.map((x) => x["dockerd's own start"]), 'dockerd');
  out['scheduled -> kubelet reports dockerd running'] = row(results.map((r) => (r.moments.running ?? NaN) - (r.moments.scheduled ?? NaN)), 'kubelet');
  return out;
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '20'));
  const json = arg('json', '');
  const s = realNodeSupport();
  if (!s.ok) { process.stdout.write(`gate-node: cannot run the real node here (${s.reason}); nothing measured\n`); return; }
  prepareNodeCache();
  const cp = await ControlPlane.start({ verbose: false });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.state.kubeconfig);
  const client = new RawClient(kc);
  let node: DemoNode | undefined;
  let op: OperatorProcess | undefined;
  let watches: WatchHandle[] = [];
  try {
    node = await startDemoNode(cp.state, client);
    const dist = path.join(REPO, 'dist');
    await applyAll(client, fs.readdirSync(dist).filter((f) => f.endsWith('.yaml')).flatMap((f) => loadYaml(path.join(dist, f))).filter((o) => o.kind === 'CustomResourceDefinition'));
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { [LABELS.allowPrivileged]: 'true', [REAL_NODE_NAMESPACE_LABEL]: node.handle.state.name } } });
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'pipeline-sidecars' } });
    for (const t0 = Date.now(); !(await client.getOrUndefined(`/api/v1/namespaces/${NS}/serviceaccounts/default`));) {
      if (Date.now() - t0 > 30_000) throw new Error(`namespace ${NS} has no default ServiceAccount after 30 s`);
      await sleep(50);
    }
    await waitPinned(client, NS, node.handle.state);
    const examples = path.join(REPO, 'examples', 'docker-daemon');
    const pipeline = loadYaml(path.join(examples, 'pipeline.yaml')).map((o) => (o.kind === 'Pipeline' ? runnablePipeline(o, 'gate-bench') : o));
    await applyAll(client, [...loadYaml(path.join(examples, 'docker-daemon.yaml')), ...pipeline].map((o) => ({ ...o, metadata: { ...o.metadata, namespace: NS } })));
    op = new OperatorProcess({
      name: 'operator-gate-node', kubeconfig: cp.state.kubeconfig, namespace: 'pipeline-sidecars', clusterWide: true,
      webhookConfig: 'pipeline-sidecars-gate-bench', logFile: path.join(operatorLogDir('bench'), 'operator-gate-node.log'),
    });
    await op.start();
    // The API server uses a new webhook configuration only after its informer saw it.
    await sleep(2000);
    const template = loadYaml(path.join(examples, 'pipelinerun.yaml'))[0];
    const stamps = new Stamps();
    watches = await watchAll(kc, stamps);
    const results: RunResult[] = [];
    const cols = ['gated', 'deployment', 'podCreated', 'scheduled', 'processStarted', 'daemonServing', 'podReady', 'available', 'unpended', 'taskPodRunning', 'done'] as const;
    process.stdout.write(`gate-node: ${runs} TEP runs, one after another, on the real node ${node.handle.state.name}\n`);
    process.stdout.write(`  ms from just before the CREATE:\n  ${'run'.padEnd(16)} ${cols.map((c) => c.padStart(15)).join('')}\n`);
    for (let i = 0; i < runs; i++) {
      const r = await oneRun(client, template, stamps, node.handle.state);
      results.push(r);
      process.stdout.write(`  ${r.name.padEnd(16)} ${cols.map((c) => fmt(r.moments[c]).padStart(15)).join('')}${r.ok ? '' : '  FAILED'}\n`);
    }
    const summary = summarize(results);
    process.stdout.write(`\nover ${results.length} runs (${results.filter((r) => r.ok).length} Succeeded), p50 / p99 / max in ms:\n`);
    for (const [row, v] of Object.entries(summary)) {
      process.stdout.write(`  ${row.padEnd(46)} ${fmt(v.p50).padStart(7)} ${fmt(v.p99).padStart(7)} ${fmt(v.max).padStart(7)}${v.owner ? `   ${v.owner}` : ''}\n`);
    }
    if (json) {
      fs.writeFileSync(json, JSON.stringify({
        date: new Date().toISOString(), cores: require('node:os').cpus().length, runs: results.map((r) => ({ ...r, parts: gateParts(r.moments) })), summary,
      }, null, 2));
    }
  } finally {
    for (const w of watches) w.abort();
    await op?.stop().catch(() => undefined);
    if (node) for (const e of await node.stop()) process.stderr.write(`[node] teardown: ${e}\n`);
    client.close();
    await cp.stop({ keepLogs: false });
  }
}

main().catch((e) => { process.stderr.write(`gate-node failed: ${e instanceof Error ? e.stack : String(e)}\n`); process.exit(1); });
