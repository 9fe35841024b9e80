import * as http from 'node:http';
import { API_VERSION, ANNOTATIONS, KIND } from '../../constructs/api/spec';
import { MAX_SPEC_BYTES } from '../../constructs/validate';
import { ApiError } from '../../src/k8s/raw';
import { collectionPath } from '../../src/k8s/resources';
import { Operator } from '../../src/operator';
import { specOfSize } from '../constructs/fixtures';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { createRun, createSidecar, deleteWebhookConfig, ensureCrd, eventsFor, eventually, getRun, inProcessOperator, objectsOfRun } from './helpers';

let ns: string;
let op: Operator;

const inline = { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] };
const goodSpec = { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] };

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try { await p; } catch (e) { if (e instanceof ApiError) return e; throw e; }
  throw new Error('expected the API server to reject the request, but it was accepted');
}

async function sidecarStatus(name: string): Promise<any> {
  return (await rawClient().get(`${collectionPath(API_VERSION, KIND, ns)}/${name}`)).status;
}

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('bad'); // not labelled allow-privileged
  op = inProcessOperator(ns, [ns], { healthPort: 0 });
  await op.start();
  await createSidecar(ns, 'redis', goodSpec);
});

afterAll(async () => {
  await op?.stop();
  await deleteWebhookConfig(`ps-${ns}`);
});

/** A healthy run alongside every bad one: it must start regardless. */
async function goodRunStarts(): Promise<void> {
  const r = await createRun(ns, { metadata: { generateName: 'good-', annotations: { [ANNOTATIONS.sidecars]: 'redis' } }, spec: { pipelineSpec: inline } });
  await eventually(`good run ${r.metadata.name} to start`, async () => (await getRun(ns, r.metadata.name)).spec.status === undefined, 20_000);
}

test('a run asking for an unknown sidecar is rejected at CREATE, naming it', async () => {
  const e = await rejection(createRun(ns, { metadata: { generateName: 'unknown-', annotations: { [ANNOTATIONS.sidecars]: 'redis,postgress' } }, spec: { pipelineSpec: inline } }));
  expect(e.message).toContain('"postgress"');
  expect(e.message).toContain('does not exist');
  expect(e.message).toContain('existing: redis');
  // Referencing one only through $(sidecars.*) counts as asking, too.
  const e2 = await rejection(createRun(ns, { metadata: { generateName: 'ref-' }, spec: { pipelineSpec: inline, params: [{ name: 'h', value: '$(sidecars.mysql.host)' }] } }));
  expect(e2.message).toContain('"mysql"');
  await goodRunStarts();
});

test('bad ports and a missing image: rejected by the schema where it can tell, a status condition where only the operator can', async () => {
  // Out-of-range port: the CRD schema rejects it at once.
  const e = await rejection(createSidecar(ns, 'badport', { ...goodSpec, ports: [{ name: 'redis', port: 70000 }] }));
  expect(e.message).toMatch(/spec\.ports\[0\]\.port.*65535/);
  // The same port number twice: CEL.
  const e2 = await rejection(createSidecar(ns, 'dupport', { ...goodSpec, ports: [{ name: 'a', port: 6379 }, { name: 'b', port: 6379 }] }));
  expect(e2.message).toContain('each port number (per protocol) may be listed once');

  // A port name that is not an IANA service name, and a container without image: accepted, reported in status.
  await createSidecar(ns, 'badname', { ...goodSpec, ports: [{ name: 'Redis_Port', port: 6379 }] });
  await createSidecar(ns, 'noimage', { kind: 'Container', template: { containers: [{ name: 'redis' }] }, ports: [{ name: 'redis', port: 6379 }] });
  const s1 = await eventually('badname status', async () => (await sidecarStatus('badname'))?.conditions, 10_000);
  const valid1 = s1.find((c: any) => c.type === 'Valid');
  expect(valid1).toMatchObject({ status: 'False', reason: 'SpecInvalid' });
  expect(valid1.message).toContain('spec.ports[0].name');
  const s2 = await eventually('noimage status', async () => (await sidecarStatus('noimage'))?.conditions, 10_000);
  expect(s2.find((c: any) => c.type === 'Valid').message).toContain('spec.template.containers[0].image: is missing');
  expect(s2.find((c: any) => c.type === 'Ready').status).toBe('False');
  const good = await eventually('redis status', async () => (await sidecarStatus('redis'))?.conditions, 10_000);
  expect(good.find((c: any) => c.type === 'Ready').status).toBe('True');

  // A run asking for an invalid sidecar is rejected at CREATE with the same words.
  const e3 = await rejection(createRun(ns, { metadata: { generateName: 'noimg-', annotations: { [ANNOTATIONS.sidecars]: 'noimage' } }, spec: { pipelineSpec: inline } }));
  expect(e3.message).toContain('image: is missing');

  // Fixing the spec flips the condition.
  await rawClient().mergePatch(`${collectionPath(API_VERSION, KIND, ns)}/noimage`, { spec: { template: { containers: [{ name: 'redis', image: 'redis:7' }] } } });
  await eventually('noimage to become valid', async () => (await sidecarStatus('noimage'))?.conditions?.find((c: any) => c.type === 'Valid' && c.status === 'True'), 10_000);
  await goodRunStarts();
});

test('an over-long PipelineSidecar name is rejected with the limit and the reason', async () => {
  const e = await rejection(createSidecar(ns, 'a-very-long-sidecar-name-that-does-not-fit-in-names', goodSpec));
  expect(e.message).toContain('at most 45 characters');
  await goodRunStarts();
});

test('a privileged sidecar in a namespace without allow-privileged: Event naming the fix, run cancelled, others unaffected', async () => {
  await createSidecar(ns, 'dind', { kind: 'DockerDaemon', lifecycle: { startupTimeout: '60s' } });
  const run = await createRun(ns, { metadata: { generateName: 'priv-', annotations: { [ANNOTATIONS.sidecars]: 'dind' } }, spec: { pipelineSpec: inline } });
  const ev = await eventually('a SidecarRefused event', async () => (await eventsFor(ns, run.metadata.name)).find((x) => x.reason === 'SidecarRefused'), 10_000);
  expect(ev.type).toBe('Warning');
  expect(ev.message).toContain('privileged');
  expect(ev.message).toContain('pipeline-sidecars.dev/allow-privileged=true');
  // The Event is written just before the cancel patch it announces.
  await eventually('the run to be cancelled', async () => (await getRun(ns, run.metadata.name)).spec.status === 'Cancelled', 5_000);
  expect(await objectsOfRun(ns, run.metadata.annotations[ANNOTATIONS.runId])).toEqual([]);
  await goodRunStarts();

  // Negative control: with the namespace labelled, the same sidecar is allowed, and its objects are applied.
  await rawClient().mergePatch(`/api/v1/namespaces/${ns}`, { metadata: { labels: { 'pipeline-sidecars.dev/allow-privileged': 'true' } } });
  try {
    const allowed = await eventually('a privileged run to get its objects once the namespace allows it', async () => {
      const r = await createRun(ns, { metadata: { generateName: 'priv-ok-', annotations: { [ANNOTATIONS.sidecars]: 'dind' } }, spec: { pipelineSpec: inline } });
      const id = r.metadata.annotations[ANNOTATIONS.runId];
      const got = await eventually(`objects of ${r.metadata.name} or a refusal`, async () => {
        if ((await objectsOfRun(ns, id)).some((o) => o.startsWith('Deployment/'))) return 'applied';
        return (await eventsFor(ns, r.metadata.name)).some((x) => x.reason === 'SidecarRefused') ? 'refused' : undefined;
      }, 15_000);
      return got === 'applied' ? r : undefined;
    }, 45_000, 500);
    expect((await eventsFor(ns, allowed.metadata.name)).map((x) => x.reason)).not.toContain('SidecarRefused');
  } finally {
    await rawClient().mergePatch(`/api/v1/namespaces/${ns}`, { metadata: { labels: { 'pipeline-sidecars.dev/allow-privileged': null } } });
  }
});

test('an API error while applying (a quota forbids Services) is reported on the run, and the run starts once it is lifted', async () => {
  const quotas = `/api/v1/namespaces/${ns}/resourcequotas`;
  await rawClient().create(quotas, { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'no-services' }, spec: { hard: { services: '0' } } });
  // The quota admits everything until the quota controller has filled in its status.
  await eventually('the quota to be enforced', async () => (await rawClient().get(`${quotas}/no-services`)).status?.hard?.services === '0', 10_000);
  try {
    const run = await createRun(ns, { metadata: { generateName: 'quota-', annotations: { [ANNOTATIONS.sidecars]: 'redis' } }, spec: { pipelineSpec: inline } });
    const ev = await eventually('a SidecarApplyFailed event', async () => (await eventsFor(ns, run.metadata.name)).find((e) => e.reason === 'SidecarApplyFailed'), 15_000);
    expect(ev.type).toBe('Warning');
    expect(ev.message).toContain('exceeded quota');
    expect((await getRun(ns, run.metadata.name)).spec.status).toBe('PipelineRunPending');
    await rawClient().delete(`${quotas}/no-services`);
    await eventually('the run to start after the quota is gone', async () => (await getRun(ns, run.metadata.name)).spec.status === undefined, 30_000);
  } finally {
    await rawClient().delete(`${quotas}/no-services`).catch(() => undefined);
  }
});

test('the operator is still up and healthy after all of it', async () => {
  expect(op.isLeader).toBe(true);
  const body = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: op.healthPort, path: '/metrics' }, (res) => {
      let s = ''; res.on('data', (c) => (s += c)); res.on('end', () => resolve(`${res.statusCode}\n${s}`));
    }).on('error', reject);
  });
  expect(body.startsWith('200')).toBe(true);
  for (const path of ['/healthz', '/readyz']) {
    const code = await new Promise<number | undefined>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: op.healthPort, path }, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
    });
    expect({ path, code }).toEqual({ path, code: 200 });
  }
  expect(body).toContain('pipeline_sidecars_reconcile_duration_seconds_bucket');
  expect(body).toMatch(/pipeline_sidecars_admissions_total\{result="rejected"\} [1-9]/);
  expect(body).toMatch(/pipeline_sidecars_errors_total\{reason="refused"\} [1-9]/);
});

test('a spec too large for the operator to carry: the largest allowed is applied and its run starts; one byte more is Valid=False naming its size and the limit, and a run asking for it is refused at CREATE', async () => {
  // The largest: the API server takes its objects, each with the spec's copy in an annotation.
  await createSidecar(ns, 'big-ok', specOfSize(MAX_SPEC_BYTES));
  const ok = await createRun(ns, { metadata: { generateName: 'big-ok-', annotations: { [ANNOTATIONS.sidecars]: 'big-ok' } }, spec: { pipelineSpec: inline } });
  await eventually(`run ${ok.metadata.name} to start`, async () => (await getRun(ns, ok.metadata.name)).spec.status === undefined, 30_000);
  expect(await objectsOfRun(ns, ok.metadata.annotations[ANNOTATIONS.runId])).toContain(`Deployment/big-ok-${ok.metadata.annotations[ANNOTATIONS.runId]}`);

  // One byte more: accepted by the CRD (it cannot measure a spec), reported by the operator.
  const over = MAX_SPEC_BYTES + 1;
  await createSidecar(ns, 'big-over', specOfSize(over));
  const status = await eventually('big-over status', async () => (await sidecarStatus('big-over'))?.conditions, 10_000);
  const valid = status.find((c: any) => c.type === 'Valid');
  expect(valid).toMatchObject({ status: 'False', reason: 'SpecInvalid' });
  expect(valid.message).toContain(`is ${over.toLocaleString('en-US')} bytes as JSON, over the limit of ${MAX_SPEC_BYTES.toLocaleString('en-US')}`);
  const e = await rejection(createRun(ns, { metadata: { generateName: 'big-over-', annotations: { [ANNOTATIONS.sidecars]: 'big-over' } }, spec: { pipelineSpec: inline } }));
  expect(e.message).toContain('bytes as JSON, over the limit');
  expect(e.message).toContain('valueFrom');
});
