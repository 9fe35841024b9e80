import { setTimeout as sleep } from 'node:timers/promises';
import { RawClient } from '../src/k8s/raw';
import { TEKTON_NAMESPACE, TektonLayout, tektonConfigObjects, webhookRoute } from './tekton';

/**
 * The REST path of any object from Tekton's config/: namespaced exactly when it names a namespace,
 * plural by the regular rule (every kind in config/ follows it). Kept in the harness: the operator's
 * own static table (src/k8s/resources.ts) lists only what the operator touches.
 */
export function restPath(o: Record<string, any>): string {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const ns = o.metadata.namespace ? `/namespaces/${o.metadata.namespace}` : '';
  return `${prefix}${ns}/${o.kind.toLowerCase()}s/${encodeURIComponent(o.metadata.name)}`;
}

async function applyEach(client: RawClient, objs: Array<Record<string, any>>): Promise<void> {
  // Server-side apply: 300-taskrun.yaml is too big for client-side apply's last-applied annotation.
  for (const o of objs) await client.apply(restPath(o), o, 'test-harness', { force: true });
}

async function waitEstablished(client: RawClient, names: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      const crd = await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      if (crd.status?.conditions?.some((c: any) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`Tekton CRD ${name} not Established after ${timeoutMs} ms`);
      await sleep(100);
    }
  }
}

/**
 * Installs Tekton's own objects from its module's config/, and the Service + EndpointSlice that
 * route the API server to the webhook at `webhookAddress` (inside the harness's network namespace).
 */
export async function installTektonConfig(client: RawClient, layout: TektonLayout, webhookAddress: string): Promise<void> {
  const { early, crds, webhooks } = tektonConfigObjects(layout);
  await applyEach(client, early);
  await applyEach(client, crds);
  await waitEstablished(client, crds.map((c) => c.metadata.name), 60_000);
  await applyEach(client, webhookRoute(webhookAddress));
  await applyEach(client, webhooks);
}

/**
 * Waits until Tekton's webhook serves: its validation rejects a PipelineRun that names no pipeline
 * (HTTP 400 from Tekton, not a failed webhook call), and its defaulting fills in a valid one's
 * timeouts. Both are dry runs: nothing is stored.
 */
export async function waitTektonWebhook(client: RawClient, timeoutMs: number, alive: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const path = `/apis/tekton.dev/v1/namespaces/${TEKTON_NAMESPACE}/pipelineruns`;
  let last = '';
  while (Date.now() < deadline) {
    alive();
    try {
      await client.create(path, { apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'webhook-probe' }, spec: {} }, { dryRun: 'All' });
      last = 'an invalid PipelineRun was accepted (is the validating webhook configured?)';
    } catch (e: any) {
      last = e.message;
      if (e.statusCode === 400 && /expected exactly one|missing field/i.test(e.message)) {
        const valid = await client.create(path, {
          apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'webhook-probe' },
          spec: { pipelineSpec: { tasks: [{ name: 't', taskSpec: { steps: [{ name: 's', image: 'x', script: 'true' }] } }] } },
        }, { dryRun: 'All' });
        if (valid.spec?.timeouts?.pipeline) return;
        last = 'the defaulting webhook did not set spec.timeouts.pipeline';
      }
    }
    await sleep(250);
  }
  throw new Error(`Tekton's webhook did not serve within ${timeoutMs} ms: ${last}`);
}

/**
 * Waits until Tekton's webhook has put its CA into every CRD's conversion webhook. Each such update
 * re-initializes that CRD's storage for a moment (the API answers 429 "storage is (re)initializing"),
 * so the platform is ready only once they are all done.
 */
export async function waitTektonCrdConversion(client: RawClient, names: string[], timeoutMs: number, alive: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    for (;;) {
      alive();
      const crd = await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      const conv = crd.spec?.conversion;
      const established = crd.status?.conditions?.some((c: any) => c.type === 'Established' && c.status === 'True');
      if (established && (conv?.strategy !== 'Webhook' || conv.webhook?.clientConfig?.caBundle)) break;
      if (Date.now() > deadline) throw new Error(`Tekton's webhook did not fill the conversion caBundle of CRD ${name} within ${timeoutMs} ms`);
      await sleep(200);
    }
  }
  // One request per CRD through its storage, so a re-initialization still under way is waited out.
  for (const name of names) {
    const crd = await client.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    const version = crd.spec.versions.find((v: any) => v.storage).name;
    for (;;) {
      try { await client.get(`/apis/${crd.spec.group}/${version}/${crd.spec.names.plural}`, { limit: 1 }); break; } catch (e: any) {
        if (e.statusCode !== 429 || Date.now() > deadline) throw e;
        await sleep(100);
      }
    }
  }
}

/** Waits until the Tekton controller leads its PipelineRun reconciler (it then acts on runs). */
export async function waitTektonController(client: RawClient, timeoutMs: number, alive: () => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    alive();
    const leases = await client.get(`/apis/coordination.k8s.io/v1/namespaces/${TEKTON_NAMESPACE}/leases`);
    const held = (name: RegExp) => leases.items.some((l: any) => name.test(l.metadata.name) && l.spec?.holderIdentity);
    if (held(/pipelinerun/) && held(/taskrun/)) return;
    await sleep(250);
  }
  throw new Error(`Tekton's controller did not take its PipelineRun and TaskRun leases within ${timeoutMs} ms`);
}
