/**
 * `npm run demo`: the whole point in one command. Starts the local control plane with the real
 * Tekton (controller, webhook), installs our CRD from dist/, starts the operator in-process (webhook
 * included), creates a TEP-0130-style PipelineRun that asks for a Docker daemon, and prints a
 * timeline of what happened to it.
 *
 * Where the machine can (root on Linux: realNodeSupport), the pods run on a real kubelet node
 * (platform/node.ts): the dind daemon really starts, task 1 builds an image through it over
 * mutual TLS, task 2 runs that image, and a plain pod of the namespace is refused by the run's
 * NetworkPolicy. Elsewhere (or with PIPELINE_SIDECARS_DEMO_SIMULATED=1) it says why and runs on
 * kwok's simulated node, where nothing executes in the pods.
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
import { applyAll } from '../platform/bootstrap';
import { podLog, realNodeSupport } from '../platform/node';
import { REAL_NODE_NAMESPACE_LABEL, waitPinned } from '../platform/node-pin';
import { DemoNode, isolationProbe, prepareNodeCache, runnablePipeline, startDemoNode } from '../platform/tep-on-node';
import { ControlPlane } from '../platform/control-plane';
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

/** Whether to run on the real node, and if not why: the machine decides, or the user forces the simulation. */
function chooseMode(): { real: true } | { real: false; reason: string } {
  if (process.env.PIPELINE_SIDECARS_DEMO_SIMULATED) return { real: false, reason: 'PIPELINE_SIDECARS_DEMO_SIMULATED is set' };
  const s = realNodeSupport();
  return s.ok ? { real: true } : { real: false, reason: s.reason };
}

function lastLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
}

async function main(): Promise<void> {
  const logFile = path.join(REPO, '.work', 'demo-operator.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.rmSync(logFile, { force: true });
  process.stdout.write('pipeline-sidecars demo: a per-run Docker daemon for a TEP-0130 pipeline\n\n');
  const mode = chooseMode();
  if (mode.real) {
    process.stdout.write('mode: REAL node: a kubelet with containerd joins the control plane; the daemon and the tasks run in real containers\n');
  } else {
    process.stdout.write(`mode: SIMULATED: ${mode.reason}, so the pods run on kwok's simulated node and nothing executes in them\n` +
      '      (as root on Linux the demo runs everything for real)\n');
  }
  const started = Date.now();
  if (mode.real) prepareNodeCache();
  const cp = await ControlPlane.start({ verbose: false });
  process.stdout.write(`local control plane up in ${cp.state.startedMs} ms (etcd, kube-apiserver ${(await cp.api('GET', '/version')).json.gitVersion}, controller-manager, scheduler, kwok, Tekton v1.15.1 controller + webhook)\n`);
  const kc = new KubeConfig();
  kc.loadFromFile(cp.state.kubeconfig);
  const client = new RawClient(kc);
  let op: Operator | undefined;
  let node: DemoNode | undefined;
  let nodeStarting: Promise<DemoNode> | undefined;
  let stopping = false;
  /** Stops everything this demo started, in order (operator, node, control plane); the node's teardown puts the host back. */
  const stopAll = async (keepLogs: boolean): Promise<void> => {
    await op?.stop().catch(() => undefined);
    // Interrupted while the node was starting: let it finish (or fail) so that its teardown can run.
    if (!node && nodeStarting) node = await Promise.race([nodeStarting.catch(() => undefined), sleep(60_000).then(() => undefined)]);
    if (node) {
      const errors = await node.stop();
      for (const e of errors) process.stderr.write(`[node] teardown: ${e}\n`);
    }
    client.close();
    await cp.stop({ keepLogs });
  };
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await stopAll(false);
    process.exit(code);
  };
  process.on('SIGINT', () => { process.stdout.write('\ninterrupted: stopping everything\n'); void shutdown(130); });
  process.on('SIGTERM', () => void shutdown(143));

  try {
    if (mode.real) {
      nodeStarting = startDemoNode(cp.state, client);
      node = await nodeStarting;
      const t = node.handle.state.timings;
      // The lock wait (another real node, e.g. a test run's) is not the node's start-up: report it apart.
      const waited = t.lock ?? 0;
      process.stdout.write(`real node ${node.handle.state.name} Ready in ${t.nodeReady - waited} ms, DNS and NetworkPolicy controller up in ${(t.ready ?? t.dns) - waited} ms` +
        `${waited > 1000 ? ` (after ${waited} ms waiting for another real node to finish)` : ''} ` +
        `(containerd, kubelet, kube-proxy, CoreDNS, kube-router, in network namespace ${node.handle.state.netns}); nothing is pulled\n`);
    }
    await applyAll(client, bundleCrds());
    const nsLabels: Record<string, string> = { [LABELS.allowPrivileged]: 'true' };
    if (node) nsLabels[REAL_NODE_NAMESPACE_LABEL] = node.handle.state.name;
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: nsLabels } });
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'pipeline-sidecars' } });
    // Tekton fails a TaskRun whose ServiceAccount does not exist yet (the controller-manager makes it a moment after the namespace).
    for (const t0 = Date.now(); !(await client.getOrUndefined(`/api/v1/namespaces/${NS}/serviceaccounts/default`));) {
      if (Date.now() - t0 > 30_000) throw new Error(`namespace ${NS} has no default ServiceAccount after 30 s`);
      await sleep(50);
    }
    if (node) await waitPinned(client, NS, node.handle.state);
    const examples = path.join(REPO, 'examples', 'docker-daemon');
    const sidecar = loadYaml(path.join(examples, 'docker-daemon.yaml'));
    const marker = `hello-from-the-built-image-${Math.random().toString(36).slice(2, 8)}`;
    const pipeline = loadYaml(path.join(examples, 'pipeline.yaml')).map((o) => (node && o.kind === 'Pipeline' ? runnablePipeline(o, marker) : o));
    await applyAll(client, [...sidecar, ...pipeline]);
    process.stdout.write(`installed: PipelineSidecar CRD from dist/, namespace ${NS} (allow-privileged${node ? `, its pods pinned to ${node.handle.state.name}` : ''}), ` +
      `PipelineSidecar docker-daemon, Pipeline ci-with-docker-build${node ? ' (the example, plus a step writing the Dockerfile git-clone would fetch; task 2 runs the built image)' : ''}\n`);

    op = new Operator({
      kubeConfig: kc, namespace: 'pipeline-sidecars',
      webhook: { port: 0, bindAddress: '127.0.0.1', url: `https://127.0.0.1:{port}${WEBHOOK_PATH}`, register: true, configName: 'pipeline-sidecars-demo' },
      log: createLogger({ write: (l) => fs.appendFileSync(logFile, l + '\n') }),
    });
    await op.start();
    process.stdout.write(`operator running in-process (webhook on 127.0.0.1; JSON logs in ${path.relative(REPO, logFile)})\n\ntimeline${node ? '' : ' (SIMULATED: kwok pods run nothing)'}:\n`);

    const runTemplate = loadYaml(path.join(examples, 'pipelinerun.yaml'))[0];
    const tl = new Timeline();
    const run = await client.create(`/apis/tekton.dev/v1/namespaces/${NS}/pipelineruns`, {
      ...runTemplate,
      metadata: { generateName: 'build-', namespace: NS, annotations: runTemplate.metadata.annotations },
    });
    const name = run.metadata.name;
    const runId = run.metadata.annotations?.[ANNOTATIONS.runId];
    tl.mark('run created', `PipelineRun ${NS}/${name}`);
    let dockerHost = '';
    if (run.spec.status === 'PipelineRunPending' && run.metadata.annotations?.[ANNOTATIONS.gated] === 'true') {
      dockerHost = run.spec.params?.find((p: any) => p.name === 'docker-host')?.value;
      const ws = run.spec.workspaces?.find((w: any) => w.name === 'docker-tls-certs')?.secret?.secretName;
      tl.mark('gated by webhook', `run-id ${runId}; docker-host=${dockerHost}; docker-tls-certs=Secret ${ws}`);
    } else {
      throw new Error('the webhook did not gate the run (is the operator webhook registered?)');
    }

    const sel = `${LABELS.runId}=${runId}`;
    const count = async () => {
      const [d, s, n, sec, pods] = await Promise.all([
        client.get(`/apis/apps/v1/namespaces/${NS}/deployments`, { labelSelector: sel }),
        client.get(`/api/v1/namespaces/${NS}/services`, { labelSelector: sel }),
        client.get(`/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies`, { labelSelector: sel }),
        client.get(`/api/v1/namespaces/${NS}/secrets`, { labelSelector: sel }),
        client.get(`/api/v1/namespaces/${NS}/pods`, { labelSelector: sel }),
      ]);
      return { d: d.items, svc: s.items, total: d.items.length + s.items.length + n.items.length + sec.items.length, s: s.items.length, n: n.items.length, sec: sec.items.length, pods: pods.items };
    };
    const deadline = Date.now() + (node ? 300_000 : 90_000);
    let snapshotShown = false;
    let failed = false;
    // The isolation probe (real node only): a plain pod of the namespace trying the daemon while it is up.
    const probeName = `isolation-probe-${runId}`;
    const probe = { started: false, target: '', result: '', log: '', duringRun: false };
    let testOutput = '';
    while (!tl.has('sidecars deleted')) {
      if (Date.now() > deadline) throw new Error('demo timed out; see the operator log');
      const cur = await client.get(objectPath(run));
      const objs = await count();
      if (objs.d.length && objs.s && objs.n && objs.sec) tl.mark('sidecar objects applied', `Deployment ${objs.d[0].metadata.name}, ${objs.s} Service, ${objs.n} NetworkPolicy, ${objs.sec} Secrets`);
      if (objs.d[0]?.status?.availableReplicas >= 1) {
        if (node) {
          const probeCmd = objs.d[0].spec.template.spec.containers[0].readinessProbe?.exec?.command?.join(' ') ?? '?';
          tl.mark('daemon answering', `dind pod ${objs.pods[0]?.metadata.name ?? ''} Ready on ${objs.pods[0]?.spec.nodeName ?? '?'}: exec probe \`${probeCmd}\` answered`);
        } else {
          tl.mark('sidecar Ready', 'dind pod Ready (SIMULATED by kwok), Deployment Available');
        }
      }
      if (node && tl.has('daemon answering') && !probe.started && objs.svc[0]) {
        probe.started = true;
        probe.target = `${objs.svc[0].spec.clusterIP}:${objs.svc[0].spec.ports[0].port}`;
        await client.create(`/api/v1/namespaces/${NS}/pods`, isolationProbe(node.handle, probeName, objs.svc[0].spec.clusterIP, objs.svc[0].spec.ports[0].port, 3));
      }
      if (node && probe.started && !probe.result) {
        const p = await client.getOrUndefined(`/api/v1/namespaces/${NS}/pods/${probeName}`);
        if (p?.status?.phase === 'Succeeded' || p?.status?.phase === 'Failed') {
          probe.log = podLog(node.handle.state, NS, probeName, 'main');
          probe.result = /^CONNECTED$/m.test(probe.log) ? 'CONNECTED' : /^REFUSED$/m.test(probe.log) ? 'REFUSED' : `no verdict (phase ${p.status.phase})`;
          // Only a refusal while the daemon is still there says anything about the policy.
          probe.duringRun = objs.pods.length > 0 && objs.n > 0;
          if (probe.result === 'CONNECTED') failed = true;
          tl.mark('isolation probe', `plain pod ${probeName} → daemon ${probe.target}: ${probe.result}${probe.duringRun ? ' (daemon up)' : ' (daemon already gone: inconclusive)'}`);
        }
      }
      if (tl.has('sidecar objects applied') && cur.spec.status === undefined) tl.mark('run unpended', 'operator removed spec.status=PipelineRunPending');
      if (tl.has('run unpended')) {
        if (cur.status?.startTime) tl.mark('Tekton started the run', `status.startTime ${cur.status.startTime}`);
        const trs = await client.get(`/apis/tekton.dev/v1/namespaces/${NS}/taskruns`, { labelSelector: `tekton.dev/pipelineRun=${name}` });
        for (const tr of trs.items.sort((a: any, b: any) => (a.metadata.creationTimestamp < b.metadata.creationTimestamp ? -1 : 1))) {
          const task = tr.metadata.labels['tekton.dev/pipelineTask'];
          const podName: string | undefined = tr.status?.podName;
          const c = tr.status?.conditions?.find((x: any) => x.type === 'Succeeded');
          if (node) {
            const pod = podName ? await client.getOrUndefined(`/api/v1/namespaces/${NS}/pods/${podName}`) : undefined;
            if (pod && ['Running', 'Succeeded', 'Failed'].includes(pod.status?.phase)) tl.mark(`task ${task} running`, `pod ${podName} on ${pod.spec.nodeName}`);
            if (c?.status === 'True' || c?.status === 'False') {
              const step = task === 'docker-build' ? 'step-build' : 'step-test';
              const log = podName ? podLog(node.handle.state, NS, podName, step) : '';
              if (task === 'docker-test') testOutput = log.split('\n').find((l) => l.includes(marker)) ?? '';
              const detail = task === 'docker-test' ? `output of the built image: "${testOutput || lastLine(log)}"` : `\`docker build\` through the run's daemon: ${log.split('\n').find((l) => /naming to|Successfully tagged/.test(l))?.trim() ?? lastLine(log)}`;
              tl.mark(`task ${task} done`, `${c.reason}; ${detail}`);
              if (c.status === 'False') failed = true;
            }
          } else {
            tl.mark(`TaskRun ${task}`, `${tr.metadata.name} (its pod runs on kwok's simulated node)`);
            if (c?.status === 'True' || c?.status === 'False') tl.mark(`TaskRun ${task} done`, `${c.reason} (SIMULATED)`);
          }
          if (!snapshotShown) {
            snapshotShown = true;
            process.stdout.write('\n');
            await showObjects(client, cp.state.kubeconfig, runId);
            process.stdout.write('\n');
          }
        }
        const done = cur.status?.conditions?.find((x: any) => x.type === 'Succeeded' && x.status !== 'Unknown');
        if (done) {
          tl.mark('run done', `Succeeded=${done.status} (${done.reason}: ${done.message})`);
          if (done.status !== 'True') failed = true;
        }
      }
      if (tl.has('run done') && objs.total === 0 && objs.pods.length === 0) {
        tl.mark('sidecars deleted', node ? 'Deployment, Service, NetworkPolicy, Secrets and the dind pod gone' : 'Deployment, Service, NetworkPolicy, Secrets gone');
      }
      await sleep(25);
    }
    const events = await client.get(`/api/v1/namespaces/${NS}/events`, { fieldSelector: `involvedObject.name=${name}` });
    const byTime = events.items.sort((a: any, b: any) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion));
    process.stdout.write(`\nEvents on the run, in order: ${byTime.map((e: any) => e.reason).join(' → ') || '(none)'}\n`);
    for (const e of byTime.filter((x: any) => x.type === 'Warning')) process.stdout.write(`  Warning ${e.reason} (${e.source?.component ?? e.reportingComponent}): ${e.message}\n`);
    if (node) {
      const buildOk = tl.has('task docker-build done') && !failed;
      process.stdout.write(`\nbuild then run across two Tasks, no registry: ${testOutput ? `task 2 printed "${testOutput}" from the image task 1 built` : 'task 2 did NOT print the built image\'s output'}\n`);
      process.stdout.write('\nisolation (the run\'s NetworkPolicy, enforced by kube-router on the real node):\n');
      process.stdout.write(`  the run's own task connected: docker-build's \`docker build\` used ${dockerHost} over mutual TLS${buildOk ? '' : ' (FAILED)'}\n`);
      process.stdout.write(`  a plain pod of namespace ${NS} (no run labels, as any other run's pod), TCP to the daemon's Service ${probe.target || '?'}: ` +
        `${probe.result || 'no result'}${probe.result && !probe.duringRun ? ' (the daemon was already gone: inconclusive)' : ''}\n`);
      for (const l of probe.log.split('\n').filter(Boolean)) process.stdout.write(`    | ${l}\n`);
      if (!testOutput || probe.result !== 'REFUSED' || !probe.duringRun) failed = true;
    }
    process.stdout.write('\n');
    await showObjects(client, cp.state.kubeconfig, runId);
    process.stdout.write(`\ndemo ${failed ? 'FAILED' : 'finished'} in ${((Date.now() - started) / 1000).toFixed(1)} s${node ? '' : ' (SIMULATED on kwok)'}; ` +
      `stopping the operator${node ? ', the real node' : ''} and the control plane\n`);
    await shutdown(failed ? 1 : 0);
  } catch (e) {
    // Interrupted: the signal handler is stopping everything (its API calls are what failed here); let it finish.
    if (stopping) return;
    process.stderr.write(`demo failed: ${(e as Error).message}\n(operator log: ${logFile}; control plane logs: ${cp.state.workDir}/logs)\n`);
    stopping = true;
    await stopAll(true);
    process.exit(1);
  }
}

void main();
