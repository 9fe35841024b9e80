import { setTimeout as sleep } from 'node:timers/promises';
import type { RawClient } from '../src/k8s/raw';
import { isDone, succeededCondition } from '../src/pipelinerun';
import { rawClient } from './cluster';
import { TASK_LABELS, TEKTON_IMAGES } from './tekton';

/**
 * Helpers for tests that drive real Tekton runs on the kwok node: tasks whose pods end the way a
 * test says (see taskRunPodStage), and readers of what Tekton did. They act only through the API
 * server, as a user or Tekton would; `client` defaults to the test cluster's admin client (bench and
 * chaos pass their own).
 */

/** How a task's pod ends: exit code (default 0), or held running until releaseTasks (or forever). */
export interface TaskBehaviour {
  readonly exitCode?: number;
  readonly hold?: boolean;
}

/** The labels that make a task's pod behave so (put on a taskSpec's metadata, or on a whole run). */
export function behaviourLabels(b: TaskBehaviour = {}): Record<string, string> {
  return {
    ...(b.exitCode ? { [TASK_LABELS.exitCode]: String(b.exitCode) } : {}),
    ...(b.hold ? { [TASK_LABELS.hold]: 'true' } : {}),
  };
}

/**
 * An inline pipeline task with one `script` step (a step with neither script nor command would
 * make Tekton ask the image's registry for its entrypoint).
 */
export function inlineTask(name: string, b: TaskBehaviour & { readonly runAfter?: string[]; readonly script?: string } = {}): Record<string, any> {
  return {
    name,
    ...(b.runAfter ? { runAfter: b.runAfter } : {}),
    taskSpec: {
      metadata: { labels: behaviourLabels(b) },
      steps: [{ name: 'main', image: TEKTON_IMAGES.shell, script: b.script ?? `echo ${name}` }],
    },
  };
}

/** A Task object (for pipelines that use taskRef) with one script step. */
export function scriptTask(name: string, workspaces: string[] = [], b: TaskBehaviour = {}): Record<string, any> {
  return {
    apiVersion: 'tekton.dev/v1', kind: 'Task',
    metadata: { name, labels: behaviourLabels(b) },
    spec: {
      ...(workspaces.length ? { workspaces: workspaces.map((w) => ({ name: w })) } : {}),
      steps: [{ name: 'main', image: TEKTON_IMAGES.shell, script: `echo ${name}` }],
    },
  };
}

export async function createTask(ns: string, task: Record<string, any>): Promise<Record<string, any>> {
  return rawClient().create(`/apis/tekton.dev/v1/namespaces/${ns}/tasks`, { ...task, metadata: { ...task.metadata, namespace: ns } });
}

export async function readRun(ns: string, name: string): Promise<Record<string, any>> {
  return rawClient().get(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`);
}

/** Waits for Tekton to finish the run (Succeeded True or False) and returns it. */
export async function waitRunDone(ns: string, name: string, timeoutMs = 60_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  let run: Record<string, any> = {};
  while (Date.now() < deadline) {
    run = await readRun(ns, name);
    if (isDone(run)) return run;
    await sleep(50);
  }
  throw new Error(`run ${ns}/${name} not done after ${timeoutMs} ms: ${JSON.stringify(succeededCondition(run))}`);
}

/** The TaskRuns Tekton created for a run, oldest first. */
export async function taskRunsOf(ns: string, runName: string): Promise<Array<Record<string, any>>> {
  const list = await rawClient().get(`/apis/tekton.dev/v1/namespaces/${ns}/taskruns`, { labelSelector: `tekton.dev/pipelineRun=${runName}` });
  return (list.items ?? []).sort((a: any, b: any) => Date.parse(a.metadata.creationTimestamp) - Date.parse(b.metadata.creationTimestamp));
}

/** The TaskRun pods Tekton created for a run. */
export async function taskPodsOf(ns: string, runName: string, client: RawClient = rawClient()): Promise<Array<Record<string, any>>> {
  const list = await client.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `tekton.dev/pipelineRun=${runName},tekton.dev/taskRun` });
  return list.items ?? [];
}

/**
 * Lets the held task pods of a run finish (the kwok stage ends them once the hold label is gone),
 * with `exitCode` when given (non-zero fails the task).
 */
export async function releaseTasks(ns: string, runName: string, opts: { exitCode?: number; client?: RawClient } = {}): Promise<number> {
  const client = opts.client ?? rawClient();
  const pods = await taskPodsOf(ns, runName, client);
  const held = pods.filter((p) => p.metadata.labels?.[TASK_LABELS.hold]);
  const labels = { [TASK_LABELS.hold]: null, ...(opts.exitCode ? { [TASK_LABELS.exitCode]: String(opts.exitCode) } : {}) };
  for (const p of held) await client.mergePatch(`/api/v1/namespaces/${ns}/pods/${p.metadata.name}`, { metadata: { labels } });
  return held.length;
}
