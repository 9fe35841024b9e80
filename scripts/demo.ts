/**
 * `npm run demo`: the whole point in one command. Starts the local control plane with the real
 * Tekton (controller, webhook), installs our CRD from dist/, starts the operator in-process (webhook
 * included), creates a TEP-0130-style PipelineRun that asks for a Docker daemon, and prints a
 * timeline of what happened to it. Pods run on kwok's simulated node: nothing executes in them.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { ANNOTATIONS, LABELS } from '../constructs/api/spec';
import { WEBHOOK_PATH } from '../constructs/api/webhook-config';
import { createLogger } from '../src/log';
import { Operator } from '../src/operator';
import { RawClient } from '../src/k8s/raw';
import { objectPath } from '../src/k8s/resources';
import { applyAll } from '../test/harness/bootstrap';
import { ControlPlane } from '../test/harness/control-plane';
import { setTimeout as sleep } from 'node:timers/promises';

const REPO = path.resolve(__dirname, '..');
const NS = 'ci';

function loadYaml(file: string): Array<Record<string, any>> {
  return parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS()).filter(Boolean);
}

/** CRDs from the committed install bundle: the demo installs what a user would. */
function bundleCrds(): Array<Record<string, any>> {
  const dist = path.join(REPO, 'dist');
  const files = fs.existsSync(dist) ? fs.readdirSync(dist).filter((f) => f.endsWith('.yaml')).sort() : [];
  const crds = files.flatMap((f) => loadYaml(path.join(dist, f))).filter((o) => o.kind === 'CustomResourceDefinition');
  if (crds.length === 0) throw new Error('dist/ has no CRDs: run `npm run synth` first');
  return crds;
}

class Timeline {
  private readonly t0 = Date.now();
  private readonly seen = new Set<string>();
  mark(step: string, detail = ''): void {
    if (this.seen.has(step)) return;
    this.seen.add(step);
    const ms = Date.now() - this.t0;
    process.stdout.write(`  ${new Date().toISOString().slice(11, 23)}  +${String(ms).padStart(5)} ms  ${step.padEnd(26)} ${detail}\n`);
  }
  has(step: string): boolean { return this.seen.has(step); }
}

function kubectlWorks(kubeconfig: string): boolean {
  try {
    execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'get', '--raw', '/version'], { stdio: 'pipe', timeout: 5000 });
    return true;
  } catch { return false; }
}

async function showObjects(client: RawClient, kubeconfig: string, runId: string): Promise<void> {
  const selector = `${LABELS.runId}=${runId}`;
  if (kubectlWorks(kubeconfig)) {
    const out = execFileSync('kubectl', ['--kubeconfig', kubeconfig, '-n', NS, 'get', 'deployments,pods,services,networkpolicies,secrets,serviceaccounts', '-l', selector, '-o', 'wide'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    process.stdout.write(`$ kubectl -n ${NS} get deployments,pods,services,networkpolicies,secrets,serviceaccounts -l ${selector}\n${out || 'No resources found.\n'}`);
    return;
  }
  process.stdout.write(`(kubectl not usable here; listing through the API) objects with ${selector}:\n`);
  for (const [p, kind] of [['/apis/apps/v1', 'deployments'], ['/api/v1', 'pods'], ['/api/v1', 'services'], ['/apis/networking.k8s.io/v1', 'networkpolicies'], ['/api/v1', 'secrets'], ['/api/v1', 'serviceaccounts']]) {
    const list = await client.get(`${p}/namespaces/${NS}/${kind}`, { labelSelector: selector });
    for (const o of list.items) process.stdout.write(`  ${kind}/${o.metadata.name}\n`);
  }
}

async function main(): Promise<void> {
  const logFile = path.join(REPO, '.work', 'demo-operator.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  process.stdout.write('pipeline-sidecars demo: a per-run Docker daemon for a TEP-0130 pipeline\n\n');
  const started = Date.now();
  const cp = await ControlPlane.start({ verbose: false });
  process.stdout.write(`local control plane up in ${cp.state.startedMs} ms (etcd, kube-apiserver ${(await cp.api('GET', '/version')).json.gitVersion}, controller-manager, scheduler, kwok, Tekton v1.15.1 controller + webhook)\n`);
  let op: Operator | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await op?.stop().catch(() => undefined);
    await cp.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => { process.stdout.write('\ninterrupted: stopping everything\n'); void shutdown(130); });
  process.on('SIGTERM', () => void shutdown(143));

  try {
    const kc = new KubeConfig();
    kc.loadFromFile(cp.state.kubeconfig);
    const client = new RawClient(kc);
    await applyAll(client, bundleCrds());
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { [LABELS.allowPrivileged]: 'true' } } });
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'pipeline-sidecars' } });
    const examples = path.join(REPO, 'examples', 'docker-daemon');
    const sidecar = loadYaml(path.join(examples, 'docker-daemon.yaml'));
    const pipeline = loadYaml(path.join(examples, 'pipeline.yaml'));
    await applyAll(client, [...sidecar, ...pipeline]);
    process.stdout.write(`installed: PipelineSidecar CRD from dist/, namespace ${NS} (allow-privileged), PipelineSidecar docker-daemon, Pipeline ci-with-docker-build\n`);

    op = new Operator({
      kubeConfig: kc, namespace: 'pipeline-sidecars',
      webhook: { port: 0, bindAddress: '127.0.0.1', url: `https://127.0.0.1:{port}${WEBHOOK_PATH}`, register: true, configName: 'pipeline-sidecars-demo' },
      log: createLogger({ write: (l) => fs.appendFileSync(logFile, l + '\n') }),
    });
    await op.start();
    process.stdout.write(`operator running in-process (webhook on 127.0.0.1; JSON logs in ${path.relative(REPO, logFile)})\n\ntimeline:\n`);

    const runTemplate = loadYaml(path.join(examples, 'pipelinerun.yaml'))[0];
    const tl = new Timeline();
    const run = await client.create(`/apis/tekton.dev/v1/namespaces/${NS}/pipelineruns`, {
      ...runTemplate,
      metadata: { generateName: 'build-', namespace: NS, annotations: runTemplate.metadata.annotations },
    });
    const name = run.metadata.name;
    const runId = run.metadata.annotations?.[ANNOTATIONS.runId];
    tl.mark('run created', `PipelineRun ${NS}/${name}`);
    if (run.spec.status === 'PipelineRunPending' && run.metadata.annotations?.[ANNOTATIONS.gated] === 'true') {
      const host = run.spec.params?.find((p: any) => p.name === 'docker-host')?.value;
      const ws = run.spec.workspaces?.find((w: any) => w.name === 'docker-tls-certs')?.secret?.secretName;
      tl.mark('gated by webhook', `run-id ${runId}; docker-host=${host}; docker-tls-certs=Secret ${ws}`);
    } else {
      throw new Error('the webhook did not gate the run (is the operator webhook registered?)');
    }

    const sel = `${LABELS.runId}=${runId}`;
    const count = async () => {
      const [d, s, n, sec] = await Promise.all([
        client.get(`/apis/apps/v1/namespaces/${NS}/deployments`, { labelSelector: sel }),
        client.get(`/api/v1/namespaces/${NS}/services`, { labelSelector: sel }),
        client.get(`/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`, { labelSelector: sel }),
        client.get(`/api/v1/namespaces/${NS}/secrets`, { labelSelector: sel }),
      ]);
      return { d: d.items, total: d.items.length + s.items.length + n.items.length + sec.items.length, s: s.items.length, n: n.items.length, sec: sec.items.length };
    };
    const deadline = Date.now() + 90_000;
    let snapshotShown = false;
    while (!tl.has('sidecars deleted')) {
      if (Date.now() > deadline) throw new Error('demo timed out; see the operator log');
      const cur = await client.get(objectPath(run));
      const objs = await count();
      if (objs.d.length && objs.s && objs.n && objs.sec) tl.mark('sidecar objects applied', `Deployment ${objs.d[0].metadata.name}, ${objs.s} Service, ${objs.n} NetworkPolicy, ${objs.sec} Secrets`);
      if (objs.d[0]?.status?.availableReplicas >= 1) tl.mark('sidecar Ready', 'dind pod Ready (kwok), Deployment Available');
      if (tl.has('sidecar objects applied') && cur.spec.status === undefined) tl.mark('run started', 'operator removed spec.status=PipelineRunPending');
      if (tl.has('run started')) {
        if (cur.status?.startTime) tl.mark('Tekton started the run', `status.startTime ${cur.status.startTime}`);
        const trs = await client.get(`/apis/tekton.dev/v1/namespaces/${NS}/taskruns`, { labelSelector: `tekton.dev/pipelineRun=${name}` });
        for (const tr of trs.items) {
          const task = tr.metadata.labels['tekton.dev/pipelineTask'];
          tl.mark(`TaskRun ${task}`, `${tr.metadata.name} (its pod runs on kwok's simulated node)`);
          const c = tr.status?.conditions?.find((x: any) => x.type === 'Succeeded');
          if (c?.status === 'True' || c?.status === 'False') tl.mark(`TaskRun ${task} done`, `${c.reason}`);
          if (!snapshotShown) {
            snapshotShown = true;
            process.stdout.write('\n');
            await showObjects(client, cp.state.kubeconfig, runId);
            process.stdout.write('\n');
          }
        }
        const done = cur.status?.conditions?.find((x: any) => x.type === 'Succeeded' && x.status !== 'Unknown');
        if (done) tl.mark('run done', `Succeeded=${done.status} (${done.reason}: ${done.message})`);
      }
      if (tl.has('run done') && objs.total === 0) tl.mark('sidecars deleted', 'Deployment, Service, NetworkPolicy, Secrets gone');
      await sleep(25);
    }
    const events = await client.get(`/api/v1/namespaces/${NS}/events`, { fieldSelector: `involvedObject.name=${name}` });
    const byTime = events.items.sort((a: any, b: any) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
    process.stdout.write(`\nEvents on the run, in order: ${byTime.map((e: any) => e.reason).join(' → ') || '(none)'}\n`);
    for (const e of byTime.filter((x: any) => x.type === 'Warning')) process.stdout.write(`  Warning ${e.reason} (${e.source?.component ?? e.reportingComponent}): ${e.message}\n`);
    process.stdout.write('\n');
    await showObjects(client, cp.state.kubeconfig, runId);
    process.stdout.write(`\ndemo finished in ${((Date.now() - started) / 1000).toFixed(1)} s; stopping the control plane\n`);
    client.close();
    await shutdown(0);
  } catch (e) {
    process.stderr.write(`demo failed: ${(e as Error).message}\n(operator log: ${logFile}; control plane logs: ${cp.state.workDir}/logs)\n`);
    await op?.stop().catch(() => undefined);
    await cp.stop({ keepLogs: true });
    process.exit(1);
  }
}

void main();
