import { clusterState, createTestNamespace, eventually, rawClient, tokenKubeConfig } from '../../platform/cluster';
import { RawClient, ApiError } from '../../src/k8s/raw';
import { isAlive } from '../../platform/control-plane';
import { succeededCondition } from '../../src/pipelinerun';
import { inlineTask, readRun, releaseTasks, taskPodsOf, taskRunsOf, waitRunDone } from '../../platform/runs';

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

  describe("Tekton's own webhook (the real one, serving from the harness's network namespace)", () => {
    const runPath = (ns: string) => `/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/frozen`;
    let ns: string;
    beforeAll(async () => {
      ns = await createTestNamespace('platform-frozen');
      await client.create(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns`, {
        apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'frozen' },
        spec: { pipelineRef: { name: 'p' }, params: [{ name: 'x', value: '1' }], status: 'PipelineRunPending' },
      });
    });

    test('defaults a run at CREATE (timeouts.pipeline 1h, serviceAccountName default)', async () => {
      const run = await client.get(runPath(ns));
      expect(run.spec.timeouts.pipeline).toBe('1h0m0s');
      expect(run.spec.taskRunTemplate.serviceAccountName).toBe('default');
    });

    test('rejects a change of spec.params on a not-done run with HTTP 400, not 403', async () => {
      const err: ApiError = await client.mergePatch(runPath(ns), { spec: { params: [{ name: 'x', value: '2' }] } }).then(() => undefined, (e) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect(err.statusCode).toBe(400);
      expect(err.message).toMatch(/only status updates are allowed/);
      const run = await client.get(runPath(ns));
      expect(run.spec.params[0].value).toBe('1');
    });

    test('rejects a new spec field and an unknown spec.status, accepts spec.status-only changes', async () => {
      await expect(client.mergePatch(runPath(ns), { spec: { timeouts: { pipeline: '2h' } } })).rejects.toMatchObject({ statusCode: 400 });
      await expect(client.mergePatch(runPath(ns), { spec: { status: 'Paused' } })).rejects.toMatchObject({ statusCode: 400 });
      const cancelled = await client.mergePatch(runPath(ns), { spec: { status: 'Cancelled' } });
      expect(cancelled.spec.status).toBe('Cancelled');
    });

    test('once the run is done, rejects every spec change (the controller finished the cancelled run)', async () => {
      const done = await eventually('Tekton to finish the cancelled run', async () => {
        const r = await client.get(runPath(ns));
        return r.status?.conditions?.some((c: any) => c.type === 'Succeeded' && c.status === 'False') ? r : undefined;
      }, 30_000);
      expect(done.status.conditions[0].reason).toBe('Cancelled');
      const err: ApiError = await client.mergePatch(runPath(ns), { spec: { params: [{ name: 'x', value: '3' }] } }).then(() => undefined, (e) => e);
      expect(err.statusCode).toBe(400);
      expect(err.message).toMatch(/Once the PipelineRun is complete, no updates are allowed/);
      // Labels and annotations may still change.
      const labelled = await client.mergePatch(runPath(ns), { metadata: { labels: { reviewed: 'yes' } } });
      expect(labelled.metadata.labels.reviewed).toBe('yes');
    });
  });

  test('a Tekton run finishes on the kwok node; a task labelled to fail fails it; a held task holds it', async () => {
    const ns = await createTestNamespace('platform-runs');
    const create = (name: string, tasks: Array<Record<string, any>>) => client.create(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns`, {
      apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name }, spec: { pipelineSpec: { tasks } },
    });
    await create('ok', [inlineTask('a'), inlineTask('b', { runAfter: ['a'] })]);
    await create('fails', [inlineTask('a', { exitCode: 3 })]);
    await create('held', [inlineTask('a', { hold: true })]);
    const ok = await waitRunDone(ns, 'ok');
    expect(succeededCondition(ok)).toMatchObject({ status: 'True', reason: 'Succeeded' });
    const trs = await taskRunsOf(ns, 'ok');
    expect(trs.map((t) => t.metadata.labels['tekton.dev/pipelineTask'])).toEqual(['a', 'b']);
    const failed = await waitRunDone(ns, 'fails');
    expect(succeededCondition(failed)).toMatchObject({ status: 'False', reason: 'Failed' });
    // Negative control for the hold: still running a while after the others ended, then released.
    await eventually('the held task pod', async () => (await taskPodsOf(ns, 'held')).length === 1, 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect(succeededCondition(await readRun(ns, 'held')).status).toBe('Unknown');
    expect(await releaseTasks(ns, 'held')).toBe(1);
    expect(succeededCondition(await waitRunDone(ns, 'held'))).toMatchObject({ status: 'True' });
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
