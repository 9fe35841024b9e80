import { RawClient } from '../src/k8s/raw';
import { objectPath } from '../src/k8s/resources';
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
