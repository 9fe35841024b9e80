/**
 * A short chaos run in the suite (bench/chaos-core.ts; `npm run chaos` is the full one): 20 runs
 * asking for a DockerDaemon, the operator child process SIGKILLed 3 times at random moments and
 * restarted, its watches cut twice. The API server is shared with the other suites, so it is not
 * restarted here. Every violation the chaos core finds fails the test.
 */
import { runChaos } from '../../bench/chaos-core';
import { clusterState, createTestNamespace } from '../../platform/cluster';

test('20 runs, 3 operator SIGKILLs, 2 watch cuts: sidecars exactly once, nothing left, nothing stuck', async () => {
  const ns = await createTestNamespace('chaos', { 'pipeline-sidecars.dev/allow-privileged': 'true' });
  const lines: string[] = [];
  const result = await runChaos({
    kubeconfig: clusterState().kubeconfig, namespace: ns, runs: 20, kills: 3, watchCuts: 2, rate: 5,
    startupTimeout: '60s', settleTimeoutMs: 60_000, log: (l) => lines.push(l),
  });
  if (result.violations.length) process.stderr.write(`chaos timeline:\n${result.timeline.join('\n')}\ncounts: ${JSON.stringify(result.counts)}\n`);
  expect(result.violations).toEqual([]);
  expect(result.counts).toMatchObject({ runs: 20, kills: 3, restarts: 3, runsInCluster: 20, gotSidecarsOnce: 20, objectsLeft: 0, finished: 20 });
}, 150_000);
