import { GATE_PARTS, GATE_TOTALS, GateMoments, gateParts } from '../../bench/gate-timeline';
import { dist } from '../../bench/lib';

const FULL: GateMoments = {
  gated: 12, deployment: 60, podCreated: 90, scheduled: 110, processStarted: 700, daemonServing: 1500,
  running: 760, podReady: 1900, available: 1930, unpended: 1990, taskPodCreated: 2100, taskPodRunning: 2900, done: 9000,
};

test('the parts of created → unpended follow one another and add up to it', () => {
  const parts = gateParts(FULL);
  const upTo = GATE_PARTS.findIndex((p) => p.to === 'unpended');
  const sum = GATE_PARTS.slice(0, upTo + 1).reduce((n, p) => n + parts[p.part], 0);
  expect(sum).toBe(FULL.unpended);
  // And the rest reach the first task pod running.
  expect(GATE_PARTS.slice(upTo + 1).reduce((n, p) => n + parts[p.part], 0)).toBe(FULL.taskPodRunning! - FULL.unpended!);
  // Each part starts where the one before it ended.
  for (let i = 1; i < GATE_PARTS.length; i++) expect(GATE_PARTS[i].from).toBe(GATE_PARTS[i - 1].to);
  expect(parts["dockerd's own start"]).toBe(800);
});

test.each([
  ['a moment not seen', { ...FULL, daemonServing: undefined }, ["dockerd's own start", 'probe period, exec, kubelet report']],
  ['two moments out of order (a log time against a watch time)', { ...FULL, processStarted: 100 }, ['sandbox, image, container start']],
])('%s leaves only the parts it touches out (NaN), never a negative or made-up number', (_what, m, nan) => {
  const parts = gateParts(m as GateMoments);
  for (const [k, v] of Object.entries(parts)) {
    if (nan.includes(k)) expect(v).toBeNaN(); else expect(v).toBeGreaterThanOrEqual(0);
  }
});

test('the JSON totals name unpended and the first task pod', () => {
  expect(GATE_TOTALS.map((t) => t.row)).toEqual(['created -> unpended', 'created -> first task pod running', 'created -> Succeeded']);
});

test.each([
  [[], 50, undefined],
  [[5], 99, 5],
  [[3, 1, 2, NaN], 50, 2],
  [Array.from({ length: 20 }, (_, i) => i + 1), 99, 20],
  [Array.from({ length: 20 }, (_, i) => i + 1), 50, 10],
])('the bench\'s percentile of %j at p%d is %p (nearest rank, finite values only), as the gate summary reads it', (xs, p, want) => {
  expect((dist(xs) as any)?.[`p${p}`]).toEqual(want);
});
