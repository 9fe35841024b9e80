import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { defaultKinds } from '../../constructs/kinds';
import { Operator } from '../../src/operator';
import { APPLIED_AT } from '../../src/sidecar-apply';
import { RedisKind } from '../../examples/custom-kind/redis';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { behaviourLabels, inlineTask, releaseTasks, taskPodsOf, waitRunDone } from '../../platform/runs';
import {
  createRun, createSidecar, deleteWebhookConfig, dockerDaemonSpec, ensureCrd, eventsFor, eventually, inProcessOperator, objectsOfRun, reconciledNow,
} from './helpers';

/**
 * A run whose tasks may be running keeps the sidecars it got (edits, deletions
 * and operator upgrades change nothing under it), hand edits are put back, its TLS material is
 * restored or reported but never re-minted, and a run whose objects the API refuses is cancelled at
 * its start-up timeout with the API's message.
 */

let ns: string;
let op: Operator;
const kinds = () => defaultKinds().register(RedisKind);

beforeAll(async () => {
  await ensureCrd();
  ns = await createTestNamespace('live', { [LABELS.allowPrivileged]: 'true' });
  op = inProcessOperator(ns, [ns], { kinds: kinds() });
  await op.start();
}, 120_000);

afterAll(async () => {
  await op?.stop();
  await deleteWebhookConfig(`ps-${ns}`);
});

const api = {
  dep: (name: string) => `/apis/apps/v1/namespaces/${ns}/deployments/${name}`,
  svc: (name: string) => `/api/v1/namespaces/${ns}/services/${name}`,
  np: (name: string) => `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies/${name}`,
  secret: (name: string) => `/api/v1/namespaces/${ns}/secrets/${name}`,
  sidecar: (name: string) => `/apis/pipeline-sidecars.dev/v1alpha1/namespaces/${ns}/pipelinesidecars/${name}`,
};

/** A run of one held task that asks for `sidecar`; resolves once its task runs (it has started). */
async function startedRun(prefix: string, sidecar: string): Promise<{ name: string; runId: string }> {
  const run = await createRun(ns, { metadata: { generateName: `${prefix}-`, labels: behaviourLabels({ hold: true }), annotations: { [ANNOTATIONS.sidecars]: sidecar } }, spec: { pipelineSpec: { tasks: [inlineTask('t')] } } });
  const name = run.metadata.name;
  await eventually(`${name}'s task to run`, async () => (await taskPodsOf(ns, name)).some((p) => p.status?.phase === 'Running'), 30_000);
  return { name, runId: run.metadata.annotations[ANNOTATIONS.runId] };
}

async function finish(name: string, runId: string): Promise<void> {
  await releaseTasks(ns, name);
  await waitRunDone(ns, name);
  await eventually('its sidecars to go', async () => (await objectsOfRun(ns, runId)).length === 0, 5_000);
}

test('editing or deleting the PipelineSidecar of a started run changes nothing under it; a deleted object is re-created as it was', async () => {
  await createSidecar(ns, 'kv', { kind: 'Redis', redis: { maxMemory: '64mb' }, ports: [{ name: 'redis', port: 6379 }] });
  const r = await startedRun('edit', 'kv');
  const svcBefore = await rawClient().get(api.svc(`kv-${r.runId}`));
  const depNow = async () => {
    const d = await rawClient().get(api.dep(`kv-${r.runId}`));
    return { uid: d.metadata.uid, generation: d.metadata.generation, args: d.spec.template.spec.containers[0].args };
  };
  const depBefore = await depNow();
  expect(depBefore.args).toContain('64mb');

  // The edit is in the operator's cache (it wrote the new generation into the status), and the
  // controller has reconciled the run since: had it re-rendered the run's objects, it would have now.
  const edited = await rawClient().mergePatch(api.sidecar('kv'), { spec: { redis: { maxMemory: '128mb' } } });
  await eventually('the operator to see the edit', async () => (await rawClient().get(api.sidecar('kv'))).status?.observedGeneration === edited.metadata.generation, 10_000);
  await reconciledNow(op, ns, r.name);
  expect(await depNow()).toEqual(depBefore);

  // Likewise once the deletion is in the operator's cache.
  await rawClient().delete(api.sidecar('kv'));
  await eventually('the operator\'s cache to drop the PipelineSidecar', async () => !op.controller!.caches.sidecars.get(ns, 'kv'), 10_000);
  await reconciledNow(op, ns, r.name);
  expect(await objectsOfRun(ns, r.runId)).toHaveLength(4);
  expect(await depNow()).toEqual(depBefore);

  // Its Service is deleted by hand: re-created from what the run got at first, with an Event. The
  // API server assigns a new cluster IP, and the applied-at annotation says when it was written;
  // everything else the operator wrote is as it was (the same applied-hash and sidecar spec).
  await rawClient().delete(api.svc(`kv-${r.runId}`));
  const svc: any = await eventually('the Service back', () => rawClient().getOrUndefined(api.svc(`kv-${r.runId}`)), 10_000);
  expect(svc.metadata.uid).not.toBe(svcBefore.metadata.uid);
  const written = (s: any) => {
    const { clusterIP: _ip, clusterIPs: _ips, ...spec } = s.spec;
    const { [APPLIED_AT]: _at, ...annotations } = s.metadata.annotations ?? {};
    return { labels: s.metadata.labels, annotations, ownerReferences: s.metadata.ownerReferences, spec };
  };
  expect(written(svc)).toEqual(written(svcBefore));
  const recreated = await eventually('a SidecarRecreated Event', async () => (await eventsFor(ns, r.name)).find((e) => e.reason === 'SidecarRecreated'), 5_000);
  expect(recreated.message).toContain(`Service kv-${r.runId}`);
  const evs = await eventsFor(ns, r.name);
  expect(evs.map((e) => e.reason)).not.toContain('SidecarsDeleted');
  expect(evs.map((e) => e.message).join(' ')).not.toContain('cancelled before it started');
  await finish(r.name, r.runId);
});

test('an operator upgraded to new defaults leaves a started run\'s sidecar alone, and gives new runs the new defaults', async () => {
  await createSidecar(ns, 'kv2', { kind: 'Redis', ports: [{ name: 'redis', port: 6379 }] });
  const r = await startedRun('upg', 'kv2');
  const before = await rawClient().get(api.dep(`kv2-${r.runId}`));
  expect(before.spec.template.spec.containers[0].image).toBe('redis:7-alpine');
  // The upgrade: the same kind, with a new default image.
  await op.stop();
  const Redis8: typeof RedisKind = { ...RedisKind, parse: (spec, sidecar) => ({ ...RedisKind.parse(spec, sidecar), image: (spec as any).redis?.image ?? 'redis:8-alpine' }) };
  op = inProcessOperator(ns, [ns], { kinds: defaultKinds().register(Redis8) });
  await op.start();
  const fresh = await startedRun('upg-new', 'kv2');
  expect((await rawClient().get(api.dep(`kv2-${fresh.runId}`))).spec.template.spec.containers[0].image).toBe('redis:8-alpine');
  // The upgraded operator has reconciled the older run too, with the new default in force.
  await reconciledNow(op, ns, r.name);
  const after = await rawClient().get(api.dep(`kv2-${r.runId}`));
  expect({ uid: after.metadata.uid, generation: after.metadata.generation, image: after.spec.template.spec.containers[0].image })
    .toEqual({ uid: before.metadata.uid, generation: before.metadata.generation, image: 'redis:7-alpine' });
  await finish(r.name, r.runId);
  await finish(fresh.name, fresh.runId);
});

test('a Deployment scaled to zero and a widened NetworkPolicy are put back within seconds, with an Event naming who was overridden', async () => {
  await createSidecar(ns, 'cache', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }] });
  const r = await startedRun('drift', 'cache');
  const dep = `cache-${r.runId}`;
  await rawClient().mergePatch(`${api.dep(dep)}/scale`, { spec: { replicas: 0 } });
  const t0 = Date.now();
  await eventually('replicas back to 1', async () => (await rawClient().get(api.dep(dep))).spec.replicas === 1, 10_000, 50);
  process.stderr.write(`[drift] scaled-to-zero Deployment put back after ${Date.now() - t0} ms\n`);
  const np = `${dep}-isolation`;
  const live = await rawClient().get(api.np(np));
  await rawClient().mergePatch(api.np(np), { spec: { ingress: [...live.spec.ingress, { from: [{ podSelector: {} }] }] } });
  await eventually('the policy narrowed again', async () => (await rawClient().get(api.np(np))).spec.ingress.length === live.spec.ingress.length, 10_000, 50);
  const drift = (await eventsFor(ns, r.name)).filter((e) => e.reason === 'SidecarDriftCorrected');
  expect(drift.length).toBeGreaterThanOrEqual(2);
  const messages = drift.map((e) => e.message).join('\n');
  expect(messages).toMatch(new RegExp(`Deployment ${dep} was changed by .*put it back`));
  expect(messages).toMatch(new RegExp(`NetworkPolicy ${np} was changed by "[^"]+"`));
  await finish(r.name, r.runId);
});

test('a started run\'s deleted client Secret is restored with the same material; a deleted server Secret is reported, never re-minted', async () => {
  await createSidecar(ns, 'docker', dockerDaemonSpec());
  const r = await startedRun('tls', 'docker');
  const client = await rawClient().get(api.secret(`docker-${r.runId}-client`));
  const server = await rawClient().get(api.secret(`docker-${r.runId}-server`));
  await rawClient().delete(api.secret(`docker-${r.runId}-client`));
  const restored: any = await eventually('the client Secret back', () => rawClient().getOrUndefined(api.secret(`docker-${r.runId}-client`)), 10_000);
  expect(restored.metadata.uid).not.toBe(client.metadata.uid);
  expect(restored.data).toEqual(client.data);

  await rawClient().delete(api.secret(`docker-${r.runId}-server`));
  const ev = await eventually('a SidecarMaterialLost Event', async () => (await eventsFor(ns, r.name)).find((e) => e.reason === 'SidecarMaterialLost'), 10_000);
  expect(ev.type).toBe('Warning');
  expect(ev.message).toContain(`docker-${r.runId}-server`);
  // A later reconcile of the run (not only the one that reported the loss) mints nothing either.
  await reconciledNow(op, ns, r.name);
  expect(await rawClient().getOrUndefined(api.secret(`docker-${r.runId}-server`))).toBeUndefined();
  expect((await rawClient().get(api.secret(`docker-${r.runId}-client`))).data).toEqual(client.data);
  expect(server.data['ca.pem']).toBe(client.data['ca.pem']);
  await finish(r.name, r.runId);
});

test('a run whose sidecar objects the API refuses is cancelled at its start-up timeout, with the API\'s message', async () => {
  const quotas = `/api/v1/namespaces/${ns}/resourcequotas`;
  await createSidecar(ns, 'quick', { kind: 'Container', template: { containers: [{ name: 'redis', image: 'redis:7' }] }, ports: [{ name: 'redis', port: 6379 }], lifecycle: { startupTimeout: '2s' } });
  await rawClient().create(quotas, { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'no-services' }, spec: { hard: { services: '0' } } });
  // The quota admits everything until the quota controller has filled in its status.
  await eventually('the quota to be enforced', async () => (await rawClient().get(`${quotas}/no-services`)).status?.hard?.services === '0', 10_000);
  try {
    const run = await createRun(ns, { metadata: { generateName: 'refused-', annotations: { [ANNOTATIONS.sidecars]: 'quick' } }, spec: { pipelineSpec: { tasks: [inlineTask('t')] } } });
    const cancelled = await eventually('the run to be cancelled', async () => {
      const evs = await eventsFor(ns, run.metadata.name);
      return evs.find((e) => e.reason === 'SidecarStartupFailed');
    }, 20_000);
    expect(cancelled.message).toContain('exceeded quota');
    expect(cancelled.message).toContain('cancelling the run');
    expect((await eventsFor(ns, run.metadata.name)).map((e) => e.reason)).toContain('SidecarApplyFailed');
    const done = await waitRunDone(ns, run.metadata.name);
    expect(done.status.conditions[0].reason).toBe('Cancelled');
  } finally {
    await rawClient().delete(`${quotas}/no-services`).catch(() => undefined);
  }
});

test('what the reconciler holds per run (minted keys, synthesis memo) is released when runs end or are deleted', async () => {
  await createSidecar(ns, 'mem', dockerDaemonSpec());
  const before = op.controller!.reconciler.memoryEntries;
  const runs = await Promise.all([0, 1, 2].map(() => startedRun('mem', 'mem')));
  expect(op.controller!.reconciler.memoryEntries).toBeGreaterThan(before);
  // Two end normally; one is deleted while it runs.
  for (const r of runs.slice(0, 2)) await finish(r.name, r.runId);
  await rawClient().delete(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${runs[2].name}`);
  await eventually('its sidecars to go', async () => (await objectsOfRun(ns, runs[2].runId)).length === 0, 15_000);
  await eventually('per-run memory back to where it was', async () => op.controller!.reconciler.memoryEntries === before, 10_000);
});
