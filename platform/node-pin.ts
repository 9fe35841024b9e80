import type { RawClient } from '../src/k8s/raw';
import { NodeState, REAL_NODE_TAINT } from './node';

/**
 * Sends every pod created in a labelled namespace to the real node, whoever creates it (the
 * operator's Deployments, Tekton's TaskRun pods, affinity assistants), with no change to their
 * code: a MutatingAdmissionPolicy (in-process CEL, no webhook server) sets the pod's nodeSelector
 * and adds the node's toleration. Other namespaces keep landing on kwok's fake node, so tests of
 * both tiers can share one control plane and run in parallel.
 */

/** The namespace label that opts a namespace's pods into the real node (its value: the node name). */
export const REAL_NODE_NAMESPACE_LABEL = 'pipeline-sidecars.dev/real-node';

const API = '/apis/admissionregistration.k8s.io/v1';

/** The policy and binding for one node, as plain objects (pure, for reading and testing). */
export function pinPolicy(nodeName: string): { policy: Record<string, any>; binding: Record<string, any> } {
  const name = `pin-pods-to-${nodeName}`;
  const toleration = `{"key": "${REAL_NODE_TAINT.key}", "operator": "Equal", "value": "${REAL_NODE_TAINT.value}", "effect": "${REAL_NODE_TAINT.effect}"}`;
  return {
    policy: {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingAdmissionPolicy', metadata: { name },
      spec: {
        matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }] },
        failurePolicy: 'Fail',
        reinvocationPolicy: 'Never',
        mutations: [{
          patchType: 'JSONPatch',
          jsonPatch: {
            expression: `[
              JSONPatch{op: "add", path: "/spec/nodeSelector", value: {"kubernetes.io/hostname": "${nodeName}"}},
              has(object.spec.tolerations)
                ? JSONPatch{op: "add", path: "/spec/tolerations/-", value: ${toleration}}
                : JSONPatch{op: "add", path: "/spec/tolerations", value: [${toleration}]}
            ]`,
          },
        }],
      },
    },
    binding: {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingAdmissionPolicyBinding', metadata: { name },
      spec: {
        policyName: name,
        matchResources: { namespaceSelector: { matchLabels: { [REAL_NODE_NAMESPACE_LABEL]: nodeName } } },
      },
    },
  };
}

/** Installs the policy for `node`; returns a function that removes it. */
export async function pinLabelledNamespaces(client: RawClient, node: NodeState): Promise<() => Promise<void>> {
  const { policy, binding } = pinPolicy(node.name);
  await client.create(`${API}/mutatingadmissionpolicies`, policy);
  await client.create(`${API}/mutatingadmissionpolicybindings`, binding);
  return async () => {
    await client.delete(`${API}/mutatingadmissionpolicybindings/${binding.metadata.name}`).catch(() => undefined);
    await client.delete(`${API}/mutatingadmissionpolicies/${policy.metadata.name}`).catch(() => undefined);
  };
}

/**
 * Waits until the policy acts in `ns` (the API server loads new policies asynchronously, about a
 * second): a dry-run pod create there must come back pinned to the node.
 */
export async function waitPinned(client: RawClient, ns: string, node: NodeState, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const probe = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'pin-probe-' }, spec: { containers: [{ name: 'c', image: 'pipeline-sidecars.local/pause:1' }] } };
  while (Date.now() < deadline) {
    const p = await client.create(`/api/v1/namespaces/${ns}/pods`, probe, { dryRun: 'All' });
    if (p?.spec?.nodeSelector?.['kubernetes.io/hostname'] === node.name) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`pods in ${ns} are not pinned to ${node.name} after ${timeoutMs} ms: is the MutatingAdmissionPolicy admission plugin on?`);
}
