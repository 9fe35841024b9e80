import type { RawClient } from '../src/k8s/raw';
import { setTimeout as sleep } from 'node:timers/promises';
import { NodeState, REAL_NODE_TOLERATION } from './node';
import { TEKTON_IMAGES } from './tekton';

/**
 * The shell image the node cache imports (busybox-static, BUSYBOX_IMAGE in platform/k8s/node.env), never
 * pulled: the same one Tekton's controller is told to use for its script steps.
 */
export const BUSYBOX = TEKTON_IMAGES.shell;

export interface PodSpecOptions {
  readonly labels?: Record<string, string>;
  /** A long-running pod (restartPolicy Always) instead of a one-shot one. */
  readonly serve?: boolean;
  readonly image?: string;
}

/** A pod pinned to the real node, tolerating its taint, running `script` in busybox sh; never pulled. */
export function podOnNode(node: NodeState, name: string, script: string, o: PodSpecOptions = {}): Record<string, any> {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, labels: o.labels ?? {} },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': node.name },
      tolerations: [REAL_NODE_TOLERATION],
      restartPolicy: o.serve ? 'Always' : 'Never',
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      containers: [{ name: 'main', image: o.image ?? BUSYBOX, imagePullPolicy: 'Never', command: ['sh', '-c', script] }],
    },
  };
}

/** Creates a pod and waits until it reaches one of `phases`; returns the pod and the time it took. */
export async function runPod(client: RawClient, ns: string, pod: Record<string, any>, phases: string[] = ['Succeeded', 'Failed'], timeoutMs = 60_000): Promise<{ pod: any; ms: number }> {
  const t0 = Date.now();
  await client.create(`/api/v1/namespaces/${ns}/pods`, pod);
  const p = await waitPod(client, ns, pod.metadata.name, (x) => phases.includes(x?.status?.phase), timeoutMs);
  return { pod: p, ms: Date.now() - t0 };
}

/** Polls a pod until `ok` holds; the error names its phase and container states. */
export async function waitPod(client: RawClient, ns: string, name: string, ok: (pod: any) => boolean, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < deadline) {
    last = await client.getOrUndefined(`/api/v1/namespaces/${ns}/pods/${name}`);
    if (last && ok(last)) return last;
    await sleep(100);
  }
  throw new Error(`pod ${ns}/${name} not as expected after ${timeoutMs} ms: phase ${last?.status?.phase}, ` +
    `containers ${JSON.stringify(last?.status?.containerStatuses?.map((c: any) => c.state) ?? [])}, conditions ${JSON.stringify(last?.status?.conditions ?? [])}`);
}

/** Whether a running pod is Ready, and its IP. */
export async function waitReadyIp(client: RawClient, ns: string, name: string, timeoutMs = 60_000): Promise<string> {
  const p = await waitPod(client, ns, name, (x) => x?.status?.podIP && x.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'), timeoutMs);
  return p.status.podIP;
}

/**
 * `cmd` retried once a second up to `tries` times, printing how many it took. kube-router admits a
 * new pod as a peer only after it has synced that pod's IP into its ipsets (about a second after
 * the pod starts), so a client's very first connection can be refused; allowed clients retry, and
 * refused ones must stay refused over every try.
 */
export function retried(cmd: string, tries = 10): string {
  return `i=0; while [ $i -lt ${tries} ]; do i=$((i+1)); if ${cmd}; then echo "attempts=$i"; exit 0; fi; sleep 1; done; echo "attempts=$i"; exit 1`;
}

