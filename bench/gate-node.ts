/**
 * Gate latency on the real node: N TEP runs (examples/docker-daemon, the per-run DockerDaemon,
 * one after another) on a fresh control plane with the real node and the operator as a child
 * process (its log in .work/bench/operator-gate-node.log); prints, per run and as p50/p99, how long
 * the gate took and what part of it the daemon's start-up was. A benchmark prints numbers; it
 * asserts nothing (docs/benchmarks.md).
 *
 *   npm run bench:gate-node -- [--runs 20] [--json FILE]
 *
 * Times are taken by this client (50 ms polling of the server), from just before the CREATE:
 *   created -> gated        the webhook's answer (the run comes back pending)
 *   created -> applied      the daemon's Deployment exists
 *   created -> daemon Ready its pod's Ready condition is True (the exec probe: `docker version` answered)
 *   created -> unpended     the operator removed spec.status=PipelineRunPending
 *   daemon Ready -> unpended the operator's own share after the daemon answered
 *   created -> Succeeded    the whole run (build task, test task running the built image)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { ANNOTATIONS, LABELS } from '../constructs/api/spec';
import { RawClient } from '../src/k8s/raw';
import { applyAll } from '../platform/bootstrap';
import { ControlPlane } from '../platform/control-plane';
import { realNodeSupport } from '../platform/node';
import { REAL_NODE_NAMESPACE_LABEL, waitPinned } from '../platform/node-pin';
import { OperatorProcess } from '../platform/operator-process';
import { operatorLogDir } from '../platform/work-dir';
import { DemoNode, prepareNodeCache, runnablePipeline, startDemoNode } from '../platform/tep-on-node';

const REPO = path.resolve(__dirname, '..');
const NS = 'gate';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

function loadYaml(file: string): Array<Record<string, any>> {
  return parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS()).filter(Boolean);
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

interface RunTimes { name: string; gated: number; applied: number; daemonReady: number; unpended: number; succeeded: number; ok: boolean }

async function oneRun(client: RawClient, template: Record<string, any>): Promise<RunTimes> {
  const t0 = Date.now();
  const run = await client.create(`/apis/tekton.dev/v1/namespaces/${NS}/pipelineruns`, {
    ...template, metadata: { generateName: 'gate-', namespace: NS, annotations: template.metadata.annotations },
  });
  const gated = Date.now() - t0;
  if (run.spec.status !== 'PipelineRunPending') throw new Error(`run ${run.metadata.name} was not gated by the webhook`);
  const sel = `${LABELS.runId}=${run.metadata.annotations[ANNOTATIONS.runId]}`;
  const t: Partial<RunTimes> = { name: run.metadata.name, gated };
  for (;;) {
    const now = () => Date.now() - t0;
    if (t.applied === undefined && (await client.get(`/apis/apps/v1/namespaces/${NS}/deployments`, { labelSelector: sel })).items.length) t.applied = now();
    if (t.daemonReady === undefined && t.applied !== undefined) {
      const pods = (await client.get(`/api/v1/namespaces/${NS}/pods`, { labelSelector: sel })).items;
      if (pods.some((p: any) => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'))) t.daemonReady = now();
    }
    const cur = await client.get(`/apis/tekton.dev/v1/namespaces/${NS}/pipelineruns/${run.metadata.name}`);
    if (t.unpended === undefined && cur.spec.status === undefined) {
      t.unpended = now();
      // Seen in the same poll as Ready (or after it): the daemon was Ready no later than the unpend.
      t.daemonReady ??= t.unpended;
    }
    const cond = (cur.status?.conditions ?? []).find((c: any) => c.type === 'Succeeded');
    if (cond && cond.status !== 'Unknown') return { ...(t as RunTimes), succeeded: now(), ok: cond.status === 'True' };
    if (now() > 300_000) throw new Error(`run ${run.metadata.name} not done after 300 s`);
    await sleep(50);
  }
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
    const results: RunTimes[] = [];
    process.stdout.write(`gate-node: ${runs} TEP runs, one after another, on the real node ${node.handle.state.name}\n`);
    process.stdout.write('  run                gated  applied  daemonReady  unpended  Ready->unpended  Succeeded  (ms from before CREATE)\n');
    for (let i = 0; i < runs; i++) {
      const r = await oneRun(client, template);
      results.push(r);
      process.stdout.write(`  ${r.name.padEnd(16)} ${String(r.gated).padStart(6)} ${String(r.applied).padStart(8)} ${String(r.daemonReady).padStart(12)} ` +
        `${String(r.unpended).padStart(9)} ${String(r.unpended - r.daemonReady).padStart(16)} ${String(r.succeeded).padStart(10)}${r.ok ? '' : '  FAILED'}\n`);
    }
    const col = (f: (r: RunTimes) => number) => results.map(f);
    const rows: Array<[string, number[]]> = [
      ['created -> gated', col((r) => r.gated)],
      ['created -> sidecars applied', col((r) => r.applied)],
      ['created -> daemon Ready', col((r) => r.daemonReady)],
      ['created -> unpended', col((r) => r.unpended)],
      ['daemon Ready -> unpended', col((r) => r.unpended - r.daemonReady)],
      ['applied -> daemon Ready', col((r) => r.daemonReady - r.applied)],
      ['created -> Succeeded', col((r) => r.succeeded)],
    ];
    process.stdout.write(`\nover ${results.length} runs (${results.filter((r) => r.ok).length} Succeeded):\n`);
    for (const [label, xs] of rows) process.stdout.write(`  ${label.padEnd(30)} p50 ${String(pct(xs, 50)).padStart(6)} ms   p99 ${String(pct(xs, 99)).padStart(6)} ms   max ${String(Math.max(...xs)).padStart(6)} ms\n`);
    if (json) fs.writeFileSync(json, JSON.stringify({ runs: results, summary: Object.fromEntries(rows.map(([l, xs]) => [l, { p50: pct(xs, 50), p99: pct(xs, 99), max: Math.max(...xs) }])) }, null, 2));
  } finally {
    await op?.stop().catch(() => undefined);
    if (node) for (const e of await node.stop()) process.stderr.write(`[node] teardown: ${e}\n`);
    client.close();
    await cp.stop({ keepLogs: false });
  }
}

main().catch((e) => { process.stderr.write(`gate-node failed: ${e instanceof Error ? e.stack : String(e)}\n`); process.exit(1); });
