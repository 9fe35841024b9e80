import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { eventually, rawClient } from '../../platform/cluster';
import { ctr, podLog } from '../../platform/node';
import type { TestNode } from '../../platform/node-shared';
import { taskPodsOf, waitRunDone } from '../../platform/runs';
import { createRun } from '../operator/helpers';
import { succeededCondition } from '../../src/pipelinerun';

/**
 * The examples/ use cases as a user runs them: every object of an example directory created as
 * written (only the namespace changed), then its PipelineRun, whose logs are read back from the node.
 */

const EXAMPLES = path.join(__dirname, '..', '..', 'examples');

/** Collection paths of the kinds the examples hold (the shared REST table has no Tekton Task). */
const COLLECTIONS: Record<string, string> = {
  'pipeline-sidecars.dev/v1alpha1/PipelineSidecar': 'apis/pipeline-sidecars.dev/v1alpha1/namespaces/NS/pipelinesidecars',
  'tekton.dev/v1/Task': 'apis/tekton.dev/v1/namespaces/NS/tasks',
  'tekton.dev/v1/Pipeline': 'apis/tekton.dev/v1/namespaces/NS/pipelines',
  'v1/ConfigMap': 'api/v1/namespaces/NS/configmaps',
  'v1/Service': 'api/v1/namespaces/NS/services',
  'apps/v1/Deployment': 'apis/apps/v1/namespaces/NS/deployments',
};

/** Every object of examples/<dir>, file by file in name order. */
export function exampleObjects(dir: string): Array<Record<string, any>> {
  const full = path.join(EXAMPLES, dir);
  return fs.readdirSync(full).filter((f) => f.endsWith('.yaml')).sort()
    .flatMap((f) => parseAllDocuments(fs.readFileSync(path.join(full, f), 'utf8')).map((d) => d.toJS()))
    .filter((o) => o?.kind);
}

/** Creates everything of examples/<dir> but its PipelineRun in `ns`, and returns that run as written. */
export async function applyExample(ns: string, dir: string): Promise<Record<string, any>> {
  const objects = exampleObjects(dir);
  const runs = objects.filter((o) => o.kind === 'PipelineRun');
  if (runs.length !== 1) throw new Error(`examples/${dir} has ${runs.length} PipelineRuns, not one`);
  for (const o of objects.filter((x) => x.kind !== 'PipelineRun')) {
    const collection = COLLECTIONS[`${o.apiVersion}/${o.kind}`];
    if (!collection) throw new Error(`examples/${dir}: no collection for ${o.apiVersion} ${o.kind}`);
    await rawClient().create(`/${collection.replace('NS', ns)}`, { ...o, metadata: { ...o.metadata, namespace: ns } });
  }
  return runs[0];
}

/** A started run of an example. */
export interface StartedRun {
  readonly name: string;
  readonly runId: string;
  readonly created: number;
}

export async function startRun(ns: string, run: Record<string, any>): Promise<StartedRun> {
  const created = Date.now();
  const r = await createRun(ns, run);
  return { name: r.metadata.name, runId: r.metadata.annotations[ANNOTATIONS.runId], created };
}

/** A finished run: its object, how long it took from create, and its task logs. */
export interface FinishedRun extends StartedRun {
  readonly run: Record<string, any>;
  readonly ms: number;
  /** The logs of `step` in every pod of `task` (a matrixed task has several). */
  logs(task: string, step: string): string[];
  /** The log of `step` in the one pod of `task` ('' when it did not run). */
  log(task: string, step: string): string;
  /** Every step log of every task, for failure messages. */
  dump(): string;
}

export async function waitFinished(node: TestNode, ns: string, started: StartedRun, timeoutMs = 300_000): Promise<FinishedRun> {
  const run = await waitRunDone(ns, started.name, timeoutMs);
  const ms = Date.now() - started.created;
  const pods = await taskPodsOf(ns, started.name);
  const logs = (task: string, step: string) => pods.filter((p) => p.metadata.labels['tekton.dev/pipelineTask'] === task)
    .map((p) => podLog(node.state, ns, p.metadata.name, `step-${step}`));
  const dump = () => pods.flatMap((p) => p.spec.containers.filter((c: any) => c.name.startsWith('step-'))
    .map((c: any) => `--- ${p.metadata.labels['tekton.dev/pipelineTask']} ${c.name}\n${podLog(node.state, ns, p.metadata.name, c.name)}`)).join('\n');
  return { ...started, run, ms, logs, log: (task, step) => logs(task, step).join(''), dump };
}

/** The containerd ids of a run's sidecar containers, once all `count` pods have started. */
export async function sidecarContainers(ns: string, runId: string, count: number): Promise<string[]> {
  return eventually(`${count} sidecar containers of run ${runId} started`, async () => {
    const pods = (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `${LABELS.runId}=${runId}` })).items;
    const ids: string[] = pods.flatMap((p: any) => (p.status?.containerStatuses ?? []).map((c: any) => c.containerID).filter(Boolean));
    return pods.length === count && ids.length >= count ? ids.map((id) => id.replace('containerd://', '')) : undefined;
  }, 180_000, 100);
}

/** Waits until the run's sidecar pods are gone and the kubelet has stopped their containers; returns when (epoch ms). */
export async function waitSidecarsGone(node: TestNode, ns: string, runId: string, containers: string[]): Promise<number> {
  await eventually('the sidecar pods to be gone', async () =>
    (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `${LABELS.runId}=${runId}` })).items.length === 0, 90_000, 100);
  if (containers.length === 0) throw new Error('waitSidecarsGone: no containers to wait for (would pass on nothing)');
  await eventually('the sidecar containers to be stopped on the node', async () => {
    const running = ctr(node.state, ['containers', 'ls', '-q']);
    return containers.every((c) => !running.includes(c));
  }, 90_000, 200);
  return Date.now();
}

/** A time printed by a step as busybox `stat -c %y` prints it ("2026-12-07 15:35:45.136097578 +0000"), in epoch ms. */
export function stampMs(s: string): number {
  const m = /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,9}))? ([+-]\d\d)(\d\d)/.exec(s);
  if (!m) throw new Error(`not a stat -c %y time: ${s}`);
  return Date.parse(`${m[1]}T${m[2]}.${(m[3] ?? '0').padEnd(3, '0').slice(0, 3)}${m[4]}:${m[5]}`);
}

/** The time on the line of `log` that starts with `label` (e.g. "build-start"), in epoch ms. */
export function stampAfter(log: string, label: string): number {
  const line = log.split('\n').find((l) => l.startsWith(`${label} `));
  if (!line) throw new Error(`no "${label}" line in:\n${log}`);
  return stampMs(line);
}

/** Throws, with the Succeeded condition and every step log, unless the run succeeded. */
export function mustSucceed(done: FinishedRun): void {
  const c = succeededCondition(done.run);
  if (c.status !== 'True') throw new Error(`run ${done.name} did not succeed: ${c.reason}: ${c.message}\n${done.dump()}`);
}

export function say(message: string): void {
  process.stderr.write(`[use-cases] ${message}\n`);
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
