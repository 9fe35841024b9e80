import { POD_CONTROLLER_USERS, TEKTON_CONTROLLER_USER, TEKTON_RUN_LABELS } from '../../constructs/api/tekton-labels';
import { installBundleObjects } from '../../constructs/bundle/main';
import { mapAt } from '../../constructs/bundle/run-label-cel';

const byKind = (objs: Array<Record<string, any>>, kind: string) => objs.filter((o) => o.kind === kind);
const policies = (objs: Array<Record<string, any>>) => byKind(objs, 'ValidatingAdmissionPolicy').map((p) => p.metadata.name).sort();

describe('the install bundle and Tekton\'s run labels', () => {
  test('RunLabelGuard is opt-in: absent by default, present with guardTektonLabels, bound where the webhook serves', () => {
    expect(policies(installBundleObjects({ servedNamespaces: ['ci'] }))).toEqual(['pipeline-sidecars']);
    const objs = installBundleObjects({ servedNamespaces: ['ci'], guardTektonLabels: true });
    expect(policies(objs)).toEqual(['pipeline-sidecars', 'pipeline-sidecars-run-labels']);
    const guard = byKind(objs, 'ValidatingAdmissionPolicy').find((p) => p.metadata.name === 'pipeline-sidecars-run-labels')!;
    const binding = byKind(objs, 'ValidatingAdmissionPolicyBinding').find((b) => b.spec.policyName === guard.metadata.name)!;
    const mwc = byKind(objs, 'MutatingWebhookConfiguration')[0];
    expect(binding.spec.matchResources.namespaceSelector).toEqual(mwc.webhooks[0].namespaceSelector);
    expect(binding.spec.validationActions).toEqual(['Deny']);
    const resources = guard.spec.matchConstraints.resourceRules.flatMap((r: any) => r.resources).sort();
    expect(resources).toEqual(['cronjobs', 'daemonsets', 'deployments', 'jobs', 'pods', 'replicasets', 'replicationcontrollers', 'statefulsets', 'taskruns']);
    for (const r of guard.spec.matchConstraints.resourceRules) expect(r.operations).toEqual(['CREATE', 'UPDATE']);
    // The default trust: Tekton's ServiceAccount and the StatefulSet controller's identities.
    for (const u of [TEKTON_CONTROLLER_USER, ...POD_CONTROLLER_USERS]) expect(guard.spec.validations[0].expression).toContain(`'${u}'`);
    for (const l of TEKTON_RUN_LABELS) expect(JSON.stringify(guard.spec.variables)).toContain(l);
  });

  test('the BookkeepingPolicy refuses Tekton\'s run labels on PipelineRuns to all but the named Tekton controller', () => {
    const [policy] = byKind(installBundleObjects({ servedNamespaces: ['ci'], tektonControllerUsers: ['system:serviceaccount:tekton:ctl'] }), 'ValidatingAdmissionPolicy');
    const v = policy.spec.validations.find((x: any) => x.expression.includes('tekton_run_labels'));
    expect(v.expression).toBe("request.userInfo.username in ['system:serviceaccount:tekton:ctl'] || size(variables.tekton_run_labels) == 0");
    const [dflt] = byKind(installBundleObjects({ servedNamespaces: ['ci'] }), 'ValidatingAdmissionPolicy');
    expect(JSON.stringify(dflt.spec.validations)).toContain(`'${TEKTON_CONTROLLER_USER}'`);
  });

  test('privileged namespaces reach the operator as flags, and must be served', () => {
    const dep = byKind(installBundleObjects({ servedNamespaces: ['ci', 'build'], privilegedNamespaces: ['build'] }), 'Deployment')[0];
    const args: string[] = dep.spec.template.spec.containers[0].args;
    expect(args.slice(args.indexOf('--privileged-namespace'), args.indexOf('--privileged-namespace') + 2)).toEqual(['--privileged-namespace', 'build']);
    expect(args.filter((a) => a === '--privileged-namespace')).toHaveLength(1);
    expect(byKind(installBundleObjects({ servedNamespaces: ['ci'] }), 'Deployment')[0].spec.template.spec.containers[0].args).not.toContain('--privileged-namespace');
    expect(() => installBundleObjects({ servedNamespaces: ['ci'], privilegedNamespaces: ['build'] })).toThrow(/privileged namespace build is not served; add it to servedNamespaces/);
  });

  test('an empty or malformed user list is refused with the form it should have', () => {
    expect(() => installBundleObjects({ tektonControllerUsers: [] })).toThrow(/tektonControllerUsers must list user names such as system:serviceaccount/);
    expect(() => installBundleObjects({ podControllerUsers: ["x' || true || '"] })).toThrow(/podControllerUsers must list/);
  });

  test('mapAt guards every step of a path, so an object without labels is not an error', () => {
    expect(mapAt('object', ['spec', 'template', 'metadata', 'labels'])).toBe(
      '(has(object.spec) && has(object.spec.template) && has(object.spec.template.metadata) && has(object.spec.template.metadata.labels) ? object.spec.template.metadata.labels : {})');
  });
});
