import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as https from 'node:https';
import { parseAllDocuments, stringify } from 'yaml';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { RawClient } from '../src/k8s/raw';
import { ClientCa, writeClientCa, writeClientCert } from './client-certs';
import { NetnsState, createNetns, deleteNetns, inNetns, netnsLeftovers } from './netns';
import {
  TASK_LABELS, TEKTON_WEBHOOK_PORT, TektonLayout, controllerArgs, deploymentEnv, knativePortEnv, tektonConfigObjects, tektonLayout,
} from './tekton';
import { installTektonConfig, waitTektonController, waitTektonCrdConversion, waitTektonWebhook } from './tekton-install';

/**
 * A real Kubernetes control plane on loopback ports: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler, kwok with one fake Node, and the real Tekton Pipelines (controller, webhook,
 * resolvers). Tekton's webhook serves from a network namespace the harness creates, reached by the
 * API server through an EndpointSlice. Binaries come from scripts/control-plane.sh (built once per
 * machine, cached outside the repo). Used by jest's globalSetup, the demo, bench and chaos.
 */

const REPO = path.resolve(__dirname, '..');

/** The image a sidecar can use to never become Ready under kwok (start-up failure tests). */
export const NEVER_READY_IMAGE = 'example.invalid/never-ready:1';
/** The fake Node kwok manages. */
export const FAKE_NODE = 'kwok-node-0';

export interface ControlPlaneOptions {
  /** Directory for data, certs and logs (default: a fresh temp dir). */
  readonly workDir?: string;
  /** Print progress to stderr. */
  readonly verbose?: boolean;
}

/**
 * What the API server audits: writes to PipelineRuns, with the request body and the answer, so a
 * test can show which spec changes anyone (the operator above all) sent and what Tekton's webhook
 * said to each. Nothing else is recorded.
 */
const AUDIT_POLICY = {
  apiVersion: 'audit.k8s.io/v1', kind: 'Policy', omitStages: ['RequestReceived'],
  rules: [
    { level: 'Request', verbs: ['patch', 'update'], resources: [{ group: 'tekton.dev', resources: ['pipelineruns'] }] },
    { level: 'None' },
  ],
};

/** The processes the harness starts, stopped in reverse order of this list. */
const COMPONENTS = [
  'etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok',
  'apiserver-forward-host', 'apiserver-forward-netns', 'tekton-webhook', 'tekton-controller', 'tekton-resolvers',
] as const;
type Component = typeof COMPONENTS[number];

/** How one component is started. */
interface ProcSpec { readonly command: string; readonly args: string[]; readonly env?: Record<string, string> }

/** What a started control plane is, serializable so that other processes (jest workers) can use it. */
export interface ControlPlaneState {
  readonly workDir: string;
  readonly server: string;
  readonly kubeconfig: string;
  readonly adminToken: string;
  readonly caFile: string;
  /** The CA the API server trusts for client certificates (--client-ca-file), with its key. */
  readonly clientCa: ClientCa;
  readonly binDir: string;
  readonly pids: Record<string, number>;
  readonly ports: { etcd: number; etcdPeer: number; apiserver: number };
  /** The network namespace Tekton's webhook serves from (removed at stop). */
  readonly netns?: NetnsState;
  /** The API server's audit log: every write to a PipelineRun, with its body and answer (see auditPolicy). */
  readonly auditLog: string;
  readonly startedMs: number;
  /** The process that started it: while it lives, `npm run platform:stop` leaves this control plane alone. */
  readonly ownerPid?: number;
}

/** The file in a control plane's work dir that records its state (PIDs, netns) for `platform:stop`. */
export const CONTROL_PLANE_STATE_FILE = 'control-plane-state.json';

/**
 * A free port below Linux's ephemeral range (32768+): a port the kernel hands out to outgoing
 * connections can be taken by a client while a component restarts, and the restart then fails.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.unref();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port found in 20000-31999 on 127.0.0.1');
}

/** Builds (or reuses) the cached binaries and returns their directory. */
export function ensureBinaries(verbose = true): string {
  const script = path.join(REPO, 'scripts', 'control-plane.sh');
  const out = execFileSync('bash', [script], { stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'pipe'], encoding: 'utf8' });
  return path.join(out.trim().split('\n').pop()!, 'bin');
}

export class ControlPlane {
  private readonly procs = new Map<Component, ChildProcess>();
  private readonly exitHook = () => this.killAllSync();
  private constructor(public state: ControlPlaneState, private readonly verbose: boolean, private readonly specs: Map<Component, ProcSpec>) {
    process.on('exit', this.exitHook);
  }

  /** Starts every component and waits until the API server is ready and the fake Node is Ready. */
  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const t0 = Date.now();
    const verbose = opts.verbose ?? false;
    const binDir = ensureBinaries(verbose);
    const workDir = opts.workDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-sidecars-cp-'));
    fs.mkdirSync(path.join(workDir, 'logs'), { recursive: true });
    const [etcdPort, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
    const adminToken = crypto.randomBytes(24).toString('hex');
    const certDir = path.join(workDir, 'pki');
    fs.mkdirSync(certDir, { recursive: true });
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fs.writeFileSync(path.join(certDir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    fs.writeFileSync(path.join(certDir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    fs.writeFileSync(path.join(certDir, 'tokens.csv'), `${adminToken},admin,admin-uid,"system:masters"\n`);
    // Client certificates (the real node's kubelet: system:node:<name>) are signed by this CA.
    const clientCa = await writeClientCa(certDir);
    // The API server's own client certificate towards kubelets (logs, exec, port-forward).
    const kubeletClient = await writeClientCert(clientCa, path.join(certDir, 'apiserver-kubelet-client'), 'kube-apiserver-kubelet-client', ['system:masters']);
    const server = `https://127.0.0.1:${apiPort}`;
    const caFile = path.join(certDir, 'apiserver.crt');
    const kubeconfig = path.join(workDir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, kubeconfigYaml(server, caFile, adminToken));
    const auditPolicy = path.join(workDir, 'audit-policy.yaml');
    fs.writeFileSync(auditPolicy, stringify(AUDIT_POLICY));
    const auditLog = path.join(workDir, 'logs', 'audit.log');

    const args = new Map<Component, string[]>();
    const tekton = tektonLayout(REPO);
    args.set('etcd', [
      '--name=default', `--data-dir=${path.join(workDir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`, `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`, '--unsafe-no-fsync', '--log-level=warn',
    ]);
    args.set('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--secure-port=${apiPort}`, '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1',
      `--cert-dir=${certDir}`, `--token-auth-file=${path.join(certDir, 'tokens.csv')}`,
      `--client-ca-file=${clientCa.certFile}`,
      // A real kubelet is held to its own Node and pods, as in a real cluster (real-node.md).
      '--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction',
      // Kubelets by their InternalIP: resolving the node name would ask the machine's DNS resolver.
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-client-certificate=${kubeletClient.certFile}`, `--kubelet-client-key=${kubeletClient.keyFile}`,
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${path.join(certDir, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(certDir, 'sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // Webhook Services resolve through their EndpointSlices, so Tekton's webhook (reached by a
      // selector-less Service, as Knative insists) is found at its address in the harness's netns.
      '--enable-aggregator-routing=true',
      `--audit-policy-file=${auditPolicy}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json', '--audit-log-mode=blocking',
      // DockerDaemon sidecars are privileged; our own namespace gate decides, not the API server.
      '--allow-privileged=true',
      '--profiling=false', '--v=1',
    ]);
    const cmKubeconfig = kubeconfig;
    args.set('kube-controller-manager', [
      `--kubeconfig=${cmKubeconfig}`, '--leader-elect=false', '--secure-port=0',
      `--service-account-private-key-file=${path.join(certDir, 'sa.key')}`, `--root-ca-file=${caFile}`,
      '--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-route',
      '--concurrent-deployment-syncs=10', '--concurrent-replicaset-syncs=10', '--concurrent-gc-syncs=20',
      '--kube-api-qps=200', '--kube-api-burst=400', '--v=1',
    ]);
    args.set('kube-scheduler', [`--kubeconfig=${kubeconfig}`, '--leader-elect=false', '--secure-port=0', '--kube-api-qps=200', '--kube-api-burst=400', '--v=1']);
    const kwokConfig = path.join(workDir, 'kwok.yaml');
    fs.writeFileSync(kwokConfig, kwokStages(path.join(path.dirname(binDir), 'kwok-stages')));
    args.set('kwok', [
      `--kubeconfig=${kubeconfig}`, `--config=${kwokConfig}`, '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake', '--cidr=10.244.0.0/16', '--node-ip=10.0.0.1',
      '--server-address=', '--node-lease-duration-seconds=40',
    ]);

    const specs = new Map<Component, ProcSpec>();
    for (const [c, a] of args) specs.set(c, { command: path.join(binDir, c), args: a });
    const state: ControlPlaneState = {
      workDir, server, kubeconfig, adminToken, caFile, clientCa, binDir, pids: {},
      ports: { etcd: etcdPort, etcdPeer, apiserver: apiPort }, auditLog, startedMs: 0,
    };
    const cp = new ControlPlane(state, verbose, specs);
    try {
      cp.launch('etcd');
      await cp.waitHttp(`http://127.0.0.1:${etcdPort}/health`, 30_000, 'etcd');
      cp.launch('kube-apiserver');
      await cp.waitApiReady(60_000);
      for (const c of ['kube-controller-manager', 'kube-scheduler', 'kwok'] as const) cp.launch(c);
      await cp.createFakeNode();
      await cp.waitNodeReady(30_000);
      await cp.startTekton(tekton, apiPort);
    } catch (e) {
      cp.stop({ keepLogs: true });
      throw new Error(`control plane failed to start: ${(e as Error).message}\n  component logs kept in ${path.join(workDir, 'logs')}`);
    }
    cp.state = { ...cp.state, startedMs: Date.now() - t0 };
    cp.log(`ready in ${cp.state.startedMs} ms at ${server} (kubeconfig ${kubeconfig})`);
    return cp;
  }

  private log(msg: string): void { if (this.verbose) process.stderr.write(`[control-plane] ${msg}\n`); }

  /**
   * Tekton: a network namespace for its webhook, a pair of forwarders that carry the webhook's own
   * API calls from that namespace's loopback to the API server's, Tekton's config/ objects, then the
   * webhook (inside the namespace), controller and resolvers (on the host, on ports of their own).
   */
  private async startTekton(layout: TektonLayout, apiPort: number): Promise<void> {
    const t0 = Date.now();
    const netns = createNetns();
    this.state = { ...this.state, netns };
    const sock = path.join(this.state.workDir, 'apiserver.sock');
    const forward = path.join(__dirname, 'forward.js');
    this.specs.set('apiserver-forward-host', { command: process.execPath, args: [forward, `unix:${sock}`, `tcp:127.0.0.1:${apiPort}`] });
    this.specs.set('apiserver-forward-netns', inNetns(netns, process.execPath, [forward, `tcp:127.0.0.1:${apiPort}`, `unix:${sock}`]));
    const webhookEnv = { ...deploymentEnv(layout, 'webhook.yaml'), WEBHOOK_PORT: String(TEKTON_WEBHOOK_PORT), ...knativePortEnv({ probes: 18080, metrics: 19090, profiling: 18008 }) };
    const webhook = inNetns(netns, path.join(layout.binDir, 'tekton-webhook'), [`-kubeconfig=${this.state.kubeconfig}`]);
    this.specs.set('tekton-webhook', { ...webhook, env: webhookEnv });
    this.specs.set('tekton-controller', {
      command: path.join(layout.binDir, 'tekton-controller'), args: controllerArgs(this.state.kubeconfig),
      env: { ...deploymentEnv(layout, 'controller.yaml'), ...knativePortEnv({ probes: await freePort(), metrics: await freePort(), profiling: await freePort() }) },
    });
    this.specs.set('tekton-resolvers', {
      command: path.join(layout.binDir, 'tekton-resolvers'), args: [`-kubeconfig=${this.state.kubeconfig}`],
      env: { ...deploymentEnv(layout, 'resolvers/resolvers-deployment.yaml'), ...knativePortEnv({ probes: await freePort(), metrics: await freePort(), profiling: await freePort() }) },
    });
    const kc = new KubeConfig();
    kc.loadFromFile(this.state.kubeconfig);
    const client = new RawClient(kc);
    try {
      await installTektonConfig(client, layout, netns.innerAddress);
      for (const c of ['apiserver-forward-host', 'apiserver-forward-netns', 'tekton-webhook', 'tekton-controller', 'tekton-resolvers'] as const) this.launch(c);
      const alive = () => { for (const c of ['apiserver-forward-host', 'apiserver-forward-netns', 'tekton-webhook', 'tekton-controller', 'tekton-resolvers'] as const) this.assertAlive(c); };
      await waitTektonWebhook(client, 120_000, alive);
      await waitTektonCrdConversion(client, tektonConfigObjects(layout).crds.map((c) => c.metadata.name), 60_000, alive);
      await waitTektonController(client, 60_000, alive);
    } finally {
      client.close();
    }
    this.log(`tekton ready in ${Date.now() - t0} ms (webhook at ${netns.innerAddress}:${TEKTON_WEBHOOK_PORT} in netns ${netns.name})`);
  }

  private launch(c: Component): void {
    const out = fs.openSync(path.join(this.state.workDir, 'logs', `${c}.log`), 'a');
    const spec = this.specs.get(c)!;
    const child = spawn(spec.command, spec.args, { stdio: ['ignore', out, out], detached: true, env: spec.env ? { ...process.env, ...spec.env } : process.env });
    fs.closeSync(out);
    child.unref();
    this.procs.set(c, child);
    (this.state.pids as Record<string, number>)[c] = child.pid!;
    // Recorded at once: a run killed with SIGKILL leaves these behind, and platform:stop finds them here.
    fs.writeFileSync(path.join(this.state.workDir, CONTROL_PLANE_STATE_FILE), JSON.stringify({ ...this.state, ownerPid: process.pid }, null, 2));
    this.log(`${c} started (pid ${child.pid})`);
  }

  /** Kills one component (SIGKILL) and starts it again with the same flags: chaos uses it on the API server and Tekton's controller. */
  async restart(c: Component): Promise<void> {
    const p = this.procs.get(c);
    if (p?.pid) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ } }
    await waitExit(p?.pid, 10_000);
    this.launch(c);
    if (c === 'kube-apiserver') await this.waitApiReady(60_000);
  }

  private async waitHttp(url: string, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      try {
        const res = await fetch(url);
        if (res.ok) return;
        last = `HTTP ${res.status}`;
      } catch (e) { last = (e as Error).message; }
      this.assertAlive(what as Component);
      await sleep(100);
    }
    throw new Error(`${what} not healthy after ${timeoutMs} ms (${last})`);
  }

  private assertAlive(c: Component): void {
    const p = this.procs.get(c);
    if (p && p.exitCode !== null) throw new Error(`${c} exited with code ${p.exitCode}; see ${path.join(this.state.workDir, 'logs', `${c}.log`)}`);
  }

  /** An authenticated request to the API server (admin). */
  async api(method: string, apiPath: string, body?: unknown, mergePatch?: unknown): Promise<{ status: number; json: any }> {
    const payload = mergePatch !== undefined ? JSON.stringify(mergePatch) : body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(`${this.state.server}${apiPath}`, {
        method, ca: fs.existsSync(this.state.caFile) ? fs.readFileSync(this.state.caFile) : undefined,
        rejectUnauthorized: fs.existsSync(this.state.caFile),
        headers: { 'Authorization': `Bearer ${this.state.adminToken}`, 'Content-Type': mergePatch !== undefined ? 'application/merge-patch+json' : 'application/json', 'Accept': 'application/json' },
      }, (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => { let json: any; try { json = JSON.parse(text); } catch { json = text; } resolve({ status: res.statusCode ?? 0, json }); });
      });
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  private async waitApiReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      this.assertAlive('kube-apiserver');
      try {
        const r = await this.api('GET', '/readyz');
        if (r.status === 200) return;
        last = `readyz ${r.status}`;
      } catch (e) { last = (e as Error).message; }
      await sleep(200);
    }
    throw new Error(`kube-apiserver not ready after ${timeoutMs} ms (${last})`);
  }

  private async createFakeNode(): Promise<void> {
    const node = {
      apiVersion: 'v1', kind: 'Node',
      metadata: {
        name: FAKE_NODE,
        annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        labels: { 'kubernetes.io/hostname': FAKE_NODE, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'type': 'kwok' },
      },
      status: {
        allocatable: { cpu: '256', memory: '1Ti', pods: '5000' },
        capacity: { cpu: '256', memory: '1Ti', pods: '5000' },
      },
    };
    const r = await this.api('POST', '/api/v1/nodes', node);
    if (r.status !== 201 && r.status !== 409) throw new Error(`creating the fake node: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
  }

  private async waitNodeReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const c of ['kube-controller-manager', 'kube-scheduler', 'kwok'] as const) this.assertAlive(c);
      const r = await this.api('GET', `/api/v1/nodes/${FAKE_NODE}`);
      const ready = r.json?.status?.conditions?.find((c: any) => c.type === 'Ready');
      if (ready?.status === 'True') {
        // The not-ready taint is added at creation by admission and normally lifted by the node
        // lifecycle controller, which this cluster does not run (kwok's fake node needs no eviction).
        const lifted = await this.api('PATCH', `/api/v1/nodes/${FAKE_NODE}`, undefined, { spec: { taints: null } });
        if (lifted.status !== 200) throw new Error(`removing the fake node's taints: ${lifted.status}`);
        return;
      }
      await sleep(200);
    }
    throw new Error(`fake node ${FAKE_NODE} not Ready after ${timeoutMs} ms (is kwok running? see logs/kwok.log)`);
  }

  /** Stops every component (SIGTERM, then SIGKILL after a grace period), removes the netns, and the work dir unless keepLogs. */
  stop(opts: { keepLogs?: boolean } = {}): Promise<string[]> {
    return stopPids(this.state, opts);
  }

  private killAllSync(): void {
    for (const pid of Object.values(this.state.pids)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    if (this.state.netns) deleteNetns(this.state.netns);
  }

  /** Detaches the process-exit hook (the state was handed to another process that will stop it). */
  handOff(): void { process.off('exit', this.exitHook); }
}

/**
 * Stops the components recorded in a state by PID, in reverse start order, and removes the network
 * namespace; usable from another process than the starter. Returns what was left behind (empty
 * when the host is back as it was).
 */
export async function stopPids(state: ControlPlaneState, opts: { keepLogs?: boolean } = {}): Promise<string[]> {
  for (const c of [...COMPONENTS].reverse()) {
    const pid = state.pids[c];
    if (!pid) continue;
    try { process.kill(pid, 'SIGTERM'); } catch { continue; }
    // Tekton's webhook drains for up to 45 s on SIGTERM; nobody calls it any more at this point.
    const grace = c.startsWith('tekton-') ? 2_000 : 5_000;
    if (!(await waitExit(pid, grace))) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } await waitExit(pid, 5_000); }
  }
  const left = Object.entries(state.pids).filter(([, pid]) => isAlive(pid)).map(([c, pid]) => `process ${c}=${pid}`);
  if (state.netns) {
    deleteNetns(state.netns);
    left.push(...netnsLeftovers(state.netns));
  }
  if (!opts.keepLogs) fs.rmSync(state.workDir, { recursive: true, force: true });
  return left;
}

/** Whether a process runs; a zombie (exited, not yet reaped by its parent) does not. */
export function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); } catch { return false; }
  try { return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z'); } catch { return false; }
}

async function waitExit(pid: number | undefined, timeoutMs: number): Promise<boolean> {
  if (!pid) return true;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return false;
}

function kubeconfigYaml(server: string, caFile: string, token: string): string {
  return stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [{ name: 'local', cluster: { 'server': server, 'certificate-authority': caFile } }],
    users: [{ name: 'admin', user: { token } }],
    contexts: [{ name: 'local', context: { cluster: 'local', user: 'admin', namespace: 'default' } }],
    'current-context': 'local',
  });
}

/**
 * Finishes the pods of Tekton's TaskRuns as their steps would: kwok runs no containers, so without
 * this stage a real TaskRun never ends. Every container ends `terminated` with the exit code of the
 * pod's TASK_LABELS.exitCode label (default 0), and the pod Succeeded or Failed accordingly, a short
 * while after it ran. A pod labelled TASK_LABELS.hold stays running until the label goes. The
 * termination message stays empty: Tekton cannot parse the times kwok would write into it.
 */
export function taskRunPodStage(delayMs = 300): Record<string, any> {
  const code = `or (index .metadata.labels "${TASK_LABELS.exitCode}") "0"`;
  return {
    apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'Stage',
    metadata: { name: 'tekton-taskrun-pod-finish' },
    spec: {
      resourceRef: { apiGroup: 'v1', kind: 'Pod' },
      selector: {
        matchExpressions: [
          { key: '.metadata.deletionTimestamp', operator: 'DoesNotExist' },
          { key: '.status.phase', operator: 'In', values: ['Running'] },
          { key: '.metadata.labels["tekton.dev/taskRun"]', operator: 'Exists' },
          { key: `.metadata.labels["${TASK_LABELS.hold}"]`, operator: 'DoesNotExist' },
        ],
      },
      delay: { durationMilliseconds: delayMs },
      next: {
        statusTemplate: [
          '{{ $now := Now }}',
          `{{ $code := ${code} }}`,
          'containerStatuses:',
          '{{ range .spec.containers }}',
          '- image: {{ .image | Quote }}',
          '  name: {{ .name | Quote }}',
          '  ready: false',
          '  restartCount: 0',
          '  started: false',
          '  state:',
          '    terminated:',
          '      exitCode: {{ $code }}',
          '      finishedAt: {{ $now | Quote }}',
          '      reason: {{ if eq $code "0" }}Completed{{ else }}Error{{ end }}',
          '      startedAt: {{ $now | Quote }}',
          '{{ end }}',
          'phase: {{ if eq $code "0" }}Succeeded{{ else }}Failed{{ end }}',
        ].join('\n'),
      },
    },
  };
}

/**
 * kwok's own fast pod stages (copied into the cache by the build script), with pod-ready narrowed so
 * that a pod whose first container runs NEVER_READY_IMAGE stays Pending and not Ready.
 */
function kwokStages(stageDir: string): string {
  const files = fs.readdirSync(stageDir).filter((f) => f.endsWith('.yaml')).sort();
  if (!files.includes('pod-ready.yaml')) throw new Error(`kwok stages missing in ${stageDir}: rerun scripts/control-plane.sh`);
  const docs: string[] = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(stageDir, f), 'utf8'))) {
      const obj = doc.toJS();
      if (!obj) continue;
      if (obj.metadata?.name === 'pod-ready') {
        obj.spec.selector.matchExpressions.push({ key: '.spec.containers.[0].image', operator: 'NotIn', values: [NEVER_READY_IMAGE] });
      }
      docs.push(stringify(obj));
    }
  }
  docs.push(stringify(taskRunPodStage()));
  return docs.join('---\n');
}
