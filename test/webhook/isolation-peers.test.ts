import { App, Chart } from 'cdk8s';
import { FIELD_MANAGER, RunIdentity } from '../../constructs/api/spec';
import { TEKTON_RUN_LABELS } from '../../constructs/api/tekton-labels';
import { bookkeepingPolicy } from '../../constructs/bundle/bookkeeping-policy';
import { IsolationPolicy } from '../../constructs/isolation-policy';
import { collectionPath, objectPath } from '../../src/k8s/resources';
import { applyAll } from '../../platform/bootstrap';
import { createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { policyAdmits } from '../../platform/network-policy';
import { createRun } from '../operator/helpers';
import { pipelineRunEditors, statusOf } from './sa-clients';

type Labels = Record<string, string>;
interface RunLike { readonly metadata: { readonly name: string; readonly uid: string; readonly labels?: Labels }; readonly spec?: { readonly taskRunSpecs?: Array<{ pipelineTaskName: string; metadata?: { labels?: Labels } }> } }

/**
 * A model, for these table-like checks only: the labels Tekton v1.15.1 gives the pod of a run's
 * pipeline task (not its affinity assistant, which keeps a run's own uid label: that path, and
 * Tekton's real labelling, are tested on the real Tekton in test/node/run-labels.test.ts and
 * test/webhook/bookkeeping.test.ts), step by step as its code does:
 * pipelinerun.go combineTaskRunAndTaskSpecLabels (first writer wins: taskRunSpecs[].metadata.labels,
 * then createChildResourceLabels = the run's labels overwritten by tekton.dev/pipelineRun,
 * pipelineRunUID and pipelineTask from the real run), then pod.go makeLabels (the TaskRun's labels,
 * overwritten by taskRun, taskRunUID and managed-by).
 */
function tektonTaskPodLabels(run: RunLike, pipelineTask: string): Labels {
  const taskRun: Labels = {};
  const addByPrecedence = (m: Labels | undefined) => { for (const [k, v] of Object.entries(m ?? {})) if (!(k in taskRun)) taskRun[k] = v; };
  addByPrecedence(run.spec?.taskRunSpecs?.find((t) => t.pipelineTaskName === pipelineTask)?.metadata?.labels);
  addByPrecedence({ ...run.metadata.labels, 'tekton.dev/pipelineRun': run.metadata.name, 'tekton.dev/pipelineRunUID': run.metadata.uid, 'tekton.dev/pipelineTask': pipelineTask });
  const trName = `${run.metadata.name}-${pipelineTask}`;
  return { ...taskRun, 'tekton.dev/taskRun': trName, 'tekton.dev/taskRunUID': `${trName}-uid`, 'app.kubernetes.io/managed-by': 'tekton-pipelines' };
}

function isolationPolicy(run: RunIdentity): Record<string, any> {
  const chart = new Chart(new App(), 'c');
  new IsolationPolicy(chart, 'p', { run, sidecarName: 'docker', ports: [{ name: 'docker', port: 2376 }] });
  return chart.toJson().find((o) => o.kind === 'NetworkPolicy')!;
}

/** Whether the policy admits a same-namespace pod with these labels (a namespace or address peer counts as admitting). */
const admits = (np: Record<string, any>, pod: Labels) => policyAdmits(np, pod);

const A: RunLike = { metadata: { name: 'build-a', uid: '11111111-aaaa-4aaa-8aaa-111111111111', labels: { team: 'x', 'tekton.dev/pipeline': 'ci', 'pipeline-sidecars.dev/admitted': 'runaaaa1' } } };
const identA: RunIdentity = { name: A.metadata.name, namespace: 'ci', uid: A.metadata.uid, runId: 'runaaaa1', naming: 'runId' };
const aPod = tektonTaskPodLabels(A, 'build');
// The strongest copy: B's run carries every label A's pod has (uid, name, run id, managed-by and all).
const copier: RunLike = { metadata: { name: 'build-b', uid: '22222222-bbbb-4bbb-8bbb-222222222222', labels: { ...aPod, 'pipeline-sidecars.dev/run-id': 'runaaaa1' } } };

test('a run that copies another run\'s labels (its pods\' labels included) does not match the other run\'s policy', () => {
  const np = isolationPolicy(identA);
  expect(admits(np, aPod)).toBe(true); // negative control: the run's own pods get in
  const bPod = tektonTaskPodLabels(copier, 'build');
  expect(bPod['tekton.dev/pipelineRunUID']).toBe(copier.metadata.uid);
  expect(admits(np, bPod)).toBe(false);
  // Nor does a run that merely shares the name of an older run.
  expect(admits(np, tektonTaskPodLabels({ metadata: { ...A.metadata, uid: '33333333-cccc-4ccc-8ccc-333333333333' } }, 'build'))).toBe(false);
});

test('taskRunSpecs[].metadata.labels would outrank Tekton\'s own labels (why the policy forbids them)', () => {
  const np = isolationPolicy(identA);
  const viaTaskRunSpecs: RunLike = { ...copier, spec: { taskRunSpecs: [{ pipelineTaskName: 'build', metadata: { labels: { 'tekton.dev/pipelineRunUID': A.metadata.uid } } }] } };
  expect(admits(np, tektonTaskPodLabels(viaTaskRunSpecs, 'build'))).toBe(true);
});

describe('against the API server', () => {
  let ns: string;
  let clients: Awaited<ReturnType<typeof pipelineRunEditors>>;
  const inline = { tasks: [{ name: 'build', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] };

  beforeAll(async () => {
    ns = await createTestNamespace('iso-peers');
    clients = await pipelineRunEditors(ns, ['operator', 'user']);
    await applyAll(rawClient(), bookkeepingPolicy({ name: `ps-${ns}`, serviceAccount: { namespace: ns, name: 'operator' }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } }), 'pipeline-sidecars-tests');
  });

  afterAll(async () => {
    for (const c of Object.values(clients ?? {})) c.close();
    await rawClient().delete(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/ps-${ns}`).catch(() => undefined);
    await rawClient().delete(`/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/ps-${ns}`).catch(() => undefined);
  });

  test('the applied policy, read back, selects the run\'s task pod and not the pod of a run that copied its labels', async () => {
    // Pending runs: Tekton makes no pods for them, so the only pods are the ones this test labels
    // exactly as Tekton would (tektonTaskPodLabels).
    const a = await createRun(ns, { metadata: { generateName: 'a-', labels: { team: 'x' } }, spec: { pipelineSpec: inline, status: 'PipelineRunPending' } });
    const aPodLabels = tektonTaskPodLabels(a as RunLike, 'build');
    // B copies every label of A's pod that a run may carry: Tekton's run labels are refused on a
    // PipelineRun (test/webhook/bookkeeping.test.ts), so the copy leaves them out.
    const copiable = Object.fromEntries(Object.entries(aPodLabels).filter(([k]) => !TEKTON_RUN_LABELS.includes(k)));
    const b = await createRun(ns, { metadata: { generateName: 'b-', labels: copiable }, spec: { pipelineSpec: inline, status: 'PipelineRunPending' } });
    const bPodLabels = tektonTaskPodLabels(b as RunLike, 'build');
    const np = isolationPolicy({ name: a.metadata.name, namespace: ns, uid: a.metadata.uid, runId: 'runaaaa1', naming: 'runId' });
    np.metadata.namespace = ns;
    delete np.metadata.ownerReferences;
    await rawClient().apply(objectPath(np as any), np, FIELD_MANAGER);
    const back = await rawClient().get(objectPath(np as any));
    expect(back.spec.ingress[0].from).toHaveLength(2);
    const pod = (name: string, labels: Labels) => rawClient().create(collectionPath('v1', 'Pod', ns), {
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels },
      spec: { automountServiceAccountToken: false, containers: [{ name: 'step', image: 'example.invalid/step:1' }] },
    });
    await pod('a-build-pod', aPodLabels);
    await pod('b-build-pod', bPodLabels);
    // A run that takes A's very name once A is gone (a re-run of a named run), with A's labels too.
    const runPath = objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: a.metadata.name, namespace: ns } });
    await rawClient().delete(runPath);
    await eventually('run A to be gone', async () => !(await rawClient().getOrUndefined(runPath)), 10_000, 100);
    const again = await createRun(ns, { metadata: { name: a.metadata.name, labels: copiable }, spec: { pipelineSpec: inline, status: 'PipelineRunPending' } });
    expect(again.metadata.uid).not.toBe(a.metadata.uid);
    await pod('a-again-build-pod', tektonTaskPodLabels(again as RunLike, 'build'));
    const selected = new Set<string>();
    for (const peer of back.spec.ingress[0].from) {
      const labelSelector = Object.entries(peer.podSelector.matchLabels as Labels).map(([k, v]) => `${k}=${v}`).join(',');
      const list = await rawClient().get(collectionPath('v1', 'Pod', ns), { labelSelector });
      for (const p of list.items) selected.add(p.metadata.name);
    }
    expect([...selected]).toEqual(['a-build-pod']);
  });

  test('a run may not set tekton.dev/pipelineRun* or pipeline-sidecars.dev/ labels through spec.taskRunSpecs (403); other labels are fine', async () => {
    const forged = (labels: Labels) => ({ metadata: { generateName: 'b-' }, spec: { pipelineSpec: inline, taskRunSpecs: [{ pipelineTaskName: 'build', metadata: { labels } }] } });
    let message = '';
    await eventually('the policy to deny a forged pipelineRunUID', async () => {
      const code = await statusOf(createRun(ns, forged({ 'tekton.dev/pipelineRunUID': '11111111-aaaa-4aaa-8aaa-111111111111' }), clients.user).catch((e) => { message = e.message; throw e; }));
      return code === 403;
    }, 30_000, 200);
    expect(message).toContain('tekton.dev/pipelineRunUID');
    expect(await statusOf(createRun(ns, forged({ 'tekton.dev/pipelineRun': 'a-x' }), clients.user))).toBe(403);
    expect(await statusOf(createRun(ns, forged({ 'pipeline-sidecars.dev/run-id': 'runaaaa1' }), clients.user))).toBe(403);
    // The operator gets no pass here either: it never writes these.
    expect(await statusOf(createRun(ns, forged({ 'tekton.dev/pipelineRunUID': 'x' }), clients.operator))).toBe(403);
    // Negative control.
    expect(await statusOf(createRun(ns, forged({ team: 'x', 'tekton.dev/custom': 'y' }), clients.user))).toBe(200);
  });
});
