import { clusterState, createTestNamespace, eventually, rawClient } from '../../platform/cluster';
import { apiRequest, kubeletCredentials, podLog, resolveA } from '../../platform/node';
import { TestNode, testNode, releaseTestNode } from '../../platform/node-shared';
import { BUSYBOX, podOnNode, retried, runPod, waitPod, waitReadyIp } from '../../platform/node-pods';
import { REAL_NODE_NAMESPACE_LABEL, pinLabelledNamespaces, waitPinned } from '../../platform/node-pin';
import { FAKE_NODE } from '../../platform/control-plane';
import * as dns from 'node:dns';
import * as fs from 'node:fs';
import { NODE_SETUP_TIMEOUT_MS } from '../../platform/node-lock';

/**
 * The real-node tier: pods run in real containers on a kubelet node joined to the
 * harness's control plane, with cluster DNS and NetworkPolicy enforcement. Needs root.
 */
jest.setTimeout(180_000);

let node: TestNode;
beforeAll(async () => {
  node = await testNode({ verbose: true });
  process.stderr.write(`[node] timings ${JSON.stringify(node.state.timings)}\n`);
}, NODE_SETUP_TIMEOUT_MS);
afterAll(async () => {
  await releaseTestNode(node);
  rawClient().close();
}, 60_000);

describe('real node', () => {
  it('runs a plain pod to Succeeded in a real container, and its output is in the log', async () => {
    const ns = await createTestNamespace('node-plain');
    const marker = `hello-${Math.random().toString(36).slice(2)}`;
    const { pod, ms } = await runPod(rawClient(), ns, podOnNode(node.state, 'plain', `echo ${marker}; echo "uid=$(id -u)"`));
    process.stderr.write(`[node] pod created -> ${pod.status.phase} in ${ms} ms\n`);
    expect(pod.status.phase).toBe('Succeeded');
    expect(pod.spec.nodeName).toBe(node.state.name);
    // The marker is random: only a container that really ran can have printed it.
    expect(podLog(node.state, ns, 'plain', 'main')).toContain(marker);
  });

  it('a failing container makes the pod Failed (negative control of the Succeeded check)', async () => {
    const ns = await createTestNamespace('node-fail');
    const { pod } = await runPod(rawClient(), ns, podOnNode(node.state, 'fails', 'exit 3'));
    expect(pod.status.phase).toBe('Failed');
    expect(pod.status.containerStatuses[0].state.terminated.exitCode).toBe(3);
  });

  it('pods get cluster DNS only: a Service name resolves, anything else is a local NXDOMAIN', async () => {
    const ns = await createTestNamespace('node-dns');
    const svc = await rawClient().create(`/api/v1/namespaces/${ns}/services`, {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'none' }, ports: [{ port: 80 }] },
    });
    const clusterIp: string = svc.spec.clusterIP;
    await eventually('CoreDNS to serve the new Service', async () => (await resolveA(node.state.nodeIp, `web.${ns}.svc.cluster.local`)).includes(clusterIp), 20_000);
    // From inside a pod: the kubelet gave it the node's CoreDNS and the cluster search list, no host resolver.
    const script = [
      'cat /etc/resolv.conf',
      `nslookup web.${ns}.svc.cluster.local`,
      'echo ---; nslookup example.com; echo "rc=$?"',
    ].join('; ');
    const { pod } = await runPod(rawClient(), ns, podOnNode(node.state, 'dns', script));
    const out = podLog(node.state, ns, 'dns', 'main');
    expect(pod.status.phase).toBe('Succeeded');
    expect(out).toContain(`nameserver ${node.state.nodeIp}`);
    expect(out.match(/^nameserver .*/gm)).toEqual([`nameserver ${node.state.nodeIp}`]);
    expect(out).toContain(`search ${ns}.svc.cluster.local svc.cluster.local cluster.local`);
    expect(out.split('---')[0]).toContain(clusterIp);
    expect(out.split('---')[1]).toMatch(/NXDOMAIN/);
    // And asked directly: a name outside the cluster zone is answered NXDOMAIN, not forwarded.
    const r = new dns.promises.Resolver({ timeout: 2000, tries: 1 });
    r.setServers([node.state.nodeIp]);
    await expect(r.resolve4('example.com')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('NetworkPolicy is enforced: the allowed pod connects, the other is refused, and without the policy both connect', async () => {
    const client = rawClient();
    const ns = await createTestNamespace('node-netpol');
    await client.create(`/api/v1/namespaces/${ns}/pods`, podOnNode(node.state, 'server',
      'mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www', { serve: true, labels: { app: 'server' } }));
    const serverIp = await waitReadyIp(client, ns, 'server');
    const probe = (name: string, role: string) => podOnNode(node.state, name, retried(`wget -T 2 -q -O- http://${serverIp}:8080/`, 4), { labels: { role } });
    // Negative control: with no policy, a pod that the policy will deny connects.
    const before = await runPod(client, ns, probe('denied-before', 'other'));
    expect(before.pod.status.phase).toBe('Succeeded');
    await client.create(`/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`, {
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'only-allowed' },
      spec: { podSelector: { matchLabels: { app: 'server' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { role: 'allowed' } } }] }] },
    });
    // kube-router applies the policy asynchronously: wait until a denied probe is refused.
    let n = 0;
    await eventually('kube-router to enforce the policy', async () => {
      const r = await runPod(client, ns, probe(`denied-${n++}`, 'other'));
      return r.pod.status.phase === 'Failed';
    }, 60_000, 500);
    const allowed = await runPod(client, ns, probe('allowed', 'allowed'));
    expect(allowed.pod.status.phase).toBe('Succeeded');
    expect(podLog(node.state, ns, 'allowed', 'main')).toContain('served');
    const denied = await runPod(client, ns, probe('denied-after', 'other'));
    expect(denied.pod.status.phase).toBe('Failed');
  });

  it('pods of a namespace labelled for the node land on it whoever creates them; other namespaces stay on kwok', async () => {
    const client = rawClient();
    const unpin = await pinLabelledNamespaces(client, node.state);
    try {
      const pinned = await createTestNamespace('node-pinned', { [REAL_NODE_NAMESPACE_LABEL]: node.state.name });
      const plain = await createTestNamespace('node-unpinned');
      await waitPinned(client, pinned, node.state);
      // A pod with no nodeSelector and no toleration, as the operator's Deployments make them.
      const bare = (name: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: BUSYBOX, imagePullPolicy: 'Never', command: ['true'] }] } });
      await client.create(`/api/v1/namespaces/${pinned}/pods`, bare('p'));
      await client.create(`/api/v1/namespaces/${plain}/pods`, bare('p'));
      const onNode = await waitPod(client, pinned, 'p', (x) => x?.status?.phase === 'Succeeded');
      expect(onNode.spec.nodeName).toBe(node.state.name);
      const onKwok = await waitPod(client, plain, 'p', (x) => !!x?.spec?.nodeName);
      expect(onKwok.spec.nodeName).toBe(FAKE_NODE);
    } finally {
      await unpin();
    }
  });

  it('the kubelet is system:node:<name>, held by the Node authorizer and NodeRestriction; the API server reaches it by InternalIP', async () => {
    const me = kubeletCredentials(node.state);
    const name = node.state.name;
    // Its own Node: allowed.
    expect((await apiRequest(node.state, 'GET', `/api/v1/nodes/${name}`, undefined, undefined, me)).status).toBe(200);
    // Secrets cluster-wide: the Node authorizer only lets a kubelet read what its own pods use.
    const secrets = await apiRequest(node.state, 'GET', '/api/v1/secrets', undefined, undefined, me);
    expect(secrets.status).toBe(403);
    expect(secrets.json.message).toContain(`User "system:node:${name}"`);
    // Another Node (kwok's): NodeRestriction refuses a kubelet changing it.
    const other = await apiRequest(node.state, 'PATCH', `/api/v1/nodes/${FAKE_NODE}`, { metadata: { labels: { touched: 'yes' } } }, 'application/merge-patch+json', me);
    expect(other.status).toBe(403);
    // Negative control: the harness's own credentials may do both.
    expect((await apiRequest(node.state, 'GET', '/api/v1/secrets')).status).toBe(200);
    // The API server proxies logs from the kubelet by its InternalIP, with its client certificate.
    const ns = await createTestNamespace('node-logs');
    const marker = `via-api-${Math.random().toString(36).slice(2)}`;
    const { pod } = await runPod(rawClient(), ns, podOnNode(node.state, 'logs', `echo ${marker}`));
    expect(pod.status.phase).toBe('Succeeded');
    const log = await apiRequest(node.state, 'GET', `/api/v1/namespaces/${ns}/pods/logs/log?container=main`);
    expect(log.status).toBe(200);
    expect(String(log.json)).toContain(marker);
    const apiserverArgs = fs.readFileSync(`/proc/${clusterState().pids['kube-apiserver']}/cmdline`, 'utf8').split('\0');
    expect(apiserverArgs).toEqual(expect.arrayContaining(['--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction', '--kubelet-preferred-address-types=InternalIP']));
  });
});
