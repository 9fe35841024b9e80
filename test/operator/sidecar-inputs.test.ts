import { ANNOTATIONS } from '../../constructs/api/spec';
import { Operator } from '../../src/operator';
import { SIDECAR_USE_LABEL, externalPodInputs } from '../../src/sidecar-inputs';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { inlineTask, waitRunDone } from '../../platform/runs';
import {
  createRun, createSidecar, deleteWebhookConfig, ensureCrd, eventsFor, eventually, getRun, inProcessOperator, objectsOfRun,
} from './helpers';

/** A PipelineSidecar reads only Secrets and ConfigMaps their owners labelled for sidecar use. */

describe('externalPodInputs: what a rendered pod reads besides the run\'s own objects', () => {
  const dep = (spec: Record<string, any>) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { template: { spec } } });
  const own = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'd-client' } };
  const rows: Array<[string, Record<string, any>, string[]]> = [
    ['env secretKeyRef', dep({ containers: [{ env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } }] }] }), ['Secret/db']],
    ['env configMapKeyRef', dep({ containers: [{ env: [{ name: 'A', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'k' } } }] }] }), ['ConfigMap/cfg']],
    ['envFrom of both, in an init container', dep({ initContainers: [{ envFrom: [{ secretRef: { name: 's' } }, { configMapRef: { name: 'c' } }] }], containers: [] }), ['Secret/s', 'ConfigMap/c']],
    ['secret, configMap and projected volumes', dep({ containers: [], volumes: [{ secret: { secretName: 'v1' } }, { configMap: { name: 'v2' } }, { projected: { sources: [{ secret: { name: 'v3' } }, { configMap: { name: 'v4' } }] } }] }), ['Secret/v1', 'ConfigMap/v2', 'Secret/v3', 'ConfigMap/v4']],
    ['the run\'s own Secret is the operator\'s', dep({ containers: [{ env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 'd-client', key: 'pw' } } }] }] }), []],
    ['plain values and fieldRefs read nothing', dep({ containers: [{ env: [{ name: 'A', value: 'x' }, { name: 'B', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] }] }), []],
  ];
  test.each(rows)('%s', (_why, m, want) => expect(externalPodInputs([m, own]).map((i) => `${i.kind}/${i.name}`)).toEqual(want));
});

describe('against the API server', () => {
  let ns: string;
  let op: Operator;
  beforeAll(async () => {
    await ensureCrd();
    ns = await createTestNamespace('inputs');
    op = inProcessOperator(ns, [ns]);
    await op.start();
  }, 120_000);
  afterAll(async () => {
    await op?.stop();
    await deleteWebhookConfig(`ps-${ns}`);
  });

  test('a sidecar reading an unlabelled Secret is refused with the fix; once its owner labels it, runs get the sidecar', async () => {
    await rawClient().create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'prod-db' }, stringData: { password: 'hunter2' } });
    await createSidecar(ns, 'reader', {
      kind: 'Container', ports: [{ name: 'http', port: 8080 }],
      template: { containers: [{ name: 'app', image: 'nginx:1', env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'prod-db', key: 'password' } } }] }] },
    });
    const refused = await createRun(ns, { metadata: { generateName: 'steal-', annotations: { [ANNOTATIONS.sidecars]: 'reader' } }, spec: { pipelineSpec: { tasks: [inlineTask('t')] } } });
    const ev = await eventually('a SidecarRefused Event', async () => (await eventsFor(ns, refused.metadata.name)).find((e) => e.reason === 'SidecarRefused'), 20_000);
    expect(ev.message).toContain('Secret prod-db');
    expect(ev.message).toContain(`kubectl label secret prod-db ${SIDECAR_USE_LABEL}=true`);
    expect((await waitRunDone(ns, refused.metadata.name)).status.conditions[0].reason).toBe('Cancelled');
    expect(await objectsOfRun(ns, refused.metadata.annotations[ANNOTATIONS.runId])).toEqual([]);

    // Negative control: the owner consents, and the same PipelineSidecar works.
    await rawClient().mergePatch(`/api/v1/namespaces/${ns}/secrets/prod-db`, { metadata: { labels: { [SIDECAR_USE_LABEL]: 'true' } } });
    const ok = await createRun(ns, { metadata: { generateName: 'allowed-', annotations: { [ANNOTATIONS.sidecars]: 'reader' } }, spec: { pipelineSpec: { tasks: [inlineTask('t')] } } });
    await eventually('the allowed run to start', async () => (await getRun(ns, ok.metadata.name)).spec.status === undefined, 20_000);
    expect((await waitRunDone(ns, ok.metadata.name)).status.conditions[0].status).toBe('True');
  });
});
