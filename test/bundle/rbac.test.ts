import { installBundleObjects } from '../../constructs/bundle/main';
import { ApiError, RawClient } from '../../src/k8s/raw';
import { applyAll } from '../../platform/bootstrap';
import { createTestNamespace, eventually, rawClient, tokenKubeConfig } from '../../platform/cluster';

const OPERATOR_NS = 'pipeline-sidecars';
const SA = 'pipeline-sidecars';
const INSTALL_KINDS = ['CustomResourceDefinition', 'Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

/** What one SelfSubjectAccessReview asks. */
interface Access { verb: string; group?: string; resource: string; subresource?: string; namespace?: string; name?: string }

const describeAccess = (a: Access) =>
  `${a.verb} ${a.group ? `${a.group}/` : ''}${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.name ? ` ${a.name}` : ''} in ${a.namespace ?? '(all namespaces)'}`;

async function allowed(client: RawClient, a: Access): Promise<boolean> {
  const review = await client.create('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { verb: a.verb, group: a.group ?? '', resource: a.resource, subresource: a.subresource, namespace: a.namespace, name: a.name } },
  });
  return review.status.allowed === true;
}

const forbidden = (p: Promise<unknown>) => expect(p).rejects.toMatchObject({ statusCode: 403, reason: 'Forbidden' });

/**
 * The RBAC the bundle ships is minimal. The bundle's CRD, Namespace, ServiceAccount
 * and RBAC are installed for real (serving one test namespace), and a token of the shipped
 * ServiceAccount (TokenRequest, not admin) is checked both by SelfSubjectAccessReview and by real calls.
 */
describe('shipped RBAC, as the operator\'s ServiceAccount', () => {
  const admin = rawClient();
  let served: string;
  let other: string;
  let sa: RawClient;

  beforeAll(async () => {
    served = await createTestNamespace('bundle-served');
    other = await createTestNamespace('bundle-other');
    const objs = installBundleObjects({ servedNamespaces: [served] }).filter((o) => INSTALL_KINDS.includes(o.kind));
    expect(objs.filter((o) => o.kind === 'RoleBinding').map((o) => o.metadata.namespace).sort()).toEqual([served, OPERATOR_NS].sort());
    await applyAll(admin, objs, 'pipeline-sidecars-bundle-test');
    const tr = await admin.create(`/api/v1/namespaces/${OPERATOR_NS}/serviceaccounts/${SA}/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 },
    });
    sa = new RawClient(tokenKubeConfig(tr.status.token));
    const me = await sa.create('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
    expect(me.status.userInfo.username).toBe(`system:serviceaccount:${OPERATOR_NS}:${SA}`);
    // The RBAC authorizer sees new bindings through an informer: wait until the last one applied is in effect.
    await eventually('RoleBinding in the served namespace in effect', () => allowed(sa, { verb: 'create', resource: 'secrets', namespace: served }), 30_000);
  });
  afterAll(() => sa?.close());

  test('SelfSubjectAccessReview: what the operator needs is allowed', async () => {
    const needed: Access[] = [
      // Cluster-wide reads for the informers and the webhook.
      { verb: 'list', group: 'tekton.dev', resource: 'pipelineruns' },
      { verb: 'watch', group: 'tekton.dev', resource: 'pipelineruns' },
      { verb: 'patch', group: 'tekton.dev', resource: 'pipelineruns', namespace: other },
      { verb: 'list', group: 'tekton.dev', resource: 'pipelines' },
      { verb: 'get', group: 'tekton.dev', resource: 'pipelines', namespace: other },
      { verb: 'watch', group: 'pipeline-sidecars.dev', resource: 'pipelinesidecars' },
      { verb: 'patch', group: 'pipeline-sidecars.dev', resource: 'pipelinesidecars', subresource: 'status', namespace: other },
      { verb: 'update', group: 'pipeline-sidecars.dev', resource: 'pipelinesidecars', subresource: 'status', namespace: served },
      { verb: 'list', group: 'apps', resource: 'deployments' },
      { verb: 'watch', resource: 'services' },
      { verb: 'watch', resource: 'serviceaccounts' },
      { verb: 'watch', group: 'networking.k8s.io', resource: 'networkpolicies' },
      { verb: 'list', resource: 'pods' },
      { verb: 'watch', resource: 'namespaces' },
      { verb: 'create', resource: 'events', namespace: other },
      { verb: 'patch', group: 'events.k8s.io', resource: 'events', namespace: served },
      // Per-run objects, in the served namespace.
      ...['create', 'patch', 'delete', 'deletecollection'].flatMap((verb) => [
        { verb, group: 'apps', resource: 'deployments', namespace: served },
        { verb, resource: 'services', namespace: served },
        { verb, resource: 'serviceaccounts', namespace: served },
        { verb, group: 'networking.k8s.io', resource: 'networkpolicies', namespace: served },
        { verb, resource: 'secrets', namespace: served },
      ]),
      { verb: 'get', resource: 'secrets', namespace: served },
      { verb: 'list', resource: 'secrets', namespace: served },
      // Its own namespace: the Lease and the webhook certificate Secret.
      { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: OPERATOR_NS },
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: OPERATOR_NS, name: 'pipeline-sidecars-leader' },
      { verb: 'create', resource: 'secrets', namespace: OPERATOR_NS },
      { verb: 'update', resource: 'secrets', namespace: OPERATOR_NS, name: 'pipeline-sidecars-webhook-tls' },
      // Its own webhook configuration.
      { verb: 'get', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', name: 'pipeline-sidecars' },
      { verb: 'patch', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', name: 'pipeline-sidecars' },
    ];
    const denied: string[] = [];
    for (const a of needed) if (!(await allowed(sa, a))) denied.push(describeAccess(a));
    expect(denied).toEqual([]);
  });

  test('SelfSubjectAccessReview: nothing more', async () => {
    const refused: Access[] = [
      // Secrets outside the namespaces it serves, and cluster-wide.
      { verb: 'get', resource: 'secrets', namespace: other },
      { verb: 'list', resource: 'secrets', namespace: other },
      { verb: 'watch', resource: 'secrets', namespace: other },
      { verb: 'list', resource: 'secrets' },
      { verb: 'get', resource: 'secrets', namespace: OPERATOR_NS, name: 'some-other-secret' },
      { verb: 'list', resource: 'secrets', namespace: OPERATOR_NS },
      { verb: 'get', resource: 'secrets', namespace: 'kube-system' },
      // Workloads outside served namespaces (a pod could mount any Secret there).
      { verb: 'create', group: 'apps', resource: 'deployments', namespace: other },
      { verb: 'patch', group: 'apps', resource: 'deployments', namespace: other },
      { verb: 'create', resource: 'serviceaccounts', namespace: other },
      { verb: 'create', resource: 'serviceaccounts', subresource: 'token', namespace: served, name: 'default' },
      // Pods: never, anywhere.
      { verb: 'create', resource: 'pods', namespace: served },
      { verb: 'create', resource: 'pods', namespace: other },
      { verb: 'create', resource: 'pods', subresource: 'exec', namespace: served },
      { verb: 'delete', resource: 'pods', namespace: served },
      // PipelineRuns: read and patch only.
      { verb: 'delete', group: 'tekton.dev', resource: 'pipelineruns', namespace: served },
      { verb: 'deletecollection', group: 'tekton.dev', resource: 'pipelineruns', namespace: served },
      { verb: 'create', group: 'tekton.dev', resource: 'pipelineruns', namespace: served },
      { verb: 'update', group: 'tekton.dev', resource: 'pipelineruns', subresource: 'finalizers', namespace: served },
      { verb: 'patch', group: 'tekton.dev', resource: 'pipelineruns', subresource: 'status', namespace: served },
      { verb: 'patch', group: 'tekton.dev', resource: 'pipelines', namespace: served },
      { verb: 'create', group: 'tekton.dev', resource: 'taskruns', namespace: served },
      // Its own CRs: status only.
      { verb: 'update', group: 'pipeline-sidecars.dev', resource: 'pipelinesidecars', namespace: served },
      { verb: 'delete', group: 'pipeline-sidecars.dev', resource: 'pipelinesidecars', namespace: served },
      // Webhook configurations other than its own; creating or listing them.
      { verb: 'patch', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', name: 'someone-elses-webhook' },
      { verb: 'get', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', name: 'someone-elses-webhook' },
      { verb: 'list', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
      { verb: 'create', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' },
      { verb: 'delete', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', name: 'pipeline-sidecars' },
      { verb: 'patch', group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations', name: 'pipeline-sidecars' },
      // Leases of others; RBAC itself; CRDs; namespaces.
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system', name: 'kube-controller-manager' },
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: OPERATOR_NS, name: 'another-lease' },
      { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'rolebindings', namespace: other },
      { verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
      { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'roles', namespace: served },
      { verb: 'create', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
      { verb: 'patch', resource: 'namespaces', name: served },
      { verb: 'impersonate', resource: 'serviceaccounts', namespace: served },
      { verb: 'create', resource: 'configmaps', namespace: served },
    ];
    const granted: string[] = [];
    for (const a of refused) if (await allowed(sa, a)) granted.push(describeAccess(a));
    expect(granted).toEqual([]);
  });

  test('real calls: lists PipelineRuns cluster-wide and patches one, but cannot delete or create one', async () => {
    await admin.create(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns`, {
      apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'r1' }, spec: { pipelineRef: { name: 'p' }, status: 'PipelineRunPending' },
    });
    await admin.create(`/apis/tekton.dev/v1/namespaces/${other}/pipelineruns`, {
      apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'r2' }, spec: { pipelineRef: { name: 'p' }, status: 'PipelineRunPending' },
    });
    const list = await sa.get('/apis/tekton.dev/v1/pipelineruns');
    const seen = list.items.map((r: any) => `${r.metadata.namespace}/${r.metadata.name}`);
    expect(seen).toEqual(expect.arrayContaining([`${served}/r1`, `${other}/r2`]));
    const patched = await sa.mergePatch(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns/r1`, { metadata: { annotations: { 'pipeline-sidecars.dev/probe': 'yes' } } });
    expect(patched.metadata.annotations['pipeline-sidecars.dev/probe']).toBe('yes');
    await forbidden(sa.delete(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns/r1`));
    await forbidden(sa.create(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns`, {
      apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'r3' }, spec: { pipelineRef: { name: 'p' } },
    }));
    expect(await admin.getOrUndefined(`/apis/tekton.dev/v1/namespaces/${served}/pipelineruns/r1`)).toBeDefined();
  });

  test('real calls: creates and deletes a Deployment and a Secret in the served namespace, not elsewhere', async () => {
    const labels = { app: 'probe' };
    const deployment = (ns: string) => ({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'probe', namespace: ns },
      spec: { replicas: 0, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } } },
    });
    const created = await sa.create(`/apis/apps/v1/namespaces/${served}/deployments`, deployment(served));
    expect(created.metadata.uid).toBeTruthy();
    await sa.delete(`/apis/apps/v1/namespaces/${served}/deployments/probe`);
    await forbidden(sa.create(`/apis/apps/v1/namespaces/${other}/deployments`, deployment(other)));

    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'probe' }, stringData: { k: 'v' } };
    await sa.create(`/api/v1/namespaces/${served}/secrets`, secret);
    expect((await sa.get(`/api/v1/namespaces/${served}/secrets/probe`)).data.k).toBe(Buffer.from('v').toString('base64'));
    await sa.delete(`/api/v1/namespaces/${served}/secrets/probe`);
    await forbidden(sa.create(`/api/v1/namespaces/${other}/secrets`, secret));
  });

  test('real calls: cannot read Secrets outside the namespaces it serves', async () => {
    await admin.create(`/api/v1/namespaces/${other}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'not-yours' }, stringData: { password: 'hunter2' } });
    await forbidden(sa.get(`/api/v1/namespaces/${other}/secrets/not-yours`));
    await forbidden(sa.get(`/api/v1/namespaces/${other}/secrets`));
    await forbidden(sa.get('/api/v1/secrets'));
  });

  test('real calls: cannot create pods', async () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe' }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } };
    await forbidden(sa.create(`/api/v1/namespaces/${served}/pods`, pod));
    await forbidden(sa.create(`/api/v1/namespaces/${other}/pods`, pod));
  });

  test('real calls: may patch only its own MutatingWebhookConfiguration', async () => {
    const path = (name: string) => `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`;
    // Its own: authorized (the test never creates it, so the server answers 404, not 403).
    const own: ApiError = await sa.mergePatch(path('pipeline-sidecars'), { metadata: { labels: { probe: 'yes' } } }).then(() => undefined, (e) => e);
    expect(own).toBeInstanceOf(ApiError);
    expect(own.statusCode).toBe(404);
    // Another one that exists: refused.
    await admin.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: `bundle-rbac-other-${served}` }, webhooks: [],
    });
    try {
      await forbidden(sa.mergePatch(path(`bundle-rbac-other-${served}`), { metadata: { labels: { probe: 'yes' } } }));
      await forbidden(sa.get(path(`bundle-rbac-other-${served}`)));
    } finally {
      await admin.delete(path(`bundle-rbac-other-${served}`)).catch(() => undefined);
    }
  });
});
