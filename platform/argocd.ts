import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { freePort, isAlive } from './control-plane';
import { NetnsState, createNetns, deleteNetns, inNetns, netnsLeftovers } from './netns';

/**
 * A real Argo CD (scripts/argocd.sh builds it from its Go module) beside a running control plane:
 * redis, the repo server and the application controller, nothing else (no API server, no UI, no
 * ApplicationSet controller). All three run in a network namespace of their own with nothing but
 * its loopback and a veth to the host with no route beyond it, so whatever Argo CD would call out
 * to (telemetry, registries, DNS) cannot leave the machine: its only way out is a pair of
 * forwarders that carry the controller's API calls to the API server on the host's loopback, at
 * the same address, so the control plane's kubeconfig works unchanged inside. Its ports are free
 * ports of that namespace's 127.0.0.1 (the controller's metrics server binds 0.0.0.0 whatever its
 * flags say: in there, that is the namespace's own addresses). Processes are started with a log
 * file each and stopped by PID, like control-plane.ts.
 */

const REPO = path.resolve(__dirname, '..');
/** The namespace Argo CD runs in, as its manifests install it. */
export const ARGOCD_NAMESPACE = 'argocd';
/** The shipped health customization for PipelineSidecars, applied exactly as its header says. */
export const HEALTH_CM_PATCH = path.join(REPO, 'examples', 'argocd', 'argocd-cm.yaml');
/** The argocd-cm key the shipped customization sets. */
export const HEALTH_KEY = 'resource.customizations.health.pipeline-sidecars.dev_PipelineSidecar';

/** The processes, stopped in reverse order of this list. */
const COMPONENTS = ['apiserver-forward-host', 'apiserver-forward-netns', 'redis', 'repo-server', 'application-controller'] as const;
type Component = typeof COMPONENTS[number];

/** The cache scripts/argocd.sh fills. */
export interface ArgoCdLayout {
  readonly dir: string;
  /** The one argocd binary, linked under the component names it dispatches on. */
  readonly binDir: string;
  readonly redisServer: string;
  readonly redisCli: string;
  /** Where redis finds the libraries it links (unpacked beside it). */
  readonly redisLibDir: string;
  /** Application and AppProject CRDs from Argo CD's manifests/crds/. */
  readonly crdDir: string;
  /** argocd-cm, argocd-rbac-cm and argocd-secret from Argo CD's manifests/base/config/. */
  readonly configDir: string;
}

/** Builds (or reuses) Argo CD with scripts/argocd.sh. */
export function ensureArgoCd(verbose = true): ArgoCdLayout {
  const out = execFileSync('bash', [path.join(REPO, 'scripts', 'argocd.sh')], { stdio: ['ignore', 'pipe', verbose ? 'inherit' : 'pipe'], encoding: 'utf8' });
  const dir = out.trim().split('\n').pop()!;
  const usr = path.join(dir, 'redis', 'usr');
  return {
    dir, binDir: path.join(dir, 'bin'), redisServer: path.join(usr, 'bin', 'redis-server'), redisCli: path.join(usr, 'bin', 'redis-cli'),
    redisLibDir: path.join(usr, 'lib', 'x86_64-linux-gnu'), crdDir: path.join(dir, 'crds'), configDir: path.join(dir, 'config'),
  };
}

export interface ArgoCdOptions {
  /** The control plane's admin kubeconfig (its server must be https://127.0.0.1:PORT). */
  readonly kubeconfig: string;
  /** Runs kubectl against that control plane; throws with its output when it fails. */
  readonly kubectl: (args: string[]) => string;
  readonly verbose?: boolean;
}

/** What a started Argo CD is. */
export interface ArgoCdState {
  readonly workDir: string;
  readonly netns: NetnsState;
  readonly pids: Record<string, number>;
  readonly ports: { redis: number; repoServer: number; repoServerMetrics: number; controllerMetrics: number };
  /** Namespace and objects applied → Application CRD established (ms). */
  readonly crdEstablishedMs: number;
  /** Processes started → controller and repo server answering their health checks (ms). */
  readonly processesReadyMs: number;
}

export class ArgoCd {
  private readonly procs = new Map<Component, ChildProcess>();
  private readonly exitHook = () => this.killAllSync();
  private constructor(public state: ArgoCdState, readonly layout: ArgoCdLayout, private readonly verbose: boolean) {
    process.on('exit', this.exitHook);
  }

  /** Installs Argo CD's objects into the cluster, starts its processes and waits until they serve. */
  static async start(opts: ArgoCdOptions): Promise<ArgoCd> {
    const layout = ensureArgoCd(opts.verbose ?? false);
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-sidecars-argocd-'));
    for (const d of ['logs', 'home', 'tmp', 'config', 'objects']) fs.mkdirSync(path.join(workDir, d), { recursive: true });
    const ports = { redis: await freePort(), repoServer: await freePort(), repoServerMetrics: await freePort(), controllerMetrics: await freePort() };
    const argo = new ArgoCd({ workDir, netns: createNetns(), pids: {}, ports, crdEstablishedMs: 0, processesReadyMs: 0 }, layout, opts.verbose ?? false);
    try {
      const t0 = Date.now();
      await installObjects(opts.kubectl, layout, workDir);
      argo.state = { ...argo.state, crdEstablishedMs: Date.now() - t0 };
      const t1 = Date.now();
      argo.launchAll(opts.kubeconfig);
      await argo.waitServing(120_000);
      argo.state = { ...argo.state, processesReadyMs: Date.now() - t1 };
    } catch (e) {
      const left = await argo.stop({ keepLogs: true });
      throw new Error(`Argo CD failed to start: ${(e as Error).message}\n  logs kept in ${path.join(workDir, 'logs')}${left.length ? `\n  left behind: ${left.join(', ')}` : ''}`);
    }
    argo.log(`ready: CRDs established in ${argo.state.crdEstablishedMs} ms, processes serving ${argo.state.processesReadyMs} ms after start`);
    return argo;
  }

  private log(msg: string): void { if (this.verbose) process.stderr.write(`[argocd] ${msg}\n`); }

  private launchAll(kubeconfig: string): void {
    const { workDir, netns, ports } = this.state;
    const apiPort = Number(new URL(readServer(kubeconfig)).port);
    const sock = path.join(workDir, 'apiserver.sock');
    const forward = path.join(__dirname, 'forward.js');
    // Argo CD's own files (git clones, the askpass socket, kubectl's caches, gpg) stay in the work
    // dir, and git reads no configuration of this machine's.
    const env = {
      HOME: path.join(workDir, 'home'), TMPDIR: path.join(workDir, 'tmp'), GIT_CONFIG_NOSYSTEM: '1',
      ARGOCD_ASK_PASS_SOCK: path.join(workDir, 'askpass.sock'), ARGOCD_GNUPGHOME: path.join(workDir, 'gnupg'),
      // No signature verification: GnuPG would be initialized (and its keyring watched) for nothing.
      ARGOCD_GPG_ENABLED: 'false',
      ARGOCD_SSH_DATA_PATH: path.join(workDir, 'config', 'ssh'), ARGOCD_TLS_DATA_PATH: path.join(workDir, 'config', 'tls'),
      ARGOCD_GPG_DATA_PATH: path.join(workDir, 'config', 'gpg'), ARGOCD_PLUGINSOCKFILEPATH: path.join(workDir, 'plugins'),
      ARGOCD_APP_CONF_PATH: path.join(workDir, 'config'),
    };
    // The destination https://kubernetes.default.svc is "in-cluster": Argo CD would read a pod's
    // ServiceAccount for it; its out-of-cluster mode (the one its own local development uses) reads
    // the kubeconfig instead.
    const inClusterFromKubeconfig = { ARGOCD_FAKE_IN_CLUSTER: 'true', KUBECONFIG: kubeconfig };
    const bin = (name: string) => path.join(this.layout.binDir, name);
    const redis = `127.0.0.1:${ports.redis}`;
    const repoServer = `127.0.0.1:${ports.repoServer}`;
    this.launch('apiserver-forward-host', process.execPath, [forward, `unix:${sock}`, `tcp:127.0.0.1:${apiPort}`]);
    this.launch('apiserver-forward-netns', ...spec(inNetns(netns, process.execPath, [forward, `tcp:127.0.0.1:${apiPort}`, `unix:${sock}`])));
    // A cache only: nothing persisted, and only this namespace's loopback can reach it.
    this.launch('redis', ...spec(inNetns(netns, this.layout.redisServer, [
      '--bind', '127.0.0.1', '--port', String(ports.redis), '--protected-mode', 'yes', '--save', '', '--appendonly', 'no',
      '--dir', workDir, '--loglevel', 'warning',
    ])), { LD_LIBRARY_PATH: this.layout.redisLibDir });
    // The repo server runs Argo CD's git-verify-wrapper.sh (beside the binary in the cache) from PATH.
    const repoServerEnv = { ...env, PATH: `${this.layout.binDir}:${process.env.PATH}` };
    this.launch('repo-server', ...spec(inNetns(netns, bin('argocd-repo-server'), [
      '--address', '127.0.0.1', '--port', String(ports.repoServer),
      '--metrics-address', '127.0.0.1', '--metrics-port', String(ports.repoServerMetrics),
      // Plain gRPC on this namespace's loopback; no client CA then (its default path is refused with --disable-tls).
      '--redis', redis, '--disable-tls', '--client-ca-path=', '--logformat', 'text', '--loglevel', 'info',
    ])), repoServerEnv);
    this.launch('application-controller', ...spec(inNetns(netns, bin('argocd-application-controller'), [
      `--kubeconfig=${kubeconfig}`, `--namespace=${ARGOCD_NAMESPACE}`,
      '--repo-server', repoServer, '--repo-server-plaintext', '--redis', redis,
      '--metrics-port', String(ports.controllerMetrics), '--logformat', 'text', '--loglevel', 'info',
      // Each resource's health in the Application's status.resources, where a test (and kubectl)
      // can read it; Argo CD 3 keeps it only in its cache by default, for the UI.
      '--persist-resource-health',
    ])), { ...env, ...inClusterFromKubeconfig });
  }

  private launch(c: Component, command: string, args: string[], env?: Record<string, string>): void {
    const out = fs.openSync(path.join(this.state.workDir, 'logs', `${c}.log`), 'a');
    const child = spawn(command, args, { stdio: ['ignore', out, out], detached: true, env: { ...process.env, ...env } });
    fs.closeSync(out);
    child.unref();
    this.procs.set(c, child);
    (this.state.pids as Record<string, number>)[c] = child.pid!;
    this.log(`${c} started (pid ${child.pid})`);
  }

  private assertAlive(): void {
    for (const [c, p] of this.procs) {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`${c} exited (${p.exitCode ?? p.signalCode}); see ${this.logFile(c)}`);
    }
  }

  /** redis answers PING, the repo server its full health check (a gRPC call to itself), the controller /healthz (served once its informers synced). */
  private async waitServing(timeoutMs: number): Promise<void> {
    const { ports } = this.state;
    const checks: Array<[string, () => boolean]> = [
      ['redis', () => this.inNetnsOk(this.layout.redisCli, ['-h', '127.0.0.1', '-p', String(ports.redis), 'ping'], 'PONG')],
      ['repo server', () => this.httpOk(`http://127.0.0.1:${ports.repoServerMetrics}/healthz?full=true`)],
      ['application controller', () => this.httpOk(`http://127.0.0.1:${ports.controllerMetrics}/healthz`)],
    ];
    const deadline = Date.now() + timeoutMs;
    for (const [what, ok] of checks) {
      while (!ok()) {
        this.assertAlive();
        if (Date.now() > deadline) throw new Error(`${what} not serving after ${timeoutMs} ms`);
        await sleep(200);
      }
    }
  }

  /** Runs a command in Argo CD's network namespace; whether it exits 0 and prints `expect`. */
  private inNetnsOk(command: string, args: string[], expect = ''): boolean {
    const c = inNetns(this.state.netns, command, args);
    const r = spawnSync(c.command, c.args, { encoding: 'utf8', timeout: 10_000, env: { ...process.env, LD_LIBRARY_PATH: this.layout.redisLibDir } });
    return r.status === 0 && r.stdout.includes(expect);
  }

  /** Whether a GET of `url`, from inside Argo CD's network namespace, answers 2xx. */
  private httpOk(url: string): boolean {
    const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;
    return this.inNetnsOk(process.execPath, ['-e', script]);
  }

  logFile(c: Component): string { return path.join(this.state.workDir, 'logs', `${c}.log`); }

  /** Stops every process by PID (SIGTERM, then SIGKILL), removes the namespace and the work dir; returns what was left behind. */
  async stop(opts: { keepLogs?: boolean } = {}): Promise<string[]> {
    process.off('exit', this.exitHook);
    for (const c of [...COMPONENTS].reverse()) {
      const pid = this.state.pids[c];
      if (!pid) continue;
      try { process.kill(pid, 'SIGTERM'); } catch { continue; }
      if (!(await waitExit(pid, 5_000))) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } await waitExit(pid, 5_000); }
    }
    const left = Object.entries(this.state.pids).filter(([, pid]) => isAlive(pid)).map(([c, pid]) => `process ${c}=${pid}`);
    // Anything the repo server started (git) that outlived it would still work in the work dir.
    left.push(...processesUnder(this.state.workDir).map((pid) => `process ${pid} in ${this.state.workDir}`));
    deleteNetns(this.state.netns);
    left.push(...netnsLeftovers(this.state.netns));
    if (!opts.keepLogs && left.length === 0) fs.rmSync(this.state.workDir, { recursive: true, force: true });
    return left;
  }

  private killAllSync(): void {
    for (const pid of Object.values(this.state.pids)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    deleteNetns(this.state.netns);
  }
}

/** Argo CD's namespace, CRDs and config objects, the shipped health check and the default AppProject. */
async function installObjects(kubectl: (args: string[]) => string, layout: ArgoCdLayout, workDir: string): Promise<void> {
  const file = (name: string, obj: unknown) => { const f = path.join(workDir, 'objects', name); fs.writeFileSync(f, stringify(obj)); return f; };
  kubectl(['apply', '--server-side', '-f', file('namespace.yaml', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ARGOCD_NAMESPACE } })]);
  kubectl(['apply', '--server-side', '-f', `${layout.crdDir}/`]);
  // Polled rather than `kubectl wait` (or a jsonpath filter), which fail on a CRD the API server has not given conditions yet.
  const established = (crd: string) => (JSON.parse(kubectl(['get', 'crd', crd, '-o', 'json'])).status?.conditions ?? [])
    .some((c: any) => c.type === 'Established' && c.status === 'True');
  const deadline = Date.now() + 60_000;
  for (const crd of ['applications.argoproj.io', 'appprojects.argoproj.io']) {
    while (!established(crd)) {
      if (Date.now() > deadline) throw new Error(`CRD ${crd} not Established after 60 s`);
      await sleep(100);
    }
  }
  // Argo CD's own defaults (argocd-cm holds its resource exclusions and ignore rules), then our
  // health check merged in with the command examples/argocd/argocd-cm.yaml documents.
  kubectl(['-n', ARGOCD_NAMESPACE, 'apply', '--server-side', '-f', `${layout.configDir}/`]);
  kubectl(['-n', ARGOCD_NAMESPACE, 'patch', 'configmap', 'argocd-cm', '--type', 'merge', '--patch-file', HEALTH_CM_PATCH]);
  // What Argo CD's API server would create on its first start; the controller needs it to sync anything.
  kubectl(['apply', '--server-side', '-f', file('appproject.yaml', {
    apiVersion: 'argoproj.io/v1alpha1', kind: 'AppProject', metadata: { name: 'default', namespace: ARGOCD_NAMESPACE },
    spec: { sourceRepos: ['*'], destinations: [{ server: '*', namespace: '*' }], clusterResourceWhitelist: [{ group: '*', kind: '*' }] },
  })]);
}

function spec(c: { command: string; args: string[] }): [string, string[]] { return [c.command, c.args]; }

function readServer(kubeconfig: string): string {
  const m = /server:\s*(\S+)/.exec(fs.readFileSync(kubeconfig, 'utf8'));
  if (!m || !/^https:\/\/127\.0\.0\.1:\d+$/.test(m[1])) throw new Error(`the kubeconfig's server must be https://127.0.0.1:PORT, not ${m?.[1]}`);
  return m[1];
}

/** PIDs of processes whose command line or working directory is under `dir`. */
function processesUnder(dir: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8');
      const cwd = fs.readlinkSync(`/proc/${e}/cwd`);
      if ((cmd.includes(dir) || cwd.startsWith(dir)) && isAlive(Number(e))) out.push(Number(e));
    } catch { /* gone, or not ours to read */ }
  }
  return out;
}

async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return false;
}
