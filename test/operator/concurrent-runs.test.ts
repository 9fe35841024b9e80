import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { collectionPath } from '../../src/k8s/resources';
import { rawClient } from '../harness/cluster';
import { TektonSimulator } from '../harness/simulator';
import {
  createPipeline, createRun, createSidecar, dockerDaemonSpec, eventually, getRun, objectsOfRun, ServedOperator, startServedOperator, stopServedOperator, tepPipeline,
} from './helpers';

let fx: ServedOperator;
let ns: string;
let sim: TektonSimulator;

beforeAll(async () => {
  fx = await startServedOperator('three', { [LABELS.allowPrivileged]: 'true' });
  ({ ns, sim } = fx);
});

afterAll(() => stopServedOperator(fx));

/** Whether a pod's labels satisfy a NetworkPolicy peer's podSelector (matchLabels / matchExpressions In). */
function selects(peer: any, labels: Record<string, string>): boolean {
  if (peer.namespaceSelector || peer.ipBlock) return true; // would be a wider peer: count it as admitting
  const sel = peer.podSelector ?? {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    if (e.operator === 'In' && !e.values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !(e.key in labels)) return false;
  }
  return true;
}

test('three concurrent runs of one Pipeline get disjoint objects, and each NetworkPolicy admits only its own run', async () => {
  // Selection by selector this time (no annotation on the runs): every run of the Pipeline gets it.
  await createSidecar(ns, 'docker-daemon', dockerDaemonSpec({ selector: { pipelineRef: 'ci-with-docker-build' } }));
  await createPipeline(ns, tepPipeline());
  const runs = await Promise.all([0, 1, 2].map(() => createRun(ns, {
    metadata: { generateName: 'ci-' },
    spec: { pipelineRef: { name: 'ci-with-docker-build' }, params: [{ name: 'image', value: 'app:1' }], workspaces: [{ name: 'source', emptyDir: {} }] },
  })));
  const ids = runs.map((r) => r.metadata.annotations[ANNOTATIONS.runId]);
  expect(new Set(ids).size).toBe(3);
  for (const r of runs) expect(r.spec.status).toBe('PipelineRunPending');

  // All three start; the simulator gives each its task pods.
  for (const r of runs) {
    await eventually(`run ${r.metadata.name} to start`, async () => (await getRun(ns, r.metadata.name)).spec.status === undefined, 30_000);
  }
  const sets = await Promise.all(ids.map((id) => objectsOfRun(ns, id)));
  const all = sets.flat();
  expect(new Set(all).size).toBe(all.length); // disjoint
  sets.forEach((s, i) => {
    expect(s).toHaveLength(6);
    for (const o of s) expect(o).toContain(ids[i]);
  });
  await eventually('task pods of all runs', async () => {
    const pods = await rawClient().get(collectionPath('v1', 'Pod', ns), { labelSelector: 'tekton.dev/pipelineRun' });
    return new Set(pods.items.map((p: any) => p.metadata.labels['tekton.dev/pipelineRun'])).size === 3;
  }, 20_000);

  // Read every NetworkPolicy back from the server and evaluate it against every pod in the namespace.
  const pods = (await rawClient().get(collectionPath('v1', 'Pod', ns))).items as any[];
  for (const [i, r] of runs.entries()) {
    const np = await rawClient().get(`${collectionPath('networking.k8s.io/v1', 'NetworkPolicy', ns)}/docker-daemon-${ids[i]}-isolation`);
    expect(np.spec.policyTypes).toContain('Ingress');
    const peers = np.spec.ingress.flatMap((rule: any) => rule.from ?? [{ everything: true }]);
    expect(peers.length).toBeGreaterThan(0);
    const admitted = pods.filter((p) => peers.some((peer: any) => !peer.everything && selects(peer, p.metadata.labels ?? {})) || peers.some((peer: any) => peer.everything));
    expect(admitted.length).toBeGreaterThan(0);
    for (const p of admitted) {
      const own = p.metadata.labels['tekton.dev/pipelineRun'] === r.metadata.name || p.metadata.labels[LABELS.runId] === ids[i];
      expect({ pod: p.metadata.name, own }).toEqual({ pod: p.metadata.name, own: true });
    }
    // And it does admit this run's task pods.
    expect(admitted.some((p) => p.metadata.labels['tekton.dev/pipelineRun'] === r.metadata.name)).toBe(true);
  }

  for (const r of runs) await sim.finish(ns, r.metadata.name, 'Succeeded');
  for (const id of ids) await eventually(`objects of ${id} deleted`, async () => (await objectsOfRun(ns, id)).length === 0, 5_000);
});
