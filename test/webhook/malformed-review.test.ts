import { ensureCrd, createSidecar } from '../operator/helpers';
import { createTestNamespace } from '../../platform/cluster';
import { WebhookServer } from '../../src/webhook';
import { collectingLogger, postRaw, RawResponse, webhookServer } from './fixtures';

let ns: string;
let server: WebhookServer;
const logged = collectingLogger();

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('wh-malformed');
  await createSidecar(ns, 'cache', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
  server = webhookServer(ns, {}, logged.log);
  await server.start();
});

afterAll(async () => { await server?.stop(); });

const PR_KIND = { group: 'tekton.dev', version: 'v1', kind: 'PipelineRun' };
const PR_RESOURCE = { group: 'tekton.dev', version: 'v1', resource: 'pipelineruns' };
const review = (request: unknown) => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
const req = (extra: Record<string, unknown>) => ({ uid: 'u-1', kind: PR_KIND, resource: PR_RESOURCE, operation: 'CREATE', namespace: ns, ...extra });
const asking = { metadata: { name: 'r', namespace: 'x', annotations: { 'pipeline-sidecars.dev/sidecars': 'cache' } } };

/** A 4xx, an unchanged admission, or a denial with a 4xx status: the only acceptable answers to a malformed review. */
function acceptable(r: RawResponse): string | undefined {
  if (r.status >= 400 && r.status < 500) return undefined;
  if (r.status !== 200) return `HTTP ${r.status}: ${r.body.slice(0, 300)}`;
  const resp = r.json?.response;
  if (!resp) return `200 without an AdmissionReview response: ${r.body.slice(0, 300)}`;
  if (resp.allowed === true && resp.patch === undefined) return undefined;
  if (resp.allowed === false && resp.status?.code >= 400 && resp.status?.code < 500) return undefined;
  return `200 with ${JSON.stringify(resp).slice(0, 300)}`;
}

const nested = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

// Bodies are built when the test runs: the namespace is not known before beforeAll.
const CASE_LIST = (): Array<[string, string | undefined]> => [
  ['no body', undefined],
  ['empty body', ''],
  ['not JSON', 'not json {'],
  ['JSON null', 'null'],
  ['a JSON string', '"review"'],
  ['a JSON array', '[]'],
  ['a JSON number', '42'],
  ['no request', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' })],
  ['request null', review(null)],
  ['request without uid', review({ ...req({}), uid: undefined })],
  ['request.uid not a string', review(req({ uid: { x: 1 } }))],
  ['no object', review(req({}))],
  ['object a string', review(req({ object: 'run' }))],
  ['object an array', review(req({ object: [] }))],
  ['metadata a string', review(req({ object: { metadata: 'x' } }))],
  ['annotations an array', review(req({ object: { metadata: { name: 'r', annotations: ['a'] } } }))],
  ['annotation value a number', review(req({ object: { metadata: { name: 'r', annotations: { 'pipeline-sidecars.dev/sidecars': 5 } } } }))],
  ['labels a string', review(req({ object: { metadata: { name: 'r', labels: 'x' } } }))],
  ['spec a string, asking', review(req({ object: { ...asking, spec: 'x' } }))],
  ['spec.params a string, asking', review(req({ object: { ...asking, spec: { params: 'xyz' } } }))],
  ['spec.params of numbers, asking', review(req({ object: { ...asking, spec: { params: [1, null] } } }))],
  ['spec.workspaces an object, asking', review(req({ object: { ...asking, spec: { workspaces: { a: 1 } } } }))],
  ['spec.pipelineSpec a number, asking', review(req({ object: { ...asking, spec: { pipelineSpec: 5 } } }))],
  ['spec.pipelineRef a string, asking', review(req({ object: { ...asking, spec: { pipelineRef: 'p' } } }))],
  ['spec.pipelineRef.name an object, asking', review(req({ object: { ...asking, spec: { pipelineRef: { name: { x: 1 } } } } }))],
  ['spec.pipelineRef.name a path, asking', review(req({ object: { ...asking, spec: { pipelineRef: { name: '../../../api' } } } }))],
  ['deeply nested pipelineSpec', review(req({ object: { metadata: { name: 'r' }, spec: { pipelineSpec: '@@' } } })).replace('"@@"', nested(20_000))],
  ['wrong kind (Pod)', review(req({ kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, object: asking }))],
  ['PipelineRun kind, wrong resource', review(req({ resource: { group: '', version: 'v1', resource: 'pods' }, object: asking }))],
  ['PipelineRun kind, wrong group', review(req({ kind: { ...PR_KIND, group: 'example.com' }, resource: { ...PR_RESOURCE, group: 'example.com' }, object: asking }))],
  ['kind a string', review(req({ kind: 'PipelineRun', object: asking }))],
  ['PipelineRun of another version', review(req({ kind: { ...PR_KIND, version: 'v1beta1' }, resource: { ...PR_RESOURCE, version: 'v1beta1' }, object: asking }))],
  ['operation DELETE', review(req({ operation: 'DELETE', oldObject: asking }))],
  ['wrong AdmissionReview apiVersion', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: req({ object: asking }) })],
  ['wrong AdmissionReview kind', JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'ConfigMap', request: req({ object: asking }) })],
];
const CASES: Array<[string, () => string | undefined]> = CASE_LIST().map(([n]) => [n, () => BODIES()[n]]);

function BODIES(): Record<string, string | undefined> {
  return Object.fromEntries(CASE_LIST());
}


test.each(CASES)('a malformed review (%s) gets a 4xx or an unchanged admission, never a 5xx', async (_name, body) => {
  const r = await postRaw(server.port, server.caCert!, body());
  expect(acceptable(r)).toBeUndefined();
});

test('a body over 3 MiB is refused with 413, with or without Content-Length, and the server lives on', async () => {
  const huge = review(req({ object: { metadata: { name: 'r', annotations: { big: 'x'.repeat(4 * 1024 * 1024) } } } }));
  const withLength = await postRaw(server.port, server.caCert!, huge);
  expect(withLength.status).toBe(413);
  const chunked = await postRaw(server.port, server.caCert!, huge, { headers: { 'Transfer-Encoding': 'chunked' } });
  expect(chunked.status).toBe(413);
  // Negative control: just under the limit is read and answered.
  const under = review(req({ object: { metadata: { name: 'r', annotations: { big: 'x'.repeat(2 * 1024 * 1024) } } } }));
  const ok = await postRaw(server.port, server.caCert!, under);
  expect(ok.status).toBe(200);
  expect(ok.json.response).toMatchObject({ uid: 'u-1', allowed: true });
});

test('wrong method or path: 4xx', async () => {
  expect((await postRaw(server.port, server.caCert!, undefined, { method: 'GET' })).status).toBe(404);
  expect((await postRaw(server.port, server.caCert!, review(req({ object: asking })), { path: '/other' })).status).toBe(404);
});

test('after every malformed review the server still answers a well-formed one, and logged no internal error', async () => {
  for (const [, body] of CASES) await postRaw(server.port, server.caCert!, body());
  const r = await postRaw(server.port, server.caCert!, review(req({ object: { metadata: { name: 'plain' }, spec: {} } })));
  expect(r.status).toBe(200);
  expect(r.json).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } });
  // Negative control that the well-formed path really decides: a run asking for a missing sidecar is denied.
  const denied = await postRaw(server.port, server.caCert!, review(req({ object: { metadata: { name: 'r', annotations: { 'pipeline-sidecars.dev/sidecars': 'nope' } }, spec: {} } })));
  expect(denied.json.response.allowed).toBe(false);
  const errors = logged.lines.map((l) => JSON.parse(l)).filter((l) => l.level === 'error');
  expect(errors).toEqual([]);
});
