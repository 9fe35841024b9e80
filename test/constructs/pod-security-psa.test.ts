import { baselineViolations } from '../../constructs/pod-security';
import { ApiError } from '../../src/k8s/raw';
import { createTestNamespace, rawClient } from '../../platform/cluster';
import { BASELINE_CASES } from './pod-security-cases';

/**
 * Our baseline check against the real one: the API server's Pod Security admission, enforcing
 * "baseline" on a namespace, judges the same pods (server-side dry run, nothing is stored).
 */
let ns: string;
beforeAll(async () => {
  ns = await createTestNamespace('psa', { 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/enforce-version': 'latest' });
  // The ServiceAccount admission plugin wants the pod's account to exist before anything else looks.
  await rawClient().create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } }).catch((e) => {
    if (!(e instanceof ApiError && e.statusCode === 409)) throw e;
  });
});

/** 'admitted', 'baseline' (refused by Pod Security) or the API's other answer. */
async function apiVerdict(pod: { metadata?: Record<string, unknown>; spec?: Record<string, unknown> }, i: number): Promise<string> {
  try {
    await rawClient().create(`/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { ...pod.metadata, name: `p${i}` }, spec: pod.spec }, { dryRun: 'All' });
    return 'admitted';
  } catch (e) {
    if (e instanceof ApiError && e.statusCode === 403 && /violates PodSecurity "baseline/.test(e.message)) return 'baseline';
    return `other: ${(e as Error).message}`;
  }
}

const judged = BASELINE_CASES.map((c, i) => [c.name, c, i] as const).filter(([, c]) => !c.notForApiServer);

test.each(judged)('the API server\'s Pod Security admission agrees on: %s', async (_name, c, i) => {
  const ours = baselineViolations(c.pod).length > 0 ? 'baseline' : 'admitted';
  expect(await apiVerdict(c.pod, i)).toBe(ours);
});

test('both verdicts occur among the pods the API server judged (no vacuous agreement)', () => {
  expect(judged.filter(([, c]) => c.violations.length > 0).length).toBeGreaterThan(15);
  expect(judged.filter(([, c]) => c.violations.length === 0).length).toBeGreaterThan(10);
});
