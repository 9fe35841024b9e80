import { App, Chart } from 'cdk8s';
import { LABELS, SidecarIsolation, synthesizeRun } from '../../constructs';
import { TEKTON_LABELS } from '../../constructs/api/tekton-labels';
import { IsolationPolicy } from '../../constructs/isolation-policy';
import { policyAdmits } from '../../platform/network-policy';
import { materialFor, one, RUN, SPECS } from './fixtures';

function policy(isolation?: SidecarIsolation) {
  const chart = new Chart(new App(), 'c');
  new IsolationPolicy(chart, 'p', { run: RUN, sidecarName: 'docker', ports: [{ name: 'docker', port: 2376 }, { name: 'dns', port: 53, protocol: 'UDP' }], isolation });
  return one(chart.toJson(), 'NetworkPolicy');
}

/** Whether the policy admits a same-namespace pod with these labels (a namespace or address peer counts as admitting). */
const admits = (np: Record<string, any>, podLabels: Record<string, string>): boolean => policyAdmits(np, podLabels);

const TASK_POD = { [TEKTON_LABELS.pipelineRun]: RUN.name, [TEKTON_LABELS.pipelineRunUid]: RUN.uid, 'tekton.dev/task': 'build' };

describe('IsolationPolicy', () => {
  test('SameRun: ingress only from this run\'s pods, only on the sidecar ports; egress unrestricted', () => {
    const np = policy();
    expect(np.spec.podSelector.matchLabels).toEqual({ [LABELS.runId]: RUN.runId, [LABELS.sidecar]: 'docker' });
    expect(np.spec.policyTypes).toEqual(['Ingress']);
    expect(np.spec.egress).toBeUndefined();
    expect(np.spec.ingress).toHaveLength(1);
    expect(np.spec.ingress[0].ports).toEqual([{ port: 2376, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }]);
    expect(admits(np, TASK_POD)).toBe(true);
    expect(admits(np, { ...TASK_POD, [TEKTON_LABELS.pipelineRunUid]: 'another-runs-uid' })).toBe(false);
    expect(admits(np, { app: 'random' })).toBe(false);
    // Peers are same-namespace pod selectors only: no namespaceSelector, no ipBlock.
    for (const peer of np.spec.ingress[0].from) expect(Object.keys(peer)).toEqual(['podSelector']);
  });

  test('the run\'s other sidecars are admitted (a DockerDaemon pushing to the run\'s Registry), other runs\' are not', () => {
    const np = policy();
    const sibling = { [LABELS.managedBy]: 'pipeline-sidecars', [LABELS.runId]: RUN.runId, [LABELS.sidecar]: 'registry' };
    expect(admits(np, sibling)).toBe(true);
    expect(admits(np, { ...sibling, [LABELS.runId]: 'zzzzzzzz' })).toBe(false);
  });

  test('task pods are matched by tekton.dev/pipelineRunUID alone, with or without matchRunUid: a same-named older run is shut out', () => {
    for (const np of [policy({ matchRunUid: true }), policy()]) {
      expect(np.spec.ingress[0].from[0].podSelector.matchLabels).toEqual({ [TEKTON_LABELS.pipelineRunUid]: RUN.uid });
      expect(admits(np, TASK_POD)).toBe(true);
      expect(admits(np, { ...TASK_POD, [TEKTON_LABELS.pipelineRunUid]: 'old-uid' })).toBe(false);
    }
  });

  test('from: Namespace widens to every pod of the namespace, still only on the sidecar ports', () => {
    const np = policy({ from: 'Namespace' });
    expect(np.spec.ingress[0].from).toEqual([{ podSelector: {} }]);
    expect(admits(np, { app: 'random' })).toBe(true);
    expect(np.spec.ingress[0].ports).toHaveLength(2);
  });

  test('egress rules, when given, restrict egress', () => {
    const egress = [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ port: 443, protocol: 'TCP' }] }];
    const np = policy({ egress });
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.egress).toEqual(egress);
  });

  test('synthesizeRun passes spec.isolation through', async () => {
    const spec = { ...SPECS.registry, isolation: { from: 'Namespace' as const } };
    const objs = synthesizeRun({ run: RUN, sidecars: [{ name: 'registry', spec, material: await materialFor('registry', spec) }], allowPrivileged: false });
    expect(one(objs, 'NetworkPolicy').spec.ingress[0].from).toEqual([{ podSelector: {} }]);
  });
});
