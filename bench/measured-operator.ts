import * as fs from 'node:fs';
import { OperatorProcess, OperatorProcessOptions } from '../platform/operator-process';
import { cpuSeconds } from './lib';

/** What the child reports over IPC (bench/operator-process.ts). */
export interface OperatorStats {
  requests: number;
  reconciles: number;
  lists: number;
  watches: number;
  admissionMs: number[];
  /** With stats({spans: true}): per run key `run:ns/name`, [queued, started, ended] of each reconcile. */
  spans?: Record<string, Array<[number, number, number]>>;
  /** With spans: per reconcile step, run name → ms of the step's first call for that run. */
  stepMs?: Record<string, Record<string, number>>;
  /** Requests sent so far by method and resource. */
  requestsByKind: Record<string, number>;
  memory: NodeJS.MemoryUsage;
  /** Controller start → its caches synced (ms), once it leads. */
  syncMs?: number;
  /** PipelineRuns in the controller's cache. */
  runsCached: number;
  /** Informer list pages fetched (limit/continue) since start. */
  listPages: number;
  cpu: NodeJS.CpuUsage;
  leader: boolean;
}

/**
 * The platform's operator child, running the bench's entry (bench/operator-process.ts: the same
 * operator with measurement hooks) instead of the CLI, with what the bench reads off it: stats
 * over IPC, the watch cut, and RSS/CPU from /proc.
 */
export class MeasuredOperator extends OperatorProcess {
  private seq = 0;

  constructor(options: Omit<OperatorProcessOptions, 'entry'>) {
    super({ ...options, entry: { script: 'bench/operator-process.ts', folders: ['bench'] } });
  }

  /** SIGUSR2: the child cuts all its informer watch connections. */
  cutWatches(): boolean {
    return this.signal('SIGUSR2');
  }

  async stats(drainAdmissions = false, spans = false): Promise<OperatorStats> {
    const c = this.child;
    if (!c?.connected) throw new Error('operator process not running');
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { c.off('message', onMsg); reject(new Error('operator did not answer stats')); }, 10_000);
      const onMsg = (m: any) => { if (m?.type === 'stats' && m.id === id) { clearTimeout(timer); c.off('message', onMsg); resolve(m); } };
      c.on('message', onMsg);
      c.send({ type: 'stats', id, drain: drainAdmissions, spans });
    });
  }

  /** RSS (bytes) and CPU seconds (user+system) from /proc: the whole process, as the kernel sees it. */
  procUsage(): { rssBytes: number; cpuSeconds: number } | undefined {
    const pid = this.pid;
    if (!pid) return undefined;
    try {
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      const cpu = cpuSeconds(pid);
      return cpu === undefined ? undefined : { rssBytes: rssKb * 1024, cpuSeconds: cpu };
    } catch { return undefined; }
  }
}
