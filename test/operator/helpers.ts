import * as fs from 'node:fs';
import * as path from 'node:path';
import { API_VERSION, KIND, LABELS } from '../../constructs/api/spec';
import { pipelineSidecarCrd } from '../../constructs/api/crd';
import { WEBHOOK_PATH } from '../../constructs/api/webhook-config';
import { RawClient } from '../../src/k8s/raw';
import { collectionPath, objectPath } from '../../src/k8s/resources';
import { createLogger } from '../../src/log';
import { Operator, OperatorOptions } from '../../src/operator';
import { OWNED_KINDS } from '../../src/cleanup';
import { applyAll } from '../../platform/bootstrap';
import { createTestNamespace, eventually, rawClient, testKubeConfig } from '../../platform/cluster';

export { eventually };

/** Where test files' operator logs go: the repo's ignored .work/, one folder per test file. */
export const TEST_LOGS_ROOT = path.join(__dirname, '..', '..', '.work', 'test-logs');

/**
 * The calling test file's folder of operator logs (created). The failure reporter removes it when
 * every test of the file passed, so only the logs of failures stay to be read.
 */
export function testLogDir(): string {
  const testPath: string | undefined = typeof expect === 'undefined' ? undefined : expect.getState().testPath;
  const dir = path.join(TEST_LOGS_ROOT, testPath ? path.relative(path.join(__dirname, '..', '..'), testPath).replace(/[\\/]/g, '__') : 'unknown');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
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
