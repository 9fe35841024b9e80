import { createTestNamespace, eventually, rawClient, testKubeConfig } from '../harness/cluster';
import { NEVER_READY_IMAGE } from '../harness/control-plane';
import { TektonSimulator } from '../harness/simulator';

/** The Tekton stand-in must behave like Tekton where our operator can tell the difference. */
describe('Tekton simulator', () => {
  const client = rawClient();
  let ns: string;
  let sim: TektonSimulator;
  beforeAll(async () => {
    ns = await createTestNamespace('platform-sim');
    sim = new TektonSimulator(testKubeConfig(), ns);
    await sim.start();
    await client.create(`/apis/tekton.dev/v1/namespaces/${ns}/pipelines`, {
      apiVersion: 'tekton.dev/v1', kind: 'Pipeline', metadata: { name: 'build' },
      spec: { tasks: [{ name: 'compile', taskRef: { name: 't' } }, { name: 'unit', taskRef: { name: 't' }, runAfter: ['compile'] }] },
    });
  });
  afterAll(() => sim.stop());

  const runPath = (name: string) => `/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns/${name}`;

  test('leaves a pending run alone, starts it once unpended, runs one labelled Ready pod per task, finishes on request', async () => {
    await client.create(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns`, {
      apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'r1' },
      spec: { pipelineRef: { name: 'build' }, status: 'PipelineRunPending' },
    });
    await new Promise((r) => setTimeout(r, 500));
    expect((await client.get(runPath('r1'))).status).toBeUndefined();
    expect((await client.get(`/api/v1/namespaces/${ns}/pods`)).items).toHaveLength(0);

    await client.jsonPatch(runPath('r1'), [{ op: 'remove', path: '/spec/status' }]);
    const pods = await eventually('two Ready task pods', async () => {
      const list = await client.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'tekton.dev/pipelineRun=r1' });
      const ready = list.items.filter((p: any) => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
      return ready.length === 2 ? list.items : undefined;
    });
    const run = await client.get(runPath('r1'));
    expect(run.status.conditions[0]).toMatchObject({ type: 'Succeeded', status: 'Unknown', reason: 'Running' });
    expect(pods.map((p: any) => p.metadata.labels['tekton.dev/pipelineTask']).sort()).toEqual(['compile', 'unit']);
    for (const p of pods) {
      expect(p.metadata.labels['tekton.dev/pipeline']).toBe('build');
      expect(p.metadata.labels['tekton.dev/pipelineRunUID']).toBe(run.metadata.uid);
    }

    await sim.finish(ns, 'r1', 'Failed');
    const finished = await client.get(runPath('r1'));
    expect(finished.status.conditions[0]).toMatchObject({ type: 'Succeeded', status: 'False' });
    expect(sim.started).toEqual([`${ns}/r1`]);
  });

  test('a cancelled run ends Failed with reason Cancelled', async () => {
    await client.create(`/apis/tekton.dev/v1/namespaces/${ns}/pipelineruns`, {
      apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name: 'r2' },
      spec: { pipelineRef: { name: 'build' }, status: 'PipelineRunPending' },
    });
    await client.mergePatch(runPath('r2'), { spec: { status: 'Cancelled' } });
    await eventually('r2 cancelled', async () => (await client.get(runPath('r2'))).status?.conditions?.[0]?.reason === 'Cancelled');
  });

  test(`kwok keeps a pod running ${NEVER_READY_IMAGE} not Ready, while other pods become Ready`, async () => {
    const mk = (name: string, image: string) => client.create(`/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image }] },
    });
    await mk('never', NEVER_READY_IMAGE);
    await mk('ready', 'example.invalid/ok:1');
    await eventually('pod ready is Ready', async () => (await client.get(`/api/v1/namespaces/${ns}/pods/ready`)).status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'));
    await new Promise((r) => setTimeout(r, 1000));
    const never = await client.get(`/api/v1/namespaces/${ns}/pods/never`);
    expect(never.spec.nodeName).toBe('kwok-node-0');
    expect(never.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ?? false).toBe(false);
  });
});
