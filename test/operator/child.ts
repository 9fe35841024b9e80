import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WEBHOOK_PATH } from '../../constructs/api/webhook-config';
import { clusterState } from '../../platform/cluster';
import { eventually, testLogDir } from './helpers';

const ROOT = path.resolve(__dirname, '../..');

/**
 * The operator as a real process (`node -r ts-node/register src/cli.ts run ...`), so a test can
 * SIGKILL it: nothing gets released, flushed or finished, as in a node crash.
 */
export class OperatorProcess {
  private child?: ChildProcess;
  readonly logFile: string;
  exited?: Promise<number | null>;

  constructor(readonly name: string, private readonly args: string[]) {
    this.logFile = path.join(testLogDir(), `${name}.log`);
  }

  /** Starts it and waits for its controller to run (or, with leader election, for it to serve). */
  async start(waitFor = 'controller started'): Promise<void> {
    const startedAt = fs.existsSync(this.logFile) ? fs.statSync(this.logFile).size : 0;
    const out = fs.openSync(this.logFile, 'a');
    this.child = spawn(process.execPath, ['-r', 'ts-node/register', 'src/cli.ts', 'run', '--kubeconfig', clusterState().kubeconfig, ...this.args], {
      cwd: ROOT, stdio: ['ignore', out, out],
      env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'), LOG_LEVEL: 'debug' },
    });
    fs.closeSync(out);
    const child = this.child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    await eventually(`${this.name} to log "${waitFor}"`, async () => {
      if (child.exitCode !== null) throw new Error(`${this.name} exited with ${child.exitCode}; see ${this.logFile}`);
      return fs.readFileSync(this.logFile, 'utf8').slice(startedAt).includes(`"msg":"${waitFor}"`);
    }, 60_000, 100);
  }

  get pid(): number | undefined { return this.child?.pid; }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null) return this.child?.exitCode ?? null;
    this.child.kill(signal);
    return this.exited!;
  }
}

/** Command-line flags for a test operator serving one namespace. */
export function operatorArgs(ns: string, extra: string[] = []): string[] {
  return [
    '--namespace', ns, '--watch-namespace', ns,
    '--webhook-port', '0', '--webhook-bind', '127.0.0.1', '--webhook-url', `https://127.0.0.1:{port}${WEBHOOK_PATH}`,
    '--webhook-register', '--webhook-config', `ps-${ns}`,
    '--health-port', '0', '--startup-timeout', '60s', '--sweep-interval', '2s',
    ...extra,
  ];
}
