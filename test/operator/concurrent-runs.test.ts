import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { collectionPath } from '../../src/k8s/resources';
import { rawClient } from '../../platform/cluster';
import { policyAdmits } from '../../platform/network-policy';
import { taskPodsOf, waitRunDone } from '../../platform/runs';
import {
  createPipeline, createRun, createSidecar, dockerDaemonSpec, eventually, getRun, objectsOfRun, ServedOperator, startServedOperator, stopServedOperator, tepPipeline,
} from './helpers';

let fx: ServedOperator;
let ns: string;

beforeAll(async () => {
  fx = await startServedOperator('three', { [LABELS.allowPrivileged]: 'true' });
  ({ ns } = fx);
});

afterAll(() => stopServedOperator(fx));

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

  // All three start; Tekton runs each to the end on the kwok node.
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
  // Every NetworkPolicy, as stored (read while its run runs), against every pod of the namespace.
  const policies = await Promise.all(ids.map((id) => rawClient().get(`${collectionPath('networking.k8s.io/v1', 'NetworkPolicy', ns)}/docker-daemon-${id}-isolation`)));
  for (const r of runs) await waitRunDone(ns, r.metadata.name);
  for (const id of ids) await eventually(`objects of ${id} deleted`, async () => (await objectsOfRun(ns, id)).length === 0, 5_000);
  const taskPods = (await Promise.all(runs.map((r) => taskPodsOf(ns, r.metadata.name)))).flat();
  expect(taskPods.length).toBe(12);
  for (const [i, r] of runs.entries()) {
    expect(policies[i].spec.policyTypes).toContain('Ingress');
    for (const p of taskPods) {
      const own = p.metadata.labels['tekton.dev/pipelineRun'] === r.metadata.name;
      expect({ pod: p.metadata.name, admitted: policyAdmits(policies[i], p.metadata.labels) }).toEqual({ pod: p.metadata.name, admitted: own });
    }
  }
});
