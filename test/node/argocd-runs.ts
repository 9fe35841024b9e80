import * as fs from 'node:fs';
import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { eventually, rawClient } from '../../platform/cluster';
import { BUSYBOX } from '../../platform/node-pods';
import { DOCKER_CLI, daemonRun } from './tekton-fixture';

/**
 * Runs of the team's namespace for the Argo CD tests, and what the tests read of them: their
 * sidecar pods (to see that none is replaced or restarted) and, from the API server's audit log,
 * how many times the in-cluster operator released each.
 */

/** The in-cluster operator's ServiceAccount, as the audit log names it. */
export const OPERATOR_USER = 'system:serviceaccount:pipeline-sidecars:pipeline-sidecars';

/** A run with the DockerDaemon `docker` whose one task uses the daemon, sleeps, and uses it again. */
export function sleepyDockerRun(prefix: string, seconds: number): Record<string, any> {
  return daemonRun(`${prefix}-`, `docker version --format 'before={{.Server.Version}}'\nsleep ${seconds}\ndocker version --format 'after={{.Server.Version}}'`);
}

/** A run that asks for `sidecar` and whose one task sleeps. */
export function sleepyRun(prefix: string, sidecar: string, seconds: number): Record<string, any> {
  return {
    metadata: { generateName: `${prefix}-`, annotations: { [ANNOTATIONS.sidecars]: sidecar } },
    spec: { pipelineSpec: { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: DOCKER_CLI, script: `sleep ${seconds}` }] } }] } },
  };
}

/**
 * A run that asks for `sidecar`, a WebServer whose `fixture-url` param the webhook sets to its page's
 * address, and whose one task fetches that page and prints it. It retries: the server is Ready when
 * the run is released, but its NetworkPolicy may admit the task's new pod a moment later.
 */
export function fetchingRun(prefix: string, sidecar: string): Record<string, any> {
  const script = [
    'i=0; while [ $i -lt 20 ]; do i=$((i+1))',
    '  if page=$(wget -q -T 3 -O- "$(params.fixture-url)"); then echo "fetched: $page"; exit 0; fi',
    '  sleep 1',
    'done',
    'echo "no answer from $(params.fixture-url)"; exit 1',
  ].join('\n');
  return {
    metadata: { generateName: `${prefix}-`, annotations: { [ANNOTATIONS.sidecars]: sidecar } },
    spec: {
      pipelineSpec: {
        params: [{ name: 'fixture-url' }],
        tasks: [{
          name: 'fetch', params: [{ name: 'fixture-url', value: '$(params.fixture-url)' }],
          taskSpec: { params: [{ name: 'fixture-url' }], steps: [{ name: 'fetch', image: BUSYBOX, script }] },
        }],
      },
    },
  };
}

export const runIdOf = (run: Record<string, any>): string => run.metadata.annotations[ANNOTATIONS.runId];
export const isReady = (p: any): boolean => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ?? false;

/** The sidecar pods of a run (of one sidecar, if named). */
export async function sidecarPods(ns: string, runId: string, sidecar?: string): Promise<Array<Record<string, any>>> {
  const selector = `${LABELS.runId}=${runId}${sidecar ? `,${LABELS.sidecar}=${sidecar}` : ''}`;
  return (await rawClient().get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: selector })).items;
}

/** Waits until the run is out of pending and started, with exactly one sidecar pod, Ready; returns that pod. */
export async function waitStartedWithSidecar(ns: string, run: Record<string, any>, timeoutMs = 120_000): Promise<Record<string, any>> {
  return eventually(`run ${run.metadata.name} started with its sidecar Ready`, async () => {
    const r = await rawClient().get(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${run.metadata.name}`);
    const pods = await sidecarPods(ns, runIdOf(run));
    return r.spec.status === undefined && r.status?.startTime && pods.length === 1 && isReady(pods[0]) ? pods[0] : undefined;
  }, timeoutMs, 250);
}

/**
 * Every sidecar pod (uid) each run has had, and the highest restart count seen, sampled until
 * stop(): a replaced pod shows as a second uid, a restarted container as a count above 0.
 */
export function watchSidecarPods(ns: string, runs: Array<Record<string, any>>): { stop(): Promise<{ uids: Map<string, string[]>; maxRestarts: number }> } {
  const seen = new Map<string, Set<string>>(runs.map((r) => [runIdOf(r), new Set<string>()]));
  let maxRestarts = 0;
  let watching = true;
  const loop = (async () => {
    while (watching) {
      for (const [runId, uids] of seen) {
        for (const p of await sidecarPods(ns, runId)) {
          uids.add(p.metadata.uid);
          maxRestarts = Math.max(maxRestarts, ...(p.status?.containerStatuses ?? []).map((c: any) => c.restartCount));
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    stop: async () => {
      watching = false;
      await loop;
      return { uids: new Map([...seen].map(([k, v]) => [k, [...v]])), maxRestarts };
    },
  };
}

/** How many times the operator released (unpended) a run: its 200-answered spec patches that remove spec.status. */
export function releases(auditLog: string, ns: string, runName: string): number {
  return fs.readFileSync(auditLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((e) => e.objectRef?.namespace === ns && e.objectRef?.resource === 'pipelineruns' && e.objectRef?.name === runName)
    .filter((e) => e.user.username === OPERATOR_USER && e.verb === 'patch' && e.responseStatus?.code === 200 && !e.objectRef.subresource &&
      Array.isArray(e.requestObject) && e.requestObject.some((o: any) => o.op === 'remove' && o.path === '/spec/status')).length;
}
