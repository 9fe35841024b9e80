import { RawClient } from '../../src/k8s/raw';
import { rawClient, tokenKubeConfig } from '../../platform/cluster';

/**
 * ServiceAccounts of `namespace` that may get, create, patch and update PipelineRuns there, each
 * as a RawClient authenticated by a TokenRequest token (not admin): who the API server sees is
 * what admission policies judge.
 */
export async function pipelineRunEditors(namespace: string, names: string[]): Promise<Record<string, RawClient>> {
  const admin = rawClient();
  await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'run-editor', namespace },
    rules: [{ apiGroups: ['tekton.dev'], resources: ['pipelineruns'], verbs: ['get', 'list', 'create', 'patch', 'update'] }],
  });
  const out: Record<string, RawClient> = {};
  for (const name of names) {
    await admin.create(`/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
    await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: `run-editor-${name}`, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'run-editor' },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
    });
    const tr = await admin.create(`/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 },
    });
    out[name] = new RawClient(tokenKubeConfig(tr.status.token));
  }
  return out;
}

/**
 * A RawClient for a new ServiceAccount `name` of `namespace` that may do `rules` there (a Role and
 * RoleBinding of its own), authenticated by a TokenRequest token: a user as admission sees one.
 */
export async function serviceAccountClient(namespace: string, name: string, rules: Array<Record<string, unknown>>): Promise<{ client: RawClient; username: string }> {
  const admin = rawClient();
  await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name, namespace }, rules,
  });
  await admin.create(`/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } });
  await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name, namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  });
  const tr = await admin.create(`/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 },
  });
  return { client: new RawClient(tokenKubeConfig(tr.status.token)), username: `system:serviceaccount:${namespace}:${name}` };
}

/** The HTTP status of a call: 200 when it succeeded, the API's code when it failed. */
export async function statusOf(call: Promise<unknown>): Promise<number> {
  try {
    await call;
    return 200;
  } catch (e: any) {
    if (typeof e?.statusCode === 'number' && e.statusCode > 0) return e.statusCode;
    throw e;
  }
}
