import { createTestNamespace, eventually, rawClient } from '../harness/cluster';
import { podLog } from '../harness/node';
import { TestNode, testNode, releaseTestNode } from '../harness/node-shared';
import { BUSYBOX, podOnNode, retried, runPod } from '../harness/node-pods';
import { DeployedSidecar, deploySidecar, sidecarPod, taskPodLabels } from '../harness/node-sidecars';
import type { PipelineSidecarSpec } from '../../constructs';

/**
 * #10.5 Every kind we ship starts for real with its default options (its real default image name,
 * built locally), becomes Ready through its own probe, and answers a client from a task pod of its
 * run. This file covers Registry and Container; DockerDaemon is in docker-daemon.test.ts.
 */
jest.setTimeout(240_000);

let node: TestNode;
beforeAll(async () => { node = await testNode({ verbose: true }); }, 300_000);
afterAll(async () => {
  await releaseTestNode(node);
  rawClient().close();
}, 60_000);

async function readySidecar(ns: string, run: string, spec: PipelineSidecarSpec): Promise<{ d: DeployedSidecar; ms: number }> {
  const t0 = Date.now();
  const d = await deploySidecar(rawClient(), node.state, ns, run, 'sc', spec);
  await eventually(`the ${spec.kind} pod Ready`, async () => {
    const p = await sidecarPod(rawClient(), ns, d);
    return p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
  }, 120_000, 100);
  return { d, ms: Date.now() - t0 };
}

/** A task pod of `run`, answered by the sidecar at `host` (the Service DNS name resolved by busybox's nslookup). */
function client(ns: string, name: string, run: string, script: string): Record<string, any> {
  return podOnNode(node.state, name, script, { labels: taskPodLabels(run, ns) });
}

describe('#10.5 kinds on the real node', () => {
  it('#10.5 Registry (registry:2, defaults) is Ready through its probe and serves the v2 API to a task pod', async () => {
    const ns = await createTestNamespace('node-registry');
    const { d, ms } = await readySidecar(ns, 'reg-1', { kind: 'Registry' });
    process.stderr.write(`[node] Registry objects applied -> Ready in ${ms} ms\n`);
    const svc = await rawClient().get(`/api/v1/namespaces/${ns}/services/${d.host.split('.')[0]}`);
    // busybox is static (no NSS): connect by the Service's ClusterIP, which kube-proxy routes.
    const { pod } = await runPod(rawClient(), ns, client(ns, 'v2', 'reg-1', retried(`wget -q -S -O- http://${svc.spec.clusterIP}:${d.port}/v2/ 2>&1`)));
    expect(pod.status.phase).toBe('Succeeded');
    expect(podLog(node.state, ns, 'v2', 'main')).toMatch(/Docker-Distribution-Api-Version: registry\/2\.0/i);
  });

  it('#10.5 Container (a user template) is Ready through its own probe and answers a task pod', async () => {
    const ns = await createTestNamespace('node-container');
    const spec: PipelineSidecarSpec = {
      kind: 'Container',
      template: {
        containers: [{
          name: 'web', image: BUSYBOX, imagePullPolicy: 'Never',
          command: ['sh', '-c', 'mkdir -p /www && echo from-the-sidecar > /www/index.html && exec httpd -f -p 8080 -h /www'],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
        }],
      },
    } as PipelineSidecarSpec;
    const { d, ms } = await readySidecar(ns, 'web-1', spec);
    process.stderr.write(`[node] Container objects applied -> Ready in ${ms} ms\n`);
    const svc = await rawClient().get(`/api/v1/namespaces/${ns}/services/${d.host.split('.')[0]}`);
    const { pod } = await runPod(rawClient(), ns, client(ns, 'get', 'web-1', retried(`wget -q -O- http://${svc.spec.clusterIP}:${d.port}/`)));
    expect(pod.status.phase).toBe('Succeeded');
    expect(podLog(node.state, ns, 'get', 'main')).toContain('from-the-sidecar');
  });
});
