import * as fs from 'node:fs';
import * as path from 'node:path';
import { API_VERSION, KIND, LABELS } from '../../constructs/api/spec';
import { pipelineSidecarCrd } from '../../constructs/api/crd';
import { WEBHOOK_PATH } from '../../constructs/api/webhook-config';
import { RawClient } from '../../src/k8s/raw';
import { collectionPath, objectPath } from '../../src/k8s/resources';
import { createLogger } from '../../src/log';
import type { Controller } from '../../src/controller';
import { Operator, OperatorOptions } from '../../src/operator';
import { OWNED_KINDS } from '../../src/cleanup';
import { applyAll } from '../../platform/bootstrap';
import { createTestNamespace, eventually, rawClient, testKubeConfig } from '../../platform/cluster';
import { operatorLogDir } from '../../platform/work-dir';

export { eventually };

/** Where test files' operator logs go: the repo's ignored .work/, one folder per test file. */
/** The calling test file's folder of operator logs (created), removed by the failure reporter when every test of the file passed. */
export function testLogDir(): string {
  return operatorLogDir();
}

/** Installs our CRD from its one definition (idempotent: server-side apply). */
export async function ensureCrd(): Promise<void> {
  await applyAll(rawClient(), [pipelineSidecarCrd()], 'pipeline-sidecars-tests');
}

/** Webhook options that route only runs of `namespaces` to this operator, so parallel tests don't meet. */
export function testWebhook(configName: string, namespaces: string[]): OperatorOptions['webhook'] {
  return {
    port: 0, bindAddress: '127.0.0.1', url: `https://127.0.0.1:{port}${WEBHOOK_PATH}`, register: true, configName,
    certHosts: ['127.0.0.1'],
    namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: namespaces }] },
  };
}

/** An in-process operator serving only `namespaces`, logging to a file. */
export function inProcessOperator(name: string, namespaces: string[], extra: Partial<OperatorOptions> = {}): Operator {
  const file = path.join(testLogDir(), `${name}.log`);
  const log = createLogger({ level: 'debug', write: (line) => fs.appendFileSync(file, line + '\n'), fields: { op: name } });
  return new Operator({
    kubeConfig: testKubeConfig(),
    namespace: namespaces[0],
    webhook: testWebhook(`ps-${name}`, namespaces),
    watchNamespaces: namespaces,
    startupTimeoutDefault: '60s',
    sweepIntervalMs: 2000,
    log,
    ...extra,
  });
}

export async function deleteWebhookConfig(name: string): Promise<void> {
  await rawClient().delete(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`).catch(() => undefined);
}

export async function createSidecar(ns: string, name: string, spec: Record<string, unknown>): Promise<Record<string, any>> {
  return rawClient().create(collectionPath(API_VERSION, KIND, ns), { apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace: ns }, spec });
}

export async function createPipeline(ns: string, pipeline: Record<string, any>): Promise<Record<string, any>> {
  return rawClient().create(collectionPath('tekton.dev/v1', 'Pipeline', ns), { apiVersion: 'tekton.dev/v1', kind: 'Pipeline', ...pipeline, metadata: { ...pipeline.metadata, namespace: ns } });
}

export async function createRun(ns: string, run: Record<string, any>, client: RawClient = rawClient()): Promise<Record<string, any>> {
  return client.create(collectionPath('tekton.dev/v1', 'PipelineRun', ns), { apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', ...run, metadata: { ...run.metadata, namespace: ns } });
}

export async function getRun(ns: string, name: string): Promise<Record<string, any>> {
  return rawClient().get(objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name, namespace: ns } }));
}

/** Every object of a run id, as `Kind/name`, listed from the server (not from any cache). */
export async function objectsOfRun(ns: string, runId: string): Promise<string[]> {
  const out: string[] = [];
  for (const k of OWNED_KINDS) {
    const list = await rawClient().get(collectionPath(k.apiVersion, k.kind, ns), { labelSelector: `${LABELS.runId}=${runId}` });
    for (const o of list.items ?? []) out.push(`${k.kind}/${o.metadata.name}`);
  }
  return out.sort();
}

/** All objects the operator manages in a namespace. */
export async function managedObjects(ns: string): Promise<Array<Record<string, any>>> {
  const out: Array<Record<string, any>> = [];
  for (const k of OWNED_KINDS) {
    const list = await rawClient().get(collectionPath(k.apiVersion, k.kind, ns), { labelSelector: `${LABELS.managedBy}=pipeline-sidecars,${LABELS.runId}` });
    for (const o of list.items ?? []) out.push({ apiVersion: k.apiVersion, kind: k.kind, ...o });
  }
  return out;
}

export async function eventsFor(ns: string, runName: string): Promise<Array<Record<string, any>>> {
  const list = await rawClient().get(collectionPath('v1', 'Event', ns), { fieldSelector: `involvedObject.name=${runName}` });
  return list.items ?? [];
}

/**
 * A Pipeline shaped like TEP-0130's example: git-clone → docker-build → pytest → docker-push (when
 * pytest Succeeded). Every step sets `script` (a step without one makes Tekton ask the image's
 * registry for its entrypoint). On the kwok node the steps run nothing, so no task emits results and
 * the Pipeline declares none.
 */
export function tepPipeline(name = 'ci-with-docker-build'): Record<string, any> {
  const dockerHostEnv = [{ name: 'DOCKER_HOST', value: '$(params.docker-host)' }, { name: 'DOCKER_CERT_PATH', value: '$(workspaces.docker-tls-certs.path)' }, { name: 'DOCKER_TLS_VERIFY', value: '1' }];
  return {
    metadata: { name },
    spec: {
      params: [{ name: 'image', type: 'string' }, { name: 'docker-host', type: 'string' }],
      workspaces: [{ name: 'source' }, { name: 'docker-tls-certs' }],
      tasks: [
        {
          name: 'git-clone', workspaces: [{ name: 'output', workspace: 'source' }],
          taskSpec: { workspaces: [{ name: 'output' }], steps: [{ name: 'clone', image: 'docker.io/library/docker', script: 'printf "FROM scratch\\n" > $(workspaces.output.path)/Dockerfile' }] },
        },
        {
          name: 'docker-build', runAfter: ['git-clone'],
          params: [{ name: 'image', value: '$(params.image)' }, { name: 'docker-host', value: '$(params.docker-host)' }],
          workspaces: [{ name: 'source', workspace: 'source' }, { name: 'docker-tls-certs', workspace: 'docker-tls-certs' }],
          taskSpec: {
            params: [{ name: 'image' }, { name: 'docker-host' }], workspaces: [{ name: 'source' }, { name: 'docker-tls-certs' }],
            steps: [{ name: 'build', image: 'docker.io/library/docker', workingDir: '$(workspaces.source.path)', script: 'docker build -f ./Dockerfile -t $(params.image) .', env: dockerHostEnv }],
          },
        },
        {
          name: 'pytest', runAfter: ['docker-build'],
          params: [{ name: 'image', value: '$(params.image)' }, { name: 'docker-host', value: '$(params.docker-host)' }],
          workspaces: [{ name: 'docker-tls-certs', workspace: 'docker-tls-certs' }],
          taskSpec: {
            params: [{ name: 'image' }, { name: 'docker-host' }], workspaces: [{ name: 'docker-tls-certs' }],
            steps: [{ name: 'pytest', image: 'docker.io/library/docker', script: 'docker run $(params.image) python -m pytest', env: dockerHostEnv }],
          },
        },
        {
          // TEP-0130 guards the push with `when: $(tasks.pytest.status) in [Succeeded]`; Tekton accepts
          // a task's execution status only in finally tasks, and runAfter already means "pytest succeeded".
          name: 'docker-push', runAfter: ['pytest'],
          params: [{ name: 'image', value: '$(params.image)' }, { name: 'docker-host', value: '$(params.docker-host)' }],
          workspaces: [{ name: 'docker-tls-certs', workspace: 'docker-tls-certs' }],
          taskSpec: {
            params: [{ name: 'image' }, { name: 'docker-host' }], workspaces: [{ name: 'docker-tls-certs' }],
            steps: [{ name: 'push', image: 'docker.io/library/docker', script: 'docker push $(params.image)', env: dockerHostEnv }],
          },
        },
      ],
    },
  };
}

/** The TEP's docker-daemon as a PipelineSidecar. */
export function dockerDaemonSpec(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'DockerDaemon',
    dockerDaemon: { tls: true, storageDriver: 'overlay2' },
    expose: { params: [{ name: 'docker-host', value: 'tcp://$(host):2376' }], workspace: 'docker-tls-certs' },
    lifecycle: { startupTimeout: '60s', onSidecarFailure: 'Cancel' },
    ...extra,
  };
}

export { setTimeout as sleep } from 'node:timers/promises';

/** A label of meaning to nobody: changing it makes the operator's informer deliver the object anew. */
export const NUDGE_LABEL = 'tests.pipeline-sidecars.example/nudge';

/**
 * What makes a check that the operator did nothing meaningful: a pass of the leading controller
 * over queue key `key` (`run:<ns>/<name>`, `crash:<ns>/<runId>/<sidecar>`) that began once the
 * controller's cache held the object at `path` as it is now, finished without error. The object gets a
 * new NUDGE_LABEL value (the informer event that queues the key), and the pass counts only if the
 * cached object (`cached`) carried that value when it began: it then saw every change made before the
 * call. It listens through Controller.onPass, which every pass reports to.
 */
export async function passedOver(op: Operator, key: string, path: string, cached: (c: Controller) => Record<string, any> | undefined, timeoutMs = 30_000): Promise<void> {
  const ctrl = op.controller;
  if (!ctrl) throw new Error(`no controller: this replica does not lead, so nothing would handle ${key}`);
  const token = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  // Passes over one key never overlap (the queue hands a key to one worker at a time), so the
  // freshness seen at 'begin' belongs to the next 'done'.
  let fresh = false;
  let passed = false;
  const stop = ctrl.onPass((k, phase) => {
    if (k !== key) return;
    if (phase === 'begin') fresh = cached(ctrl)?.metadata?.labels?.[NUDGE_LABEL] === token;
    else if (phase === 'done' && fresh) passed = true;
  });
  try {
    await rawClient().mergePatch(path, { metadata: { labels: { [NUDGE_LABEL]: token } } });
    await eventually(`a pass of the controller over ${key} that saw the object as it is now`, async () => passed, timeoutMs, 20);
  } finally {
    stop();
  }
}

/**
 * Passes of the leading controller over queue keys that start with `prefix`, from now until stop():
 * how many began, and how many are running. A key the informers queue while a worker is free is
 * taken at once (its pass begins in the same turn), so `running === 0` read after the informer
 * delivered an event means the passes that event caused are done.
 */
export function watchPasses(op: Operator, prefix: string): { readonly began: number; readonly running: number; stop(): void } {
  const ctrl = op.controller;
  if (!ctrl) throw new Error(`no controller: this replica does not lead, so nothing would handle ${prefix}*`);
  const counts = { began: 0, running: 0 };
  const stop = ctrl.onPass((k, phase) => {
    if (!k.startsWith(prefix)) return;
    if (phase === 'begin') { counts.began++; counts.running++; } else counts.running--;
  });
  return {
    get began() { return counts.began; },
    get running() { return counts.running; },
    stop,
  };
}

/** passedOver for the health check of a sidecar pod (queued when a container of it has died). */
export function healthCheckedNow(op: Operator, pod: Record<string, any>, timeoutMs?: number): Promise<void> {
  const { namespace: ns, name, labels } = pod.metadata;
  return passedOver(op, `crash:${ns}/${labels[LABELS.runId]}/${labels[LABELS.sidecar]}`, `/api/v1/namespaces/${ns}/pods/${name}`, (c) => c.caches.pods.get(ns, name), timeoutMs);
}

/** passedOver for run `ns/name`: once it resolves, the controller has acted on everything about the run so far. */
export function reconciledNow(op: Operator, ns: string, name: string, timeoutMs?: number): Promise<void> {
  return passedOver(op, `run:${ns}/${name}`, `/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`, (c) => c.caches.runs.get(ns, name), timeoutMs);
}

/** A test namespace served by an in-process operator (the harness's real Tekton serves every namespace). */
export interface ServedOperator { readonly ns: string; readonly op: Operator }

export async function startServedOperator(prefix: string, labels: Record<string, string> = {}, extra: Partial<OperatorOptions> = {}): Promise<ServedOperator> {
  await ensureCrd();
  const ns = await createTestNamespace(prefix, labels);
  const op = inProcessOperator(ns, [ns], extra);
  await op.start();
  return { ns, op };
}

export async function stopServedOperator(fx: ServedOperator | undefined): Promise<void> {
  if (!fx) return;
  await fx.op.stop();
  await deleteWebhookConfig(`ps-${fx.ns}`);
}
