import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ApiError } from '../../src/k8s/raw';
import { objectPath } from '../../src/k8s/resources';
import { applyAll } from '../../platform/bootstrap';
import { clusterState, rawClient } from '../../platform/cluster';
import { ensureKubectl } from '../../platform/in-cluster';

const DIST = path.join(__dirname, '..', '..', 'dist');

/** A manifest as parsed from YAML. */
type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: any }; [k: string]: any };

/** Every document of every YAML file in dist/, in `kubectl apply -f dist/` order (files sorted, documents in order). */
function distObjects(): Manifest[] {
  return fs.readdirSync(DIST).filter((f) => /\.ya?ml$/.test(f)).sort()
    .flatMap((f) => parseAllDocuments(fs.readFileSync(path.join(DIST, f), 'utf8')).map((d) => d.toJSON()))
    .filter((o) => o);
}

/**
 * `kubectl apply --dry-run=server -f dist/` succeeds against the real API server.
 * A server-side dry run of a namespaced object fails while its Namespace does not exist, so the
 * CRDs and the Namespace (sync wave -2) are applied for real first, as Argo CD's waves would.
 * The webhook configuration is never applied for real: its explicit webhook fails closed and would
 * block other tests' runs.
 */
describe('dist/ applies cleanly (server-side dry run)', () => {
  const client = rawClient();
  const objs = distObjects();

  beforeAll(async () => {
    const first = objs.filter((o) => o.kind === 'CustomResourceDefinition' || o.kind === 'Namespace');
    expect(first.length).toBeGreaterThanOrEqual(2);
    await applyAll(client, first, 'pipeline-sidecars-bundle-test');
  });

  test('dist/ holds the whole bundle', () => {
    expect(objs.map((o) => o.kind).sort()).toEqual([
      'ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Deployment', 'MutatingWebhookConfiguration',
      'Namespace', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount',
      'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding',
    ]);
  });

  test('kubectl apply --dry-run=server -f dist/ (the kubectl npm test builds, at the control plane\'s version)', async () => {
    const kubeconfig = clusterState().kubeconfig;
    const r = spawnSync(ensureKubectl(), ['--kubeconfig', kubeconfig, 'apply', '--dry-run=server', '-f', DIST], { encoding: 'utf8', timeout: 120_000 });
    // Only warnings allowed on stderr (kubectl notes that the CRD and Namespace applied above lack its last-applied annotation).
    const errors = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Warning: '));
    expect({ status: r.status, errors }).toEqual({ status: 0, errors: [] });
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(objs.length);
    for (const l of lines) expect(l).toMatch(/\(server dry run\)$/);
    // Dry run means nothing was written: the Deployment and webhook configuration do not exist.
    expect(await client.getOrUndefined(objectPath(objs.find((o) => o.kind === 'Deployment')!))).toBeUndefined();
    expect(await client.getOrUndefined(objectPath(objs.find((o) => o.kind === 'MutatingWebhookConfiguration')!))).toBeUndefined();
  });

  test('the server would reject a broken manifest (the dry run can fail)', async () => {
    const dep = JSON.parse(JSON.stringify(objs.find((o) => o.kind === 'Deployment')));
    dep.spec.replicas = -1;
    dep.spec.template.spec.containers[0].name = 'Not_A_Name';
    const err = await client.apply(objectPath(dep), dep, 'pipeline-sidecars-bundle-test', { dryRun: true, force: true }).then(() => undefined, (e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.statusCode).toBe(422);
    expect(err.message).toMatch(/spec.replicas/);
  });

  test('the operator pod passes the Namespace\'s Pod Security "restricted" enforcement (and a privileged pod would not)', async () => {
    const dep = objs.find((o) => o.kind === 'Deployment')!;
    const ns = dep.metadata.namespace!;
    // The ServiceAccount admission plugin needs the pod's ServiceAccount to exist (wave -1, before the Deployment).
    await applyAll(client, objs.filter((o) => o.kind === 'ServiceAccount'), 'pipeline-sidecars-bundle-test');
    expect(objs.find((o) => o.kind === 'Namespace')!.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bundle-psa-probe', namespace: ns, labels: dep.spec.template.metadata.labels }, spec: dep.spec.template.spec };
    const admitted = await client.create(`/api/v1/namespaces/${ns}/pods`, pod, { dryRun: 'All' });
    expect(admitted.spec.containers[0].securityContext.readOnlyRootFilesystem).toBe(true);
    const loose = JSON.parse(JSON.stringify(pod));
    loose.spec.containers[0].securityContext = { privileged: true };
    const err = await client.create(`/api/v1/namespaces/${ns}/pods`, loose, { dryRun: 'All' }).then(() => undefined, (e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.statusCode).toBe(403);
    expect(err.message).toMatch(/violates PodSecurity "restricted/);
  });
});
