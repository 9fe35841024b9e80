/**
 * Whether a NetworkPolicy, as the API server stored it, admits a pod with these labels from the same
 * namespace: the rule an enforcing CNI applies, evaluated on the stored object so that a test on the
 * kwok node (where nothing enforces) still checks what a real node would do. The real-node tier
 * checks the enforcement itself.
 */
export function policyAdmits(policy: Record<string, any>, labels: Record<string, string>): boolean {
  const rules: Array<Record<string, any>> = policy.spec?.ingress ?? [];
  return rules.some((rule) => {
    const peers: Array<Record<string, any>> | undefined = rule.from;
    if (!peers || peers.length === 0) return true; // a rule without `from` admits every source
    return peers.some((peer) => peerAdmits(peer, labels));
  });
}

function peerAdmits(peer: Record<string, any>, labels: Record<string, string>): boolean {
  // A namespace-wide or address peer admits more than one run's pods: count it as admitting.
  if (peer.namespaceSelector || peer.ipBlock) return true;
  const sel = peer.podSelector ?? {};
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    if (e.operator === 'In' && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === 'NotIn' && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}
