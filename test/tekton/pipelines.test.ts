import * as fs from 'node:fs';
import * as https from 'node:https';
import { ANNOTATIONS } from '../../constructs/api/spec';
import { Operator } from '../../src/operator';
import { clusterState, createTestNamespace, rawClient, tokenKubeConfig } from '../../platform/cluster';
import { NEVER_READY_IMAGE } from '../../platform/control-plane';
import { succeededCondition } from '../../src/pipelinerun';
import { inlineTask, taskRunsOf, waitRunDone } from '../../platform/runs';
import {
  createRun, createSidecar, deleteWebhookConfig, dockerDaemonSpec, ensureCrd, eventually, inProcessOperator, objectsOfRun,
} from '../operator/helpers';

/**
 * Where a run's Pipeline comes from (inline, a reference, a resolver), and what Tekton's webhook said
 * to every spec write the operator made, read from the API server's audit log. The operator runs as a
 * ServiceAccount of its own, so its requests are told apart from the test's. On the kwok node no step
 * runs (kwok ends each task pod as a success; `docker info` never runs): what these tests show is the
 * gate and the order with the real Tekton, not what a task did.
 */

let ns: string;
let shared: string;
let op: Operator;
let saUser: string;

/** A create that also returns the admission warnings (HTTP Warning headers) the API server sent. */
function createWithWarnings(path: string, body: unknown): Promise<{ status: number; json: any; warnings: string[] }> {
  const s = clusterState();
  return new Promise((resolve, reject) => {
    const req = https.request(`${s.server}${path}`, {
      method: 'POST', ca: fs.readFileSync(s.caFile),
      headers: { 'Authorization': `Bearer ${s.adminToken}`, 'Content-Type': 'application/json' },
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        const raw = res.headers.warning;
        const warnings = (Array.isArray(raw) ? raw : raw ? [raw] : []).flatMap((w) => w.split(/,(?=\s*299 )/));
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(text), warnings });
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('pipes', { 'pipeline-sidecars.dev/allow-privileged': 'true' });
  shared = await createTestNamespace('pipes-shared');
  // The operator's own identity: a ServiceAccount bound to cluster-admin (RBAC is tested elsewhere).
  await eventually('default ServiceAccount', () => rawClient().getOrUndefined(`/api/v1/namespaces/${ns}/serviceaccounts/default`), 20_000);
  await rawClient().create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'operator' } });
  await rawClient().create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: `${ns}-operator` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: ns }],
  });
  const tr = await rawClient().create(`/api/v1/namespaces/${ns}/serviceaccounts/operator/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  saUser = `system:serviceaccount:${ns}:operator`;
  op = inProcessOperator(ns, [ns], { kubeConfig: tokenKubeConfig(tr.status.token) });
  await op.start();
  await createSidecar(ns, 'docker-daemon', dockerDaemonSpec());
  await createSidecar(ns, 'stuck', {
    kind: 'Container', template: { containers: [{ name: 'web', image: NEVER_READY_IMAGE, readinessProbe: { httpGet: { path: '/', port: 8080 } } }] },
    ports: [{ name: 'http', port: 8080 }], lifecycle: { startupTimeout: '2s' },
  });
}, 120_000);

afterAll(async () => {
  await op?.stop();
  await deleteWebhookConfig(`ps-${ns}`);
  await rawClient().delete(`/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${ns}-operator`).catch(() => undefined);
});

/** A Pipeline that uses what the docker-daemon sidecar exposes. */
const dockerPipeline = (name: string) => ({
  apiVersion: 'tekton.dev/v1', kind: 'Pipeline', metadata: { name },
  spec: {
    params: [{ name: 'docker-host', type: 'string' }],
    workspaces: [{ name: 'docker-tls-certs' }],
    tasks: [{
      name: 'build', params: [{ name: 'docker-host', value: '$(params.docker-host)' }], workspaces: [{ name: 'docker-tls-certs', workspace: 'docker-tls-certs' }],
      taskSpec: { params: [{ name: 'docker-host' }], workspaces: [{ name: 'docker-tls-certs' }], steps: [{ name: 's', image: 'docker:27-cli', script: 'docker info' }] },
    }],
  },
});

/** Every TaskRun of the run was created after the operator released it (its started annotation). */
function expectTaskRunsAfterRelease(run: Record<string, any>, taskRuns: Array<Record<string, any>>): void {
  // The started annotation has milliseconds, creationTimestamp seconds: compare at second precision.
  const released = Math.floor(Date.parse(run.metadata.annotations[ANNOTATIONS.started]) / 1000) * 1000;
  expect(taskRuns.length).toBeGreaterThan(0);
  for (const tr of taskRuns) expect({ taskRun: tr.metadata.name, afterRelease: Date.parse(tr.metadata.creationTimestamp) >= released }).toEqual({ taskRun: tr.metadata.name, afterRelease: true });
}

test('a run whose Pipeline comes from the cluster resolver (which the webhook cannot read) is gated with its bindings anyway and a warning naming them; Tekton creates its TaskRun only after the release, with the binding, and completes the run', async () => {
  await rawClient().create(`/apis/tekton.dev/v1/namespaces/${shared}/pipelines`, dockerPipeline('shared-build'));
  const res = await createWithWarnings(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns`, {
    apiVersion: 'tekton.dev/v1', kind: 'PipelineRun',
    metadata: { generateName: 'resolved-', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon' } },
    spec: { pipelineRef: { resolver: 'cluster', params: [{ name: 'kind', value: 'pipeline' }, { name: 'name', value: 'shared-build' }, { name: 'namespace', value: shared }] } },
  });
  expect(res.status).toBe(201);
  const run = res.json;
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  expect(run.spec.status).toBe('PipelineRunPending');
  expect(run.spec.params).toEqual([{ name: 'docker-host', value: `tcp://docker-daemon-${runId}.${ns}.svc:2376` }]);
  expect(run.spec.workspaces).toEqual([{ name: 'docker-tls-certs', secret: { secretName: `docker-daemon-${runId}-client` } }]);
  const warning = res.warnings.find((w) => w.includes('pipeline-sidecars'));
  expect(warning).toContain('param docker-host, workspace docker-tls-certs');
  expect(warning).toContain('declare them in the Pipeline');
  const done = await waitRunDone(ns, run.metadata.name, 60_000);
  expect(succeededCondition(done)).toMatchObject({ status: 'True' });
  // Tekton resolved the Pipeline, created the TaskRun only once the operator had released the run,
  // and passed it the certificate binding.
  const trs = await taskRunsOf(ns, run.metadata.name);
  expectTaskRunsAfterRelease(done, trs);
  expect(trs[0].spec.workspaces).toContainEqual({ name: 'docker-tls-certs', secret: { secretName: `docker-daemon-${runId}-client` } });
  await eventually('its sidecars to go', async () => (await objectsOfRun(ns, runId)).length === 0, 5_000);
});

test('inline pipelineSpec, pipelineRef and generateName runs are all gated for their sidecars, and Tekton creates their TaskRuns only after the release and completes them', async () => {
  await rawClient().create(`/apis/tekton.dev/v1/namespaces/${ns}/pipelines`, dockerPipeline('local-build'));
  const runs = await Promise.all([
    createRun(ns, { metadata: { generateName: 'inline-', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon' } }, spec: { pipelineSpec: { tasks: [inlineTask('t', { script: 'echo $(sidecars.docker-daemon.address)' })] } } }),
    createRun(ns, { metadata: { name: 'by-ref', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon' } }, spec: { pipelineRef: { name: 'local-build' } } }),
  ]);
  // The inline reference was substituted at CREATE, inside the task's script.
  expect(runs[0].spec.pipelineSpec.tasks[0].taskSpec.steps[0].script).toBe(`echo docker-daemon-${runs[0].metadata.annotations[ANNOTATIONS.runId]}.${ns}.svc:2376`);
  for (const r of runs) {
    expect(r.spec.status).toBe('PipelineRunPending');
    const done = await waitRunDone(ns, r.metadata.name, 60_000);
    expect(succeededCondition(done)).toMatchObject({ status: 'True' });
    expectTaskRunsAfterRelease(done, await taskRunsOf(ns, r.metadata.name));
  }
});

test('Tekton\'s webhook accepted every spec write the operator sent, and each changed spec.status only (audit log)', async () => {
  // One run the operator starts, one it cancels (its sidecar misses a 2 s start-up timeout).
  const started = await createRun(ns, { metadata: { generateName: 'audit-ok-', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon' } }, spec: { pipelineSpec: { tasks: [inlineTask('t')] } } });
  const stuck = await createRun(ns, { metadata: { generateName: 'audit-stuck-', annotations: { [ANNOTATIONS.sidecars]: 'stuck' } }, spec: { pipelineSpec: { tasks: [inlineTask('t')] } } });
  await waitRunDone(ns, started.metadata.name, 60_000);
  expect(succeededCondition(await waitRunDone(ns, stuck.metadata.name, 60_000)).reason).toBe('Cancelled');
  // Negative control: a spec change that Tekton refuses shows in the same log with its 400.
  await rawClient().mergePatch(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${started.metadata.name}`, { spec: { params: [{ name: 'x', value: 'y' }] } }).catch(() => undefined);

  const entries = await eventually('the audit entries', async () => {
    const lines = fs.readFileSync(clusterState().auditLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const ours = lines.filter((e) => e.objectRef?.namespace === ns && e.objectRef?.resource === 'pipelineruns');
    return ours.some((e) => e.user.username !== saUser && e.responseStatus?.code === 400) ? ours : undefined;
  }, 10_000);
  const byOperator = entries.filter((e) => e.user.username === saUser);
  const specWrites = byOperator.filter((e) => !e.objectRef.subresource);
  expect(specWrites.length).toBeGreaterThanOrEqual(2);
  for (const e of specWrites) {
    // 200, or 422 when the guard found the run no longer pending (a repeat from a cache a moment
    // behind): the API server's own JSON Patch test, never a refusal by Tekton's webhook (400).
    const code = e.responseStatus.code;
    const outcome = code === 422 && e.responseStatus.reason === 'Invalid' && e.requestObject?.[0]?.op === 'test' ? 'guard failed' : code;
    expect(e.verb).toBe('patch');
    expect([200, 'guard failed']).toContain(outcome);
    // Guarded JSON patches that touch spec.status and our annotations, nothing else.
    const ops: Array<{ op: string; path: string }> = e.requestObject;
    expect(ops[0]).toMatchObject({ op: 'test', path: '/spec/status', value: 'PipelineRunPending' });
    for (const o of ops) expect(o.path === '/spec/status' || o.path.startsWith('/metadata/annotations')).toBe(true);
  }
  const values = specWrites.map((e) => e.requestObject.find((o: any) => o.path === '/spec/status' && o.op !== 'test'));
  expect(values.some((o: any) => o.op === 'remove')).toBe(true); // an unpend
  expect(values.some((o: any) => o.op === 'replace' && o.value === 'Cancelled')).toBe(true); // a cancel
  const refused = entries.filter((e) => e.user.username !== saUser && e.responseStatus?.code === 400);
  expect(refused[0].responseStatus.message).toMatch(/validation.webhook.pipeline.tekton.dev.*no updates are allowed/);
});
