import { FIELD_MANAGER, RunIdentity, synthesizeRun } from '../../constructs';
import { sidecarEndpoints } from '../../constructs/endpoints';
import { serviceDnsNames } from '../../constructs/names';
import { objectPath } from '../../src/k8s/resources';
import { mintRunTls, randomPassword } from '../../src/tls';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { SPECS } from './fixtures';

/**
 * The real local API server is the judge of our manifests: every object of every kind goes through
 * server-side apply with dryRun=All (full validation and defaulting, nothing stored).
 */
describe('the API server accepts what the constructs synthesize', () => {
  let ns: string;
  let run: RunIdentity;

  beforeAll(async () => {
    ns = await createTestNamespace('constructs', { 'pipeline-sidecars.dev/allow-privileged': 'true' });
    // A real owner, so the garbage collector does not delete what we really apply below.
    const pr = await rawClient().create(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns`, {
      apiVersion: 'tekton.dev/v1',
      kind: 'PipelineRun',
      metadata: { name: 'build-42', namespace: ns },
      spec: { pipelineRef: { name: 'ci-with-docker-build' }, status: 'PipelineRunPending' },
    });
    run = { name: 'build-42', namespace: ns, uid: pr.metadata.uid, runId: 'k3x9q2ab', naming: 'runId' };
  });

  test.each(Object.keys(SPECS))('%s: every manifest passes server-side apply with dryRun=All', async (name) => {
    const spec = SPECS[name];
    const ep = sidecarEndpoints(run, name, spec);
    const material = {
      tls: ep.serverSecretName ? await mintRunTls({ hosts: serviceDnsNames(ep.serviceName, ns) }) : undefined,
      password: name === 'db' ? randomPassword() : undefined,
    };
    const manifests = synthesizeRun({ run, sidecars: [{ name, spec, material }], allowPrivileged: true });
    expect(manifests.length).toBeGreaterThanOrEqual(4);
    for (const m of manifests) {
      const out = await rawClient().apply(objectPath(m), m, FIELD_MANAGER, { dryRun: true });
      expect({ kind: out.kind, name: out.metadata.name }).toEqual({ kind: m.kind, name: m.metadata.name });
      // What we set survives validation and defaulting unchanged.
      expect(out.metadata.labels).toEqual(m.metadata.labels);
      expect(out.metadata.ownerReferences).toEqual(m.metadata.ownerReferences);
      if (m.kind === 'Deployment') {
        expect(out.spec.selector).toEqual(m.spec.selector);
        expect(out.spec.strategy.type).toBe('Recreate');
        expect(out.spec.template.spec.containers[0].args).toEqual(m.spec.template.spec.containers[0].args);
      }
      if (m.kind === 'NetworkPolicy') expect(out.spec.ingress).toEqual(m.spec.ingress);
    }
    // Nothing was stored.
    for (const m of manifests) expect(await rawClient().getOrUndefined(objectPath(m))).toBeUndefined();
  });

  test('a NetworkPolicy really applied and read back keeps its from clause (client-node #2825)', async () => {
    const manifests = synthesizeRun({ run, sidecars: [{ name: 'registry', spec: { ...SPECS.registry, isolation: { matchRunUid: true } }, material: {} }], allowPrivileged: false });
    const np = manifests.find(m => m.kind === 'NetworkPolicy')!;
    await rawClient().apply(objectPath(np), np, FIELD_MANAGER);
    const back = await rawClient().get(objectPath(np));
    expect(back.spec.ingress[0].from).toEqual([
      { podSelector: { matchLabels: { 'tekton.dev/pipelineRunUID': run.uid } } },
      { podSelector: { matchLabels: { 'app.kubernetes.io/managed-by': 'pipeline-sidecars', 'pipeline-sidecars.dev/run-id': 'k3x9q2ab' } } },
    ]);
    expect(back.spec.ingress[0].ports).toEqual([{ port: 5000, protocol: 'TCP' }]);
    expect(back.metadata.ownerReferences[0].uid).toBe(run.uid);
    // Re-applying the same manifest is a no-op for server-side apply (what every reconcile does).
    const again = await rawClient().apply(objectPath(np), np, FIELD_MANAGER);
    expect(again.metadata.resourceVersion).toBe(back.metadata.resourceVersion);
  });
});
