import { App, Chart } from 'cdk8s';
import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { TEKTON_CONTROLLER_USER, TEKTON_LABELS } from '../../constructs/api/tekton-labels';
import { bookkeepingPolicy } from '../../constructs/bundle/bookkeeping-policy';
import { RunLabelGuard } from '../../constructs/bundle/run-label-guard';
import { ApiError } from '../../src/k8s/raw';
import { applyAll } from '../../platform/bootstrap';
import { eventually, rawClient } from '../../platform/cluster';
import { podLog } from '../../platform/node';
import type { TestNode } from '../../platform/node-shared';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';
import { succeededCondition } from '../../src/pipelinerun';
import { readRun, waitRunDone } from '../../platform/runs';
import { createRun, ServedOperator } from '../operator/helpers';
import { serviceAccountClient } from '../webhook/sa-clients';
import { DOCKER_CLI, daemonRun, TektonOnNode, tektonOnNode, tepPipelineSpec } from './tekton-fixture';

/**
 * Tekton's run labels, on the real Tekton and the real node: a PipelineRun that copies another
 * run's uid label would hand it to its affinity-assistant pod (the bundle's BookkeepingPolicy
 * refuses such a run), and a user who may create Pods could label one as another run's and reach
 * that run's daemon (the bundle's opt-in RunLabelGuard refuses the pod).
 */
jest.setTimeout(600_000);

let node: TestNode;
let fx: ServedOperator;
let setup: TektonOnNode;
const API = '/apis/admissionregistration.k8s.io/v1';
const policies: Array<[string, string]> = [];

beforeAll(async () => {
  setup = await tektonOnNode('node-labels');
  ({ node, fx } = setup);
}, NODE_SETUP_TIMEOUT_MS);

afterAll(async () => {
  for (const [kind, name] of policies.reverse()) await rawClient().delete(`${API}/${kind}/${name}`).catch(() => undefined);
  await setup?.stop();
}, 120_000);

async function applyPolicy(objs: Array<Record<string, any>>): Promise<void> {
  await applyAll(rawClient(), objs, 'run-labels-test');
  const plural: Record<string, string> = { ValidatingAdmissionPolicy: 'validatingadmissionpolicies', ValidatingAdmissionPolicyBinding: 'validatingadmissionpolicybindings' };
  for (const o of objs) policies.push([plural[o.kind], o.metadata.name]);
}
async function removePolicies(): Promise<void> {
  for (const [kind, name] of policies.splice(0).reverse()) await rawClient().delete(`${API}/${kind}/${name}`);
}
const onlyHere = () => ({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [fx.ns] }] });

/** A run whose daemon stays up until the run is cancelled; resolves once its task has reached the daemon. */
async function liveDaemonRun(prefix: string): Promise<{ run: Record<string, any>; ip: string; port: number }> {
  const run = await createRun(fx.ns, daemonRun(prefix, 'docker version --format "server={{.Server.Version}}"; sleep 300'));
  const runId = run.metadata.annotations[ANNOTATIONS.runId];
  await eventually(`run ${run.metadata.name} to be released`, async () => (await readRun(fx.ns, run.metadata.name)).spec.status === undefined, 120_000, 500);
  const svc = (await rawClient().get(`/api/v1/namespaces/${fx.ns}/services`, { labelSelector: `${LABELS.runId}=${runId}` })).items[0];
  return { run, ip: svc.spec.clusterIP, port: svc.spec.ports[0].port };
}

async function cancel(name: string): Promise<void> {
  await rawClient().mergePatch(`/apis/tekton.dev/v1/namespaces/${fx.ns}/pipelineruns/${name}`, { spec: { status: 'Cancelled' } }).catch(() => undefined);
}

/** A run with a volumeClaimTemplate workspace (so Tekton makes an affinity assistant), labelled `labels`. */
function runWithAffinityAssistant(labels: Record<string, string>): Record<string, any> {
  return {
    metadata: { generateName: 'copier-', labels },
    spec: {
      pipelineSpec: {
        workspaces: [{ name: 'ws' }],
        tasks: [{ name: 't', workspaces: [{ name: 'ws', workspace: 'ws' }], taskSpec: { workspaces: [{ name: 'ws' }], steps: [{ name: 's', image: DOCKER_CLI, script: 'true' }] } }],
      },
      workspaces: [{ name: 'ws', volumeClaimTemplate: { spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Mi' } } } } }],
    },
  };
}

it('a PipelineRun carrying another run\'s tekton.dev/pipelineRunUID gives it to its affinity-assistant pod without the BookkeepingPolicy, and is refused at CREATE with it', async () => {
  const a = await liveDaemonRun('victim-');
  const uid = a.run.metadata.uid;

  // Without the policy (the negative control): Tekton copies the label onto the affinity assistant.
  const b = await createRun(fx.ns, runWithAffinityAssistant({ [TEKTON_LABELS.pipelineRunUid]: uid }));
  const aaPod = await eventually('the copier\'s affinity-assistant pod', async () => {
    const pods = (await rawClient().get(`/api/v1/namespaces/${fx.ns}/pods`, { labelSelector: 'app.kubernetes.io/component=affinity-assistant' })).items;
    return pods.find((p: any) => p.metadata.labels[TEKTON_LABELS.pipelineRun] === b.metadata.name);
  }, 60_000, 500);
  expect(aaPod.metadata.labels[TEKTON_LABELS.pipelineRunUid]).toBe(uid);
  expect(uid).not.toBe(b.metadata.uid);
  await cancel(b.metadata.name);

  // With the bundle's policy: the copier is refused, naming the label.
  await applyPolicy(bookkeepingPolicy({ name: `labels-${fx.ns}`, serviceAccount: { namespace: fx.ns, name: 'nobody' }, namespaceSelector: onlyHere() }));
  const refusal = await eventually('the policy to refuse the copier', async () => {
    try {
      const c = await createRun(fx.ns, runWithAffinityAssistant({ [TEKTON_LABELS.pipelineRunUid]: uid }));
      await cancel(c.metadata.name);
      return undefined;
    } catch (e) {
      if (e instanceof ApiError && e.statusCode === 403) return e;
      throw e;
    }
  }, 30_000, 500);
  expect(refusal.message).toContain(`may not carry the labels ${TEKTON_LABELS.pipelineRunUid}`);
  await removePolicies();
  await cancel(a.run.metadata.name);
  await waitRunDone(fx.ns, a.run.metadata.name, 120_000);
});

it('RunLabelGuard: without it, a user who may create Pods labels one as another run\'s and reaches its daemon; with it, that pod is refused, and a whole TEP run (Tekton\'s task pods) still Succeeds', async () => {
  const { client: hostile } = await serviceAccountClient(fx.ns, 'pod-maker', [{ apiGroups: [''], resources: ['pods'], verbs: ['create', 'get'] }]);
  const a = await liveDaemonRun('target-');
  const impostor = {
    apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'impostor-', labels: { [TEKTON_LABELS.pipelineRunUid]: a.run.metadata.uid } },
    spec: {
      restartPolicy: 'Never',
      containers: [{
        name: 'nc', image: DOCKER_CLI, command: ['sh', '-c',
          `i=0; while [ $i -lt 20 ]; do i=$((i+1)); if timeout 3 nc ${a.ip} ${a.port} -e true; then echo CONNECTED; exit 0; fi; sleep 1; done; echo REFUSED`],
      }],
    },
  };
  const podsPath = `/api/v1/namespaces/${fx.ns}`;

  // The documented gap, with the option off: the impostor connects.
  const p = await hostile.create(`${podsPath}/pods`, impostor);
  await eventually('the impostor pod to finish', async () => ['Succeeded', 'Failed'].includes((await rawClient().get(`${podsPath}/pods/${p.metadata.name}`)).status?.phase), 120_000, 500);
  expect(podLog(node.state, fx.ns, p.metadata.name, 'nc')).toMatch(/^CONNECTED$/m);

  // The option on. This harness runs Tekton's controller and kube-controller-manager with its
  // admin credentials, so `admin` stands for both beside Tekton's own ServiceAccount.
  const app = new App();
  const chart = new Chart(app, 'guard');
  new RunLabelGuard(chart, 'Guard', { name: `guard-${fx.ns}`, namespaceSelector: onlyHere(), trustedUsers: [TEKTON_CONTROLLER_USER, 'admin'] });
  await applyPolicy(chart.toJson());
  const refused = await eventually('the guard to refuse the impostor', async () => {
    try {
      await hostile.create(`${podsPath}/pods`, impostor, { dryRun: 'All' });
      return undefined;
    } catch (e) {
      if (e instanceof ApiError && e.statusCode === 403) return e;
      throw e;
    }
  }, 30_000, 500);
  expect(refused.message).toContain('only Tekton may set them');
  await cancel(a.run.metadata.name);

  // Tekton's own pods carry the same labels and are never refused: the TEP example end to end.
  const tep = await createRun(fx.ns, {
    metadata: { generateName: 'tep-guarded-', annotations: { [ANNOTATIONS.sidecars]: 'docker' } },
    spec: { pipelineSpec: tepPipelineSpec('guarded-ok'), params: [{ name: 'image', value: 'guarded:1' }], workspaces: [{ name: 'source', emptyDir: {} }] },
  });
  const done = await waitRunDone(fx.ns, tep.metadata.name, 240_000);
  expect(succeededCondition(done)).toMatchObject({ status: 'True' });
  await removePolicies();
  hostile.close();
});
