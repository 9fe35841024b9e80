import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { WEBHOOK_PATH } from '../../constructs/api/webhook-config';
import { TEKTON_LABELS } from '../../constructs/api/tekton-labels';
import { bookkeepingPolicy } from '../../constructs/bundle/bookkeeping-policy';
import { objectPath } from '../../src/k8s/resources';
import { WebhookServer } from '../../src/webhook';
import { applyAll } from '../../platform/bootstrap';
import { createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { createRun, createSidecar, deleteWebhookConfig, ensureCrd } from '../operator/helpers';
import { webhookServer } from './fixtures';
import { pipelineRunEditors, statusOf } from './sa-clients';

const inline = { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] };
const SPOOFED_ANNOTATIONS = {
  [ANNOTATIONS.runId]: 'victim01',
  [ANNOTATIONS.started]: '2026-01-01T00:00:00Z',
  [ANNOTATIONS.gated]: 'true',
  'pipeline-sidecars.dev/cancelled': '2026-01-01T00:00:00Z',
  'pipeline-sidecars.dev/anything-else': 'x',
};
const SPOOFED_LABELS = { [LABELS.runId]: 'victim01', [LABELS.admitted]: 'victim01', [LABELS.pipelineRun]: 'victim' };
const reservedKeys = (m: Record<string, string> | undefined) => Object.keys(m ?? {}).filter((k) => k.startsWith('pipeline-sidecars.dev/')).sort();
const runPath = (ns: string, name: string) => objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name, namespace: ns } });

describe('the webhook strips user-written bookkeeping at CREATE', () => {
  let ns: string;
  let server: WebhookServer;

  beforeAll(async () => {
    await ensureCrd();
    ns = await createTestNamespace('wh-bookkeeping');
    await createSidecar(ns, 'cache', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
    server = webhookServer(ns, {
      register: true, url: `https://127.0.0.1:{port}${WEBHOOK_PATH}`,
      namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }] },
    });
    await server.start();
  });

  afterAll(async () => {
    await server?.stop();
    await deleteWebhookConfig(`ps-${ns}`);
  });

  test('a run that asks for no sidecars loses every pipeline-sidecars.dev/ annotation and label it wrote, and keeps its own', async () => {
    // A new webhook configuration takes a moment to be used (until then a run is admitted untouched):
    // retry with new runs for up to 10 s; code that never strips fails here.
    const r = await eventually('the webhook to strip the run\'s reserved annotations', async () => {
      const created = await createRun(ns, {
        metadata: { generateName: 'plain-', annotations: { ...SPOOFED_ANNOTATIONS, team: 'a' }, labels: { ...SPOOFED_LABELS, app: 'b' } },
        spec: { pipelineSpec: inline },
      });
      return reservedKeys(created.metadata.annotations).length === 0 ? created : undefined;
    }, 10_000, 200);
    expect(reservedKeys(r.metadata.annotations)).toEqual([]);
    expect(reservedKeys(r.metadata.labels)).toEqual([]);
    expect(r.metadata.annotations.team).toBe('a');
    expect(r.metadata.labels.app).toBe('b');
    expect(r.spec.status).toBeUndefined();
  });

  test('a run that asks for sidecars gets a fresh run id and the admitted marker; a copied run id, started and marker are overwritten', async () => {
    const r = await createRun(ns, {
      metadata: { generateName: 'asks-', annotations: { ...SPOOFED_ANNOTATIONS, [ANNOTATIONS.sidecars]: 'cache' }, labels: SPOOFED_LABELS },
      spec: { pipelineSpec: inline },
    });
    const a = r.metadata.annotations;
    expect(a[ANNOTATIONS.runId]).toMatch(/^[a-z][a-z0-9]{7}$/);
    expect(a[ANNOTATIONS.runId]).not.toBe('victim01');
    expect(a[ANNOTATIONS.started]).toBeUndefined();
    expect(a['pipeline-sidecars.dev/cancelled']).toBeUndefined();
    expect(a['pipeline-sidecars.dev/anything-else']).toBeUndefined();
    expect(a[ANNOTATIONS.gated]).toBe('true');
    expect(r.spec.status).toBe('PipelineRunPending');
    expect(r.metadata.labels).toEqual({ [LABELS.admitted]: a[ANNOTATIONS.runId] });
  });

  test('with the webhook down, a run carrying any pipeline-sidecars.dev/ key is refused; a run carrying none is admitted (Ignore)', async () => {
    await server.stop();
    // The configuration still points at the stopped server: calls fail, failurePolicy decides.
    // The refusal meant is the API server's own: the `explicit` webhook (failurePolicy Fail) could not be called.
    const refusedBy = async (metadata: Record<string, unknown>) => {
      try {
        await createRun(ns, { metadata: { generateName: 'forged-', ...metadata }, spec: { pipelineSpec: inline } });
        return 'admitted';
      } catch (e: any) {
        return `${e.statusCode} ${e.message}`;
      }
    };
    expect(await refusedBy({ annotations: { [ANNOTATIONS.runId]: 'victim01' } })).toMatch(/^500 .*failed calling webhook "explicit\.pipelineruns\.pipeline-sidecars\.dev"/);
    expect(await refusedBy({ labels: { [LABELS.admitted]: 'victim01' } })).toMatch(/^500 .*failed calling webhook "explicit\.pipelineruns\.pipeline-sidecars\.dev"/);
    // Negative control: the webhook really is down and unrelated runs still get in.
    const plain = await createRun(ns, { metadata: { generateName: 'plain-', labels: { app: 'b' } }, spec: { pipelineSpec: inline } });
    expect(plain.metadata.labels).toEqual({ app: 'b' });
  });
});

describe('the ValidatingAdmissionPolicy keeps the bookkeeping the operator\'s after CREATE', () => {
  let ns: string;
  let clients: Awaited<ReturnType<typeof pipelineRunEditors>>;
  const BOOKKEEPING = { annotations: { [ANNOTATIONS.runId]: 'abcd1234', [ANNOTATIONS.sidecars]: 'cache', [ANNOTATIONS.gated]: 'true' }, labels: { [LABELS.admitted]: 'abcd1234' } };
  let name: string;

  beforeAll(async () => {
    ns = await createTestNamespace('vap-bookkeeping');
    clients = await pipelineRunEditors(ns, ['operator', 'user', 'tekton']);
    await applyAll(rawClient(), bookkeepingPolicy({
      name: `ps-${ns}`, serviceAccount: { namespace: ns, name: 'operator' }, tektonControllerUsers: [`system:serviceaccount:${ns}:tekton`],
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
    }), 'pipeline-sidecars-tests');
    // No webhook serves this namespace: the run is created with its bookkeeping as it would be after admission.
    const r = await createRun(ns, { metadata: { generateName: 'run-', ...BOOKKEEPING }, spec: { pipelineSpec: inline, status: 'PipelineRunPending' } });
    name = r.metadata.name;
    // A new policy takes a moment to load: wait until it denies what it must, on a probe run of its own
    // (patches let through before then change the probe, not the run under test).
    const probe = await createRun(ns, { metadata: { generateName: 'probe-' }, spec: { pipelineSpec: inline } });
    await eventually('the policy to take effect', async () => (await statusOf(clients.user.mergePatch(runPath(ns, probe.metadata.name), { metadata: { annotations: { [ANNOTATIONS.started]: String(Date.now()) } } }))) === 403, 30_000, 200);
  });

  afterAll(async () => {
    for (const c of Object.values(clients ?? {})) c.close();
    await rawClient().delete(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/ps-${ns}`).catch(() => undefined);
    await rawClient().delete(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/ps-${ns}`).catch(() => undefined);
  });

  test.each([
    ['add started', { metadata: { annotations: { [ANNOTATIONS.started]: 'now' } } }],
    ['change the run id', { metadata: { annotations: { [ANNOTATIONS.runId]: 'victim01' } } }],
    ['remove the run id', { metadata: { annotations: { [ANNOTATIONS.runId]: null } } }],
    ['change the sidecars', { metadata: { annotations: { [ANNOTATIONS.sidecars]: 'other' } } }],
    ['remove gated', { metadata: { annotations: { [ANNOTATIONS.gated]: null } } }],
    ['add an unknown key of ours', { metadata: { annotations: { 'pipeline-sidecars.dev/x': 'y' } } }],
    ['change the admitted marker', { metadata: { labels: { [LABELS.admitted]: 'victim01' } } }],
    ['remove the admitted marker', { metadata: { labels: { [LABELS.admitted]: null } } }],
    ['add a run-id label', { metadata: { labels: { [LABELS.runId]: 'victim01' } } }],
  ])('a user patch that would %s is denied (403)', async (_what, patch) => {
    const before = await rawClient().get(runPath(ns, name));
    let message = '';
    const code = await statusOf(clients.user.mergePatch(runPath(ns, name), patch).catch((e) => { message = e.message; throw e; }));
    expect(code).toBe(403);
    expect(message).toContain('pipeline-sidecars bookkeeping');
    const after = await rawClient().get(runPath(ns, name));
    expect(after.metadata.annotations).toEqual(before.metadata.annotations);
    expect(after.metadata.labels).toEqual(before.metadata.labels);
  });

  test('a user may still change annotations and labels that are not ours (negative control)', async () => {
    expect(await statusOf(clients.user.mergePatch(runPath(ns, name), { metadata: { annotations: { team: 'a' }, labels: { app: 'b' } } }))).toBe(200);
    expect(await statusOf(clients.user.mergePatch(runPath(ns, name), { metadata: { annotations: { team: null } } }))).toBe(200);
  });

  test('a run the webhook never took on (no run id) may get the sidecars annotation later, as Tekton copies it from the Pipeline', async () => {
    const plain = await createRun(ns, { metadata: { generateName: 'plain-' }, spec: { pipelineSpec: inline } });
    expect(await statusOf(clients.user.mergePatch(runPath(ns, plain.metadata.name), { metadata: { annotations: { [ANNOTATIONS.sidecars]: 'cache' } } }))).toBe(200);
    // ...but nothing else of ours, and not on a run with a run id (negative controls).
    expect(await statusOf(clients.user.mergePatch(runPath(ns, plain.metadata.name), { metadata: { annotations: { [ANNOTATIONS.runId]: 'victim01' } } }))).toBe(403);
    expect(await statusOf(clients.user.mergePatch(runPath(ns, name), { metadata: { annotations: { [ANNOTATIONS.sidecars]: 'cache,other' } } }))).toBe(403);
  });

  test('the operator\'s ServiceAccount may add, change and remove them', async () => {
    const op = clients.operator;
    expect(await statusOf(op.jsonPatch(runPath(ns, name), [
      { op: 'test', path: '/spec/status', value: 'PipelineRunPending' },
      { op: 'remove', path: '/spec/status' },
      { op: 'add', path: `/metadata/annotations/${ANNOTATIONS.started.replace('/', '~1')}`, value: 'now' },
    ]))).toBe(200);
    expect(await statusOf(op.mergePatch(runPath(ns, name), { metadata: { annotations: { 'pipeline-sidecars.dev/cancelled': 'now', [ANNOTATIONS.gated]: null } } }))).toBe(200);
    const after = await rawClient().get(runPath(ns, name));
    expect(after.metadata.annotations[ANNOTATIONS.started]).toBe('now');
    expect(after.metadata.annotations[ANNOTATIONS.gated]).toBeUndefined();
  });

  test('a PipelineRun may not carry Tekton\'s run labels, at CREATE or added later (its affinity assistant would inherit them); Tekton\'s controller may', async () => {
    for (const label of [TEKTON_LABELS.pipelineRunUid, TEKTON_LABELS.pipelineRun, TEKTON_LABELS.memberOf]) {
      let message = '';
      const code = await statusOf(createRun(ns, { metadata: { generateName: 'copied-', labels: { [label]: 'victim' } }, spec: { pipelineSpec: inline } }, clients.user)
        .catch((e) => { message = e.message; throw e; }));
      expect(code).toBe(403);
      expect(message).toContain(`may not carry the labels ${label}`);
      expect(message).toContain('affinity-assistant pod');
    }
    const plain = await createRun(ns, { metadata: { generateName: 'plain-', labels: { team: 'a', 'tekton.dev/pipeline': 'p' } }, spec: { pipelineSpec: inline } }, clients.user);
    let message = '';
    expect(await statusOf(clients.user.mergePatch(runPath(ns, plain.metadata.name), { metadata: { labels: { [TEKTON_LABELS.pipelineRunUid]: 'victim' } } })
      .catch((e) => { message = e.message; throw e; }))).toBe(403);
    expect(message).toContain(TEKTON_LABELS.pipelineRunUid);
    // Negative controls: other labels pass (above), and Tekton's controller may write them.
    expect(await statusOf(createRun(ns, { metadata: { generateName: 'child-', labels: { [TEKTON_LABELS.pipelineRun]: 'parent' } }, spec: { pipelineSpec: inline } }, clients.tekton))).toBe(200);
    expect(await statusOf(clients.tekton.mergePatch(runPath(ns, plain.metadata.name), { metadata: { labels: { [TEKTON_LABELS.pipelineRunUid]: 'x' } } }))).toBe(200);
  });
});
