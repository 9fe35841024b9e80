import { RawClient } from '../../src/k8s/raw';
import { objectPath } from '../../src/k8s/resources';
import { FROZEN_SPEC_BINDING, FROZEN_SPEC_POLICY, TEKTON_CRDS } from './tekton';
import { setTimeout as sleep } from 'node:timers/promises';

/** Server-side applies objects (force: the harness owns them) and waits for any CRDs among them to be Established. */
export async function applyAll(client: RawClient, objs: Array<Record<string, any>>, fieldManager = 'test-harness'): Promise<void> {
  for (const o of objs) await client.apply(objectPath(o as any), o, fieldManager, { force: true });
  for (const o of objs.filter((x) => x.kind === 'CustomResourceDefinition')) await waitEstablished(client, o.metadata.name);
}

export async function waitEstablished(client: RawClient, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const crd = await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    if (crd.status?.conditions?.some((c: any) => c.type === 'Established' && c.status === 'True')) return;
    await sleep(100);
  }
  throw new Error(`CRD ${name} not Established after ${timeoutMs} ms`);
}

/**
 * What a Tekton cluster looks like to our operator: the Tekton CRDs and the frozen-spec rule.
 * The policy is checked end to end before returning, so a test never runs against a cluster where it is silently off.
 */
export async function installTekton(client: RawClient): Promise<void> {
  await applyAll(client, [...TEKTON_CRDS, FROZEN_SPEC_POLICY, FROZEN_SPEC_BINDING]);
  // A new policy takes a moment to be loaded by the admission plugin; probe until it denies.
  const ns = 'default';
  const probe = { apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'frozen-spec-probe', namespace: ns }, spec: { params: [{ name: 'a', value: '1' }], status: 'PipelineRunPending' } };
  await client.apply(objectPath(probe), probe, 'test-harness', { force: true });
  const deadline = Date.now() + 30_000;
  try {
    while (Date.now() < deadline) {
      try {
        await client.mergePatch(objectPath(probe), { spec: { params: [{ name: 'a', value: String(Date.now()) }] } });
      } catch (e: any) {
        if (e.statusCode === 403 || e.statusCode === 422) return;
        throw e;
      }
      await sleep(200);
    }
    throw new Error('the frozen-spec ValidatingAdmissionPolicy did not take effect within 30 s');
  } finally {
    await client.delete(objectPath(probe)).catch(() => undefined);
  }
}
