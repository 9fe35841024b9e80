import { KubeConfig, Watch } from '@kubernetes/client-node';
import { RawClient, isConflict } from '../../src/k8s/raw';

/**
 * Plays Tekton's PipelineRun controller, just enough for our operator's tests:
 * - a pending run (spec.status PipelineRunPending) is left alone;
 * - an unpended run becomes Running and gets one pod per pipeline task, labelled like Tekton's
 *   TaskRun pods (kwok makes them Ready);
 * - a Cancelled run finishes Failed with reason Cancelled;
 * - `finish()` ends a run Succeeded or Failed on the test's word.
 */
export class TektonSimulator {
  private readonly client: RawClient;
  private abort?: AbortController;
  private stopped = false;
  private readonly inflight = new Set<string>();
  /** Runs this simulator started, in order (ns/name). */
  readonly started: string[] = [];

  constructor(private readonly kc: KubeConfig, private readonly namespace?: string) {
    this.client = new RawClient(kc);
  }

  async start(): Promise<void> {
    const base = this.namespace ? `/apis/tekton.dev/v1/namespaces/${this.namespace}/pipelineruns` : '/apis/tekton.dev/v1/pipelineruns';
    const list = await this.client.get(base);
    for (const run of list.items) this.onRun(run);
    await this.watch(base, list.metadata.resourceVersion);
  }

  private async watch(base: string, resourceVersion: string): Promise<void> {
    if (this.stopped) return;
    const w = new Watch(this.kc);
    this.abort = await w.watch(base, { resourceVersion, allowWatchBookmarks: true }, (type, obj) => {
      if (type === 'BOOKMARK') { resourceVersion = obj.metadata.resourceVersion; return; }
      resourceVersion = obj.metadata?.resourceVersion ?? resourceVersion;
      if (type === 'ADDED' || type === 'MODIFIED') this.onRun(obj);
    }, () => {
      // Watches end (timeouts, drops); a relist covers what was missed.
      if (this.stopped) return;
      this.restartWatch();
    });
  }

  /** Relists and watches again, retrying while the API server is away (a restart, in chaos runs). */
  private restartWatch(delayMs = 200): void {
    if (this.stopped) return;
    setTimeout(() => {
      this.start().catch(() => this.restartWatch(Math.min(delayMs * 2, 2000)));
    }, delayMs);
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    this.client.close();
  }

  private onRun(run: any): void {
    const key = `${run.metadata.namespace}/${run.metadata.name}`;
    if (done(run) || this.inflight.has(key)) return;
    const status = run.spec?.status;
    if (status === 'PipelineRunPending') return;
    this.inflight.add(key);
    const work = status === 'Cancelled' || status === 'CancelledRunFinally' || status === 'StoppedRunFinally'
      ? this.setCondition(run, 'False', 'Cancelled', 'PipelineRun was cancelled')
      : this.startRun(run);
    work.catch((e) => process.stderr.write(`[tekton-simulator] ${key}: ${(e as Error).message}\n`)).finally(() => this.inflight.delete(key));
  }

  private async startRun(run: any): Promise<void> {
    const ns = run.metadata.namespace;
    const running = run.status?.conditions?.some((c: any) => c.type === 'Succeeded' && c.reason === 'Running');
    if (running) return;
    const pipelineName: string = run.spec?.pipelineRef?.name ?? run.metadata.name;
    let tasks: any[] = run.spec?.pipelineSpec?.tasks ?? [];
    if (run.spec?.pipelineRef?.name) {
      const p = await this.client.getOrUndefined(`/apis/tekton.dev/v1/namespaces/${ns}/pipelines/${run.spec.pipelineRef.name}`);
      tasks = p?.spec?.tasks ?? [];
    }
    await this.client.mergePatch(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${run.metadata.name}/status`, {
      status: {
        startTime: new Date().toISOString(),
        conditions: [{ type: 'Succeeded', status: 'Unknown', reason: 'Running', message: `Tasks Completed: 0 (Failed: 0, Cancelled 0), Incomplete: ${tasks.length}`, lastTransitionTime: new Date().toISOString() }],
      },
    });
    this.started.push(`${ns}/${run.metadata.name}`);
    for (const t of tasks) {
      const pod = {
        apiVersion: 'v1', kind: 'Pod',
        metadata: {
          name: `${run.metadata.name}-${t.name}-pod`.slice(0, 63).replace(/-+$/, ''), namespace: ns,
          labels: {
            'tekton.dev/pipelineRun': run.metadata.name,
            'tekton.dev/pipelineRunUID': run.metadata.uid,
            'tekton.dev/pipeline': pipelineName,
            'tekton.dev/pipelineTask': t.name,
            'app.kubernetes.io/managed-by': 'tekton-pipelines',
          },
          ownerReferences: [{ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', name: run.metadata.name, uid: run.metadata.uid }],
        },
        spec: {
          automountServiceAccountToken: false,
          containers: [{ name: 'step', image: 'example.invalid/tekton-step:1' }],
        },
      };
      await createRetrying(() => this.client.create(`/api/v1/namespaces/${ns}/pods`, pod));
    }
  }

  private async setCondition(run: any, status: 'True' | 'False', reason: string, message: string): Promise<void> {
    const now = new Date().toISOString();
    await this.client.mergePatch(`/apis/tekton.dev/v1/namespaces/${run.metadata.namespace}/pipelineruns/${run.metadata.name}/status`, {
      status: { completionTime: now, conditions: [{ type: 'Succeeded', status, reason, message, lastTransitionTime: now }] },
    });
  }

  /** Ends a run as Tekton would once its tasks (and finally tasks) are done. */
  async finish(namespace: string, name: string, result: 'Succeeded' | 'Failed'): Promise<void> {
    const run = await this.client.get(`/apis/tekton.dev/v1/namespaces/${namespace}/pipelineruns/${name}`);
    await this.setCondition(run, result === 'Succeeded' ? 'True' : 'False', result, `Tasks Completed: all (result ${result})`);
  }
}

export function done(run: any): boolean {
  return !!run?.status?.conditions?.some((c: any) => c.type === 'Succeeded' && (c.status === 'True' || c.status === 'False'));
}

/**
 * Creates, retrying while the namespace's default ServiceAccount is still being made by the
 * controller-manager; an object that already exists (a relist after a watch drop) is fine.
 */
async function createRetrying(fn: () => Promise<unknown>, attempts = 50): Promise<void> {
  for (let i = 0; ; i++) {
    try { await fn(); return; } catch (e) {
      if (isConflict(e)) return;
      if (i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
