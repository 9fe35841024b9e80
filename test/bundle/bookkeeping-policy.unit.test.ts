import { installBundleObjects } from '../../constructs/bundle/main';

const byKind = (objs: Array<Record<string, any>>, kind: string) => objs.filter((o) => o.kind === kind);

test('the bundle ships the bookkeeping policy, exempting only its own ServiceAccount, bound where the webhook serves', () => {
  const objs = installBundleObjects({ servedNamespaces: ['team-a'], namespace: 'ops', name: 'ps' });
  const [policy] = byKind(objs, 'ValidatingAdmissionPolicy');
  const [binding] = byKind(objs, 'ValidatingAdmissionPolicyBinding');
  expect(policy.metadata.name).toBe('ps');
  expect(policy.spec.failurePolicy).toBe('Fail');
  expect(policy.spec.validations[0].expression).toContain("request.userInfo.username == 'system:serviceaccount:ops:ps'");
  // The ServiceAccount the exemption names is the one the operator runs as.
  const sa = byKind(objs, 'ServiceAccount')[0];
  expect(`system:serviceaccount:${sa.metadata.namespace}:${sa.metadata.name}`).toBe('system:serviceaccount:ops:ps');
  expect(byKind(objs, 'Deployment')[0].spec.template.spec.serviceAccountName).toBe('ps');
  expect(binding.spec).toMatchObject({ policyName: 'ps', validationActions: ['Deny'] });
  const mwc = byKind(objs, 'MutatingWebhookConfiguration')[0];
  expect(binding.spec.matchResources.namespaceSelector).toEqual(mwc.webhooks[0].namespaceSelector);
});
