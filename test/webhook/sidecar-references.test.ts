import { ANNOTATIONS, PipelineSidecarResource } from '../../constructs/api/spec';
import { WEBHOOK_PATH } from '../../constructs/api/webhook-config';
import { defaultKinds } from '../../constructs/kinds';
import { admitPipelineRun } from '../../src/admission';
import { invalidSidecarReferences } from '../../src/substitute';
import { WebhookServer } from '../../src/webhook';
import { createTestNamespace, eventually } from '../../platform/cluster';
import { createRun, createSidecar, deleteWebhookConfig, ensureCrd } from '../operator/helpers';
import { webhookServer } from './fixtures';

const kinds = defaultKinds();
const cache: PipelineSidecarResource = { apiVersion: 'pipeline-sidecars.dev/v1alpha1', kind: 'PipelineSidecar', metadata: { name: 'cache', namespace: 'ci' }, spec: { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] } };

test.each([
  ['$(sidecars.cache.host)', undefined],
  ['redis://$(sidecars.cache.address)/0 and $(sidecars.cache.port)', undefined],
  ['$(params.x) $(context.pipelineRun.name)', undefined],
  ['$(sidecars.cache.hostname)', 'unknown field "hostname"; use host, port or address'],
  ['$(sidecars.cache.HOST)', 'unknown field "HOST"'],
  ['$(sidecars.cache)', 'must be $(sidecars.NAME.FIELD)'],
  ['$(sidecars.cache.host.x)', 'must be $(sidecars.NAME.FIELD)'],
  ['$(sidecars.Cache.host)', '"Cache" is not a PipelineSidecar name'],
  ['$(sidecars.cache.host', 'has no closing parenthesis'],
  ['ok $(sidecars.cache.host) then $(sidecars.cache.ip)', 'unknown field "ip"'],
])('item 5: %s', (text, problem) => {
  const found = invalidSidecarReferences({ params: [{ name: 'p', value: text }] }, 'spec');
  if (problem === undefined) expect(found).toEqual([]);
  else {
    expect(found).toHaveLength(1);
    expect(found[0].path).toBe('spec.params[0].value');
    expect(found[0].problem).toContain(problem);
  }
});

test('item 5: an unknown $(sidecars.NAME.FIELD) in params or the inline pipelineSpec is refused at CREATE, naming the field and where', () => {
  const inParams = admitPipelineRun({ run: { metadata: { name: 'r' }, spec: { params: [{ name: 'h', value: '$(sidecars.cache.hostname)' }] } }, namespace: 'ci', sidecars: [cache], kinds });
  expect(inParams.allowed).toBe(false);
  if (!inParams.allowed) expect(inParams.message).toBe('PipelineRun has invalid sidecar reference: $(sidecars.cache.hostname) at spec.params[0].value: unknown field "hostname"; use host, port or address');
  const inSpec = admitPipelineRun({
    run: { metadata: { name: 'r', annotations: { [ANNOTATIONS.sidecars]: 'cache' } }, spec: { pipelineSpec: { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'redis:7', script: 'redis-cli -h $(sidecars.cache.ip)' }] } }] } } },
    namespace: 'ci', sidecars: [cache], kinds,
  });
  expect(inSpec.allowed).toBe(false);
  if (!inSpec.allowed) expect(inSpec.message).toContain('at spec.pipelineSpec.tasks[0].taskSpec.steps[0].script: unknown field "ip"');
  const inPipeline = admitPipelineRun({
    run: { metadata: { name: 'r' }, spec: { pipelineRef: { name: 'p' } } }, namespace: 'ci', sidecars: [cache], kinds,
    pipeline: { metadata: { name: 'p' }, spec: { params: [{ name: 'h', default: '$(sidecars.cache.hots)' }] } },
  });
  expect(inPipeline.allowed).toBe(false);
  if (!inPipeline.allowed) expect(inPipeline.message).toContain('at Pipeline p spec.params[0].default');
  // Negative control: the valid reference is admitted and substituted.
  const ok = admitPipelineRun({ run: { metadata: { name: 'r' }, spec: { params: [{ name: 'h', value: '$(sidecars.cache.host)' }] } }, namespace: 'ci', sidecars: [cache], kinds, runId: 'abcd1234' });
  if (!ok.allowed) throw new Error(ok.message);
  expect(ok.mutated!.spec.params[0].value).toBe('cache-abcd1234.ci.svc');
});

describe('through the API server', () => {
  let ns: string;
  let server: WebhookServer;
  beforeAll(async () => {
    await ensureCrd();
    ns = await createTestNamespace('wh-refs');
    await createSidecar(ns, 'cache', cache.spec as any);
    server = webhookServer(ns, { register: true, url: `https://127.0.0.1:{port}${WEBHOOK_PATH}`, namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }] } });
    await server.start();
  });
  afterAll(async () => { await server?.stop(); await deleteWebhookConfig(`ps-${ns}`); });

  test('item 5: kubectl create of a run with $(sidecars.cache.hostname) is refused with the message', async () => {
    const inline = { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] };
    // Negative control first (also waits for the webhook to be called): a valid reference is admitted.
    // A new webhook configuration takes a moment to be used: until then a run is admitted untouched.
    const ok = await eventually('the webhook to answer', async () => {
      const r = await createRun(ns, { metadata: { generateName: 'ok-' }, spec: { pipelineSpec: inline, params: [{ name: 'h', value: '$(sidecars.cache.host)' }] } });
      return r.spec.params[0].value.startsWith('$(') ? undefined : r;
    }, 10_000, 200);
    expect(ok.spec.params[0].value).toMatch(/^cache-[a-z][a-z0-9]{7}\./);
    let err: any;
    await createRun(ns, { metadata: { generateName: 'bad-' }, spec: { pipelineSpec: inline, params: [{ name: 'h', value: '$(sidecars.cache.hostname)' }] } }).catch((e) => { err = e; });
    expect(err?.statusCode).toBe(422);
    expect(err.message).toContain('unknown field "hostname"; use host, port or address');
  });
});
