import { FIELD_MANAGER, LABELS } from '../../constructs/api/spec';
import { defaultKinds } from '../../constructs/kinds';
import { objectPath } from '../../src/k8s/resources';
import { SidecarApplier, stillAsApplied } from '../../src/sidecar-apply';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { mintRunTls } from '../../src/tls';

/**
 * The drift check compares what the operator applied with what the API server stores. The
 * server adds defaults and may normalize values; an object nobody touched must compare equal, or the
 * operator would "correct" it on every reconcile. Every kind we ship, applied for real and read back.
 */
test('every kind we ship, as stored by the API server, is still as applied; a hand edit is not', async () => {
  const ns = await createTestNamespace('drift', { [LABELS.allowPrivileged]: 'true' });
  // A real (pending, never started) PipelineRun owns the objects, so the garbage collector keeps them.
  const owner = await rawClient().create(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns`, {
    apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'owner' },
    spec: { status: 'PipelineRunPending', pipelineSpec: { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'busybox', script: 'true' }] } }] } },
  });
  const ident = { name: 'owner', namespace: ns, uid: owner.metadata.uid, runId: 'drift001', naming: 'runId' as const };
  const specs: Array<{ name: string; spec: any }> = [
    { name: 'dind', spec: { kind: 'DockerDaemon', dockerDaemon: { tls: true } } },
    { name: 'bk', spec: { kind: 'BuildKitDaemon', buildKitDaemon: {} } },
    { name: 'pg', spec: { kind: 'Postgres', postgres: {} } },
    { name: 'reg', spec: { kind: 'Registry', registry: {} } },
    { name: 'web', spec: { kind: 'Container', template: { containers: [{ name: 'web', image: 'nginx:1', resources: { limits: { cpu: '500m', memory: '128Mi' } } }] }, ports: [{ name: 'http', port: 80 }] } },
  ];
  const tls = await mintRunTls({ hosts: ['x'] });
  const material = new Map(specs.map((s) => [s.name, { tls, password: 'pw' }]));
  const applier = new SidecarApplier(rawClient(), new Map(), defaultKinds(), undefined as any);
  const manifests = applier.manifests(ident, specs, material, true).filter((m) => m.kind !== 'Secret');
  expect(manifests.length).toBeGreaterThan(10);
  const diffs: string[] = [];
  for (const m of manifests) {
    await rawClient().apply(objectPath(m as any), m, FIELD_MANAGER, { force: false });
    const live = await rawClient().get(objectPath(m as any));
    const { apiVersion: _a, kind: _k, metadata, ...rest } = m;
    const ok = stillAsApplied({ labels: metadata.labels, annotations: metadata.annotations, ownerReferences: metadata.ownerReferences }, live.metadata) && stillAsApplied(rest, live);
    if (!ok) diffs.push(`${m.kind}/${m.metadata.name}: ${firstDifference(m, live)}`);
  }
  expect(diffs).toEqual([]);

  // Negative control: scale a Deployment to 0 and widen a NetworkPolicy by hand.
  const dep = manifests.find((m) => m.kind === 'Deployment')!;
  await rawClient().mergePatch(`${objectPath(dep as any)}/scale`, { spec: { replicas: 0 } });
  expect(stillAsApplied(dep.spec, (await rawClient().get(objectPath(dep as any))).spec)).toBe(false);
  const np = manifests.find((m) => m.kind === 'NetworkPolicy')!;
  const live = await rawClient().get(objectPath(np as any));
  await rawClient().mergePatch(objectPath(np as any), { spec: { ingress: [...live.spec.ingress, { from: [{ podSelector: {} }] }] } });
  expect(stillAsApplied(np.spec, (await rawClient().get(objectPath(np as any))).spec)).toBe(false);
});

function firstDifference(d: any, l: any, path = ''): string {
  if (Array.isArray(d)) {
    if (!Array.isArray(l) || l.length !== d.length) return `${path}: length ${d.length} vs ${Array.isArray(l) ? l.length : typeof l}`;
    for (let i = 0; i < d.length; i++) { const r = firstDifference(d[i], l[i], `${path}[${i}]`); if (r) return r; }
    return '';
  }
  if (d && typeof d === 'object') {
    for (const [k, v] of Object.entries(d)) {
      if (k === 'apiVersion' || k === 'kind') continue;
      const r = firstDifference(v, l?.[k], `${path}.${k}`); if (r) return r;
    }
    return '';
  }
  return d === l ? '' : `${path}: ${JSON.stringify(d)} vs ${JSON.stringify(l)}`;
}
