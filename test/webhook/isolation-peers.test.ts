import { App, Chart } from 'cdk8s';
import { FIELD_MANAGER, RunIdentity } from '../../constructs/api/spec';
import { TEKTON_LABELS, TEKTON_RUN_LABELS } from '../../constructs/api/tekton-labels';
import { bookkeepingPolicy } from '../../constructs/bundle/bookkeeping-policy';
import { IsolationPolicy } from '../../constructs/isolation-policy';
import { collectionPath, objectPath } from '../../src/k8s/resources';
import { applyAll } from '../../platform/bootstrap';
import { createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { policyAdmits } from '../../platform/network-policy';
import { taskPodsOf, taskRunsOf } from '../../platform/runs';
import { createRun } from '../operator/helpers';
import { pipelineRunEditors, statusOf } from './sa-clients';

type Labels = Record<string, string>;
interface RunLike { readonly metadata: { readonly name: string; readonly uid: string; readonly labels?: Labels }; readonly spec?: { readonly taskRunSpecs?: Array<{ pipelineTaskName: string; metadata?: { labels?: Labels } }> } }

/**
 * A model, for the two table-like checks below only: the labels Tekton v1.15.1 gives the pod of a
 * run's pipeline task, step by step as its code does (the real Tekton's pods are checked against the
 * applied policy further down; its affinity assistant, which keeps a run's own uid label, on the real
 * Tekton in test/node/run-labels.test.ts and test/webhook/bookkeeping.test.ts):
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

  /** The task pods Tekton made for this very run (by uid: a later run may have its name). */
  const podsOfRun = (run: Record<string, any>) => eventually(`the task pod of ${run.metadata.name}`, async () => {
    const pods = (await taskPodsOf(ns, run.metadata.name)).filter((p) => p.metadata.labels[TEKTON_LABELS.pipelineRunUid] === run.metadata.uid);
    return pods.length > 0 ? pods : undefined;
  }, 60_000, 200);

  /**
   * The names of the namespace's pods that some ingress peer of `policy` selects, listed by the API
   * server from the peers' own selectors. A peer that is not a plain pod selector (a namespace or an
   * address peer) selects every pod here: conservative, as policyAdmits is.
   */
  async function selectedBy(policy: Record<string, any>): Promise<string[]> {
    const names = new Set<string>();
    for (const rule of policy.spec.ingress ?? []) {
      for (const peer of rule.from ?? [{}]) {
        const sel = peer.namespaceSelector || peer.ipBlock ? {} : peer.podSelector ?? {};
        const terms = [
          ...Object.entries((sel.matchLabels ?? {}) as Labels).map(([k, v]) => `${k}=${v}`),
          ...(sel.matchExpressions ?? []).map((e: any) => ({ In: `${e.key} in (${e.values})`, NotIn: `${e.key} notin (${e.values})`, Exists: e.key, DoesNotExist: `!${e.key}` } as Record<string, string>)[e.operator]),
        ];
        const list = await rawClient().get(collectionPath('v1', 'Pod', ns), terms.length ? { labelSelector: terms.join(',') } : {});
        for (const p of list.items) names.add(p.metadata.name);
      }
    }
    return [...names].sort();
  }

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

  test('the applied policy, read back, selects the task pods the real Tekton makes for the run, and none of those it makes for a run that copied their labels, nor for a later run of the same name', async () => {
    // Real runs: Tekton makes their TaskRuns and pods (kwok's node ends them; no step runs).
    const a = await createRun(ns, { metadata: { generateName: 'a-', labels: { team: 'x' } }, spec: { pipelineSpec: inline } });
    const aPods = await podsOfRun(a);
    // B copies every label Tekton gave A's task pod that a run may carry: Tekton's run labels are
    // refused on a PipelineRun (test/webhook/bookkeeping.test.ts), so the copy leaves them out.
    const copiable = Object.fromEntries(Object.entries(aPods[0].metadata.labels as Labels).filter(([k]) => !TEKTON_RUN_LABELS.includes(k)));
    expect(Object.keys(copiable).length).toBeGreaterThan(1);
    const b = await createRun(ns, { metadata: { generateName: 'b-', labels: copiable }, spec: { pipelineSpec: inline } });
    const bPods = await podsOfRun(b);
    const np = isolationPolicy({ name: a.metadata.name, namespace: ns, uid: a.metadata.uid, runId: 'runaaaa1', naming: 'runId' });
    np.metadata.namespace = ns;
    delete np.metadata.ownerReferences;
    await rawClient().apply(objectPath(np as any), np, FIELD_MANAGER);
    const back = await rawClient().get(objectPath(np as any));
    // B's pods exist (and carry every label copied from A's), yet only A's are selected.
    expect(bPods[0].metadata.labels).toMatchObject(Object.fromEntries(Object.entries(copiable).filter(([k]) => k !== 'tekton.dev/pipeline')));
    expect(await selectedBy(back)).toEqual(aPods.map((p) => p.metadata.name).sort());

    // A run that takes A's very name once A is gone (a re-run of a named run), with A's labels too.
    const runPath = objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: a.metadata.name, namespace: ns } });
    await rawClient().delete(runPath);
    await eventually('run A and its TaskRuns to be gone', async () => !(await rawClient().getOrUndefined(runPath)) && (await taskRunsOf(ns, a.metadata.name)).length === 0, 30_000, 200);
    const again = await createRun(ns, { metadata: { name: a.metadata.name, labels: copiable }, spec: { pipelineSpec: inline } });
    expect(again.metadata.uid).not.toBe(a.metadata.uid);
    const againPods = await podsOfRun(again);
    const selected = await selectedBy(back);
    expect(againPods.map((p) => p.metadata.name).filter((n) => selected.includes(n))).toEqual([]);
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
