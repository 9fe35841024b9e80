import { clusterState, createTestNamespace, eventually, rawClient, tokenKubeConfig } from '../harness/cluster';
import { RawClient, ApiError } from '../../src/k8s/raw';
import { isAlive } from '../harness/control-plane';

/** The platform every other test stands on: a real API server with real controllers behind it. */
describe('local control plane', () => {
  const client = rawClient();

  test('serves the pinned Kubernetes version', async () => {
    const v = await client.get('/version');
    expect(v.gitVersion).toMatch(/^v1\.36\.\d+$/);
    expect(v.major).toBe('1');
    for (const pid of Object.values(clusterState().pids)) expect(isAlive(pid)).toBe(true);
  });

  test('a Deployment of 1 replica becomes Available with a Ready pod (controller-manager, scheduler, kwok)', async () => {
    const ns = await createTestNamespace('platform-deploy');
    const labels = { app: 'web' };
    await client.create(`/apis/apps/v1/namespaces/${ns}/deployments`, {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: ns },
      spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'nginx:1' }] } } },
    });
    const dep = await eventually('Deployment web Available', async () => {
      const d = await client.get(`/apis/apps/v1/namespaces/${ns}/deployments/web`);
      return d.status?.conditions?.some((c: any) => c.type === 'Available' && c.status === 'True') && d.status.readyReplicas === 1 ? d : undefined;
    });
    expect(dep.status.availableReplicas).toBe(1);
    const pods = await client.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'app=web' });
    expect(pods.items).toHaveLength(1);
    expect(pods.items[0].spec.nodeName).toBe('kwok-node-0');
    expect(pods.items[0].status.conditions.find((c: any) => c.type === 'Ready').status).toBe('True');
  });

  test('deleting an owner garbage-collects what it owns', async () => {
    const ns = await createTestNamespace('platform-gc');
    const owner = await client.create(`/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owner' } });
    await client.create(`/api/v1/namespaces/${ns}/configmaps`, {
      apiVersion: 'v1', kind: 'ConfigMap',
      metadata: { name: 'owned', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid }] },
    });
    await client.delete(`/api/v1/namespaces/${ns}/configmaps/owner`);
    await eventually('owned ConfigMap garbage-collected', async () => (await client.getOrUndefined(`/api/v1/namespaces/${ns}/configmaps/owned`)) === undefined);
  });

  describe('frozen-spec policy (Tekton ValidateUpdate)', () => {
    const runPath = (ns: string) => `/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/frozen`;
    let ns: string;
    beforeAll(async () => {
      ns = await createTestNamespace('platform-frozen');
      await client.create(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns`, {
        apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'frozen' },
        spec: { pipelineRef: { name: 'p' }, params: [{ name: 'x', value: '1' }], status: 'PipelineRunPending' },
      });
    });

    test('rejects a change of spec.params on a pending run', async () => {
      const err: ApiError = await client.mergePatch(runPath(ns), { spec: { params: [{ name: 'x', value: '2' }] } }).then(() => undefined, (e) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect(err.statusCode).toBe(403);
      expect(err.message).toMatch(/only spec.status may change/);
      const run = await client.get(runPath(ns));
      expect(run.spec.params[0].value).toBe('1');
    });

    test('rejects adding a new spec field, accepts changing spec.status only', async () => {
      await expect(client.mergePatch(runPath(ns), { spec: { timeouts: { pipeline: '1h' } } })).rejects.toMatchObject({ statusCode: 403 });
      const updated = await client.jsonPatch(runPath(ns), [{ op: 'remove', path: '/spec/status' }]);
      expect(updated.spec.status).toBeUndefined();
      const cancelled = await client.mergePatch(runPath(ns), { spec: { status: 'Cancelled' } });
      expect(cancelled.spec.status).toBe('Cancelled');
    });

    test('allows spec changes once the run is done', async () => {
      await client.mergePatch(`${runPath(ns)}/status`, { status: { conditions: [{ type: 'Succeeded', status: 'False', reason: 'Cancelled' }] } });
      const r = await client.mergePatch(runPath(ns), { spec: { params: [{ name: 'x', value: '3' }] } });
      expect(r.spec.params[0].value).toBe('3');
    });
  });

  test('RBAC is real: a ServiceAccount without a role gets 403 listing Secrets', async () => {
    const ns = await createTestNamespace('platform-rbac');
    await eventually('default ServiceAccount', () => client.getOrUndefined(`/api/v1/namespaces/${ns}/serviceaccounts/default`));
    const tr = await client.create(`/api/v1/namespaces/${ns}/serviceaccounts/default/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 },
    });
    const sa = new RawClient(tokenKubeConfig(tr.status.token));
    try {
      // The token authenticates (the SA can ask about itself), so the 403 below is authorization, not a bad token.
      const review = await sa.create('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
      expect(review.status.userInfo.username).toBe(`system:serviceaccount:${ns}:default`);
      await expect(sa.get(`/api/v1/namespaces/${ns}/secrets`)).rejects.toMatchObject({ statusCode: 403, reason: 'Forbidden' });
      // And a role that grants it makes the same call succeed.
      await client.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'read-secrets' }, rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }] });
      await client.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'read-secrets' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-secrets' }, subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: ns }] });
      await eventually('RoleBinding takes effect', async () => (await sa.get(`/api/v1/namespaces/${ns}/secrets`)).items !== undefined);
    } finally {
      sa.close();
    }
  });
});
