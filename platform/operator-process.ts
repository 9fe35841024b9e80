import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { WEBHOOK_PATH } from '../constructs/api/webhook-config';
import type { LogLevel } from '../src/log';
import { clusterState } from './cluster';
import { buildOperatorJs, operatorLogDir } from './work-dir';

const REPO = path.resolve(__dirname, '..');

/** Leader election on a Lease (`--leader-elect`): for more than one replica, or a Lease to take away. */
export interface OperatorLeaderElection {
  readonly leaseName: string;
  /** How long the Lease holds without renewal, e.g. `4s`. @default the operator's own */
  readonly leaseDuration?: string;
}

/** A script that stands in for the CLI: it takes `run` and the same flags as `pipeline-sidecars run`. */
export interface OperatorEntry {
  /** The script's TypeScript source, relative to the repository; the child runs its compiled .js. */
  readonly script: string;
  /** Top-level folders to compile for it besides src/ and constructs/. @default none */
  readonly folders?: readonly string[];
}

export interface OperatorProcessOptions {
  /** Names the process in its log file's name and in errors. */
  readonly name: string;
  /** The operator's namespace (Lease, webhook Secret), and the one namespace it serves unless clusterWide. */
  readonly namespace: string;
  /** @default the test control plane's (clusterState()) */
  readonly kubeconfig?: string;
  /** Serve every namespace (no --watch-namespace), as a cluster-wide install does. @default false */
  readonly clusterWide?: boolean;
  /** A fixed port survives restarts; 0 takes a new free port at each start. @default 0 */
  readonly webhookPort?: number;
  /** How the API server reaches the webhook; `{port}` is the bound port. @default `https://127.0.0.1:{port}` + WEBHOOK_PATH */
  readonly webhookUrl?: string;
  /** The MutatingWebhookConfiguration it registers. @default `ps-<namespace>` */
  readonly webhookConfig?: string;
  /** This replica in the Lease and in Events. @default the operator's own (host-pid) */
  readonly identity?: string;
  /** @default none: the process leads alone */
  readonly leaderElection?: OperatorLeaderElection;
  /** --startup-timeout, e.g. `60s`. @default the operator's own */
  readonly startupTimeout?: string;
  /** --sweep-interval, e.g. `2s`. @default the operator's own */
  readonly sweepInterval?: string;
  /** --watch-idle-timeout, e.g. `5s`. @default the operator's own */
  readonly watchIdleTimeout?: string;
  /** More `run` flags, after those above. @default none */
  readonly extraArgs?: readonly string[];
  /** Flags for node itself (e.g. --cpu-prof). @default none */
  readonly nodeArgs?: readonly string[];
  /** The child's LOG_LEVEL. @default this process's LOG_LEVEL, else info */
  readonly logLevel?: LogLevel;
  /**
   * Its stdout and stderr, appended across restarts.
   * @default `<name>.log` in operatorLogDir(): under a jest test file, that file's folder of .work/test-logs
   */
  readonly logFile?: string;
  /** @default the CLI (src/cli.ts) */
  readonly entry?: OperatorEntry;
}

/** What start() learnt: the ports from the operator's "operator started" line, and how long it took. */
export interface OperatorStarted {
  readonly webhookPort: number;
  readonly healthPort: number;
  /** Spawn to "operator started" (ms). */
  readonly startMs: number;
}

/**
 * The operator as a child process, started as `pipeline-sidecars run` with compiled code like an
 * installed operator, so that a SIGKILL is a real crash (nothing released, flushed or finished)
 * and its RSS and CPU are its own. The tests, the bench and the chaos run all start it this way.
 */
export class OperatorProcess {
  readonly logFile: string;
  /** How many times it was started. */
  starts = 0;
  protected child?: ChildProcess;
  private exited?: Promise<number | null>;

  constructor(readonly options: OperatorProcessOptions) {
    this.logFile = options.logFile ?? path.join(operatorLogDir(), `${options.name}.log`);
  }

  /** The `run` flags: the one list every operator child gets. */
  args(): string[] {
    const o = this.options;
    const le = o.leaderElection;
    const opt = (flag: string, v: string | undefined) => (v === undefined ? [] : [flag, v]);
    return [
      '--kubeconfig', o.kubeconfig ?? clusterState().kubeconfig,
      '--namespace', o.namespace, ...(o.clusterWide ? [] : ['--watch-namespace', o.namespace]),
      '--webhook-port', String(o.webhookPort ?? 0), '--webhook-bind', '127.0.0.1',
      '--webhook-url', o.webhookUrl ?? `https://127.0.0.1:{port}${WEBHOOK_PATH}`,
      '--webhook-register', '--webhook-config', o.webhookConfig ?? `ps-${o.namespace}`,
      '--health-port', '0',
      ...opt('--identity', o.identity),
      ...(le ? ['--leader-elect', '--lease-name', le.leaseName, ...opt('--lease-duration', le.leaseDuration)] : []),
      ...opt('--startup-timeout', o.startupTimeout),
      ...opt('--sweep-interval', o.sweepInterval),
      ...opt('--watch-idle-timeout', o.watchIdleTimeout),
      ...(o.extraArgs ?? []),
    ];
  }

  get running(): boolean {
    const c = this.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** Its process id while it runs. */
  get pid(): number | undefined { return this.running ? this.child!.pid : undefined; }

  /**
   * Starts it and resolves once it logged "operator started": its webhook serves and, unless it
   * elects a leader, its controller runs. A child that is not up within timeoutMs is killed.
   */
  async start(timeoutMs = 60_000): Promise<OperatorStarted> {
    if (this.running) throw new Error(`${this.options.name} is already running (pid ${this.pid})`);
    const o = this.options;
    const root = buildOperatorJs(['src', 'constructs', ...(o.entry?.folders ?? [])]);
    const script = path.join(root, (o.entry?.script ?? 'src/cli.ts').replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(this.logFile), { recursive: true });
    const from = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    const out = fs.openSync(this.logFile, 'a');
    const env = o.logLevel ? { ...process.env, LOG_LEVEL: o.logLevel } : process.env;
    const t0 = Date.now();
    // With an IPC channel, which a stand-in entry may answer on (the bench's stats); the CLI ignores it.
    const child = spawn(process.execPath, [...(o.nodeArgs ?? []), script, 'run', ...this.args()], { cwd: REPO, env, stdio: ['ignore', out, out, 'ipc'] });
    fs.closeSync(out);
    this.child = child;
    this.starts++;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const line = await this.logLine('operator started', from, timeoutMs);
      return { webhookPort: line.webhookPort, healthPort: line.healthPort, startMs: Date.now() - t0 };
    } catch (e) {
      await this.kill();
      throw e;
    }
  }

  /** SIGKILL, as in a node crash. Resolves its exit code: null, killed by the signal. */
  kill(): Promise<number | null> {
    return this.signalAndWait('SIGKILL');
  }

  /** SIGTERM, the graceful stop (Lease released, reconciles drained); SIGKILL after timeoutMs. Resolves its exit code. */
  async stop(timeoutMs = 25_000): Promise<number | null> {
    const force = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
    try { return await this.signalAndWait('SIGTERM'); } finally { clearTimeout(force); }
  }

  /** Sends a signal without waiting; false when it does not run. */
  signal(signal: NodeJS.Signals): boolean {
    return this.running && this.child!.kill(signal);
  }

  private async signalAndWait(signal: NodeJS.Signals): Promise<number | null> {
    if (!this.signal(signal)) return this.child?.exitCode ?? null;
    return this.exited!;
  }

  /** The fields of the first log line with this msg after byte `from` of the log. */
  private async logLine(msg: string, from: number, timeoutMs: number): Promise<Record<string, any>> {
    const needle = `"msg":${JSON.stringify(msg)}`;
    const deadline = Date.now() + timeoutMs;
    const fd = fs.openSync(this.logFile, 'r');
    const buf = Buffer.alloc(64 * 1024);
    const decoder = new StringDecoder('utf8');
    let pos = from;
    let partial = '';
    try {
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, pos);
        pos += n;
        const lines = (partial + decoder.write(buf.subarray(0, n))).split('\n');
        partial = lines.pop()!;
        const found = lines.find((l) => l.includes(needle));
        if (found) return JSON.parse(found);
        if (n === buf.length) continue;
        const c = this.child!;
        if (!this.running) throw new Error(`${this.options.name} exited (code ${c.exitCode}, signal ${c.signalCode}) before logging "${msg}"; see ${this.logFile}`);
        if (Date.now() > deadline) throw new Error(`${this.options.name} did not log "${msg}" within ${timeoutMs} ms; see ${this.logFile}`);
        await sleep(50);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}
