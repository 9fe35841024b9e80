import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * test/jest/real-node-runner.js: which files count as real-node files, how a run is split between
 * the pools, that it drives jest's runner as the plan says, and that the path rule still holds
 * (nothing outside test/node starts the real node).
 */

interface FakeTest { path: string; context: { config: { rootDir: string } } }
interface Run { pool: 'all' | 'node' | 'rest'; tests: FakeTest[]; maxWorkers: number }
interface Pool {
  globalConfig: { maxWorkers: number };
  runTests: jest.Mock<Promise<void>, [FakeTest[], unknown, { serial: boolean }]>;
  on: jest.Mock<() => void, [string, (x: unknown) => void]>;
  offs: jest.Mock[];
}
interface RunnerModule {
  new (globalConfig: { maxWorkers: number }, context: object, options?: object): {
    supportsEventEmitters: boolean;
    isSerial?: boolean;
    pools: Record<'all' | 'node' | 'rest', Pool>;
    runTests(tests: FakeTest[], watcher: unknown, options: { serial: boolean }): Promise<void>;
    on(eventName: string, listener: (x: unknown) => void): () => void;
  };
  planRun(tests: FakeTest[], maxWorkers: number, serial: boolean): Run[];
  isRealNodeFile(test: FakeTest): boolean;
}

// jest's runner, faked: each instance keeps the globalConfig it got and records its calls.
jest.mock('jest-runner', () => ({
  default: class {
    offs: jest.Mock[] = [];
    runTests = jest.fn(async () => undefined);
    on = jest.fn(() => { const off = jest.fn(); this.offs.push(off); return off; });
    constructor(public globalConfig: { maxWorkers: number }) {}
  },
}));

// eslint-disable-next-line @typescript-eslint/no-require-imports
const Runner: RunnerModule = require('./real-node-runner');

const ROOT = '/repo';
const t = (rel: string, rootDir = ROOT): FakeTest => ({ path: path.join(rootDir, rel), context: { config: { rootDir } } });
const names = (tests: FakeTest[]) => tests.map((x) => path.relative(x.context.config.rootDir, x.path));

describe('isRealNodeFile', () => {
  test.each([
    ['test/node/kinds.test.ts', true],
    ['test/node/argocd.test.ts', true],
    ['test/operator/crd.test.ts', false],
    ['test/nodes/x.test.ts', false],
    ['src/test/node/x.test.ts', false],
    ['test/webhook/node.test.ts', false],
  ])('%s: %s', (rel, want) => {
    expect(Runner.isRealNodeFile(t(rel))).toBe(want);
  });

  test('is relative to the project rootDir, not to wherever the checkout lives', () => {
    expect(Runner.isRealNodeFile(t('test/operator/crd.test.ts', '/home/ci/test/node/checkout'))).toBe(false);
    expect(Runner.isRealNodeFile(t('test/node/kinds.test.ts', '/home/ci/test/node/checkout'))).toBe(true);
  });
});

describe('planRun', () => {
  const mixed = [t('test/node/a.test.ts'), t('test/operator/b.test.ts'), t('test/node/c.test.ts'), t('test/webhook/d.test.ts'), t('test/x/e.unit.test.ts')];

  test('real-node files get one worker, in jest\'s order; the rest get the other workers', () => {
    const runs = Runner.planRun(mixed, 2, false);
    expect(runs.map((r) => [r.pool, names(r.tests), r.maxWorkers])).toEqual([
      ['node', ['test/node/a.test.ts', 'test/node/c.test.ts'], 1],
      ['rest', ['test/operator/b.test.ts', 'test/webhook/d.test.ts', 'test/x/e.unit.test.ts'], 1],
    ]);
    expect(Runner.planRun(mixed, 4, false).map((r) => r.maxWorkers)).toEqual([1, 3]);
  });

  test('in band, with one worker, or without real-node files: jest\'s runner as it is', () => {
    for (const [tests, workers, serial] of [[mixed, 2, true], [mixed, 1, false], [mixed.filter((x) => !Runner.isRealNodeFile(x)), 2, false], [[], 2, false]] as const) {
      const runs = Runner.planRun([...tests], workers, serial);
      expect(runs).toEqual([{ pool: 'all', tests: [...tests], maxWorkers: workers }]);
    }
  });

  test('only real-node files: still one worker (a second would only wait on the lock)', () => {
    const node = mixed.filter(Runner.isRealNodeFile);
    expect(Runner.planRun(node, 2, false)).toEqual([{ pool: 'node', tests: node, maxWorkers: 1 }]);
  });

  test('every file is in exactly one run', () => {
    const runs = Runner.planRun(mixed, 2, false);
    expect(runs.flatMap((r) => r.tests).sort((a, b) => a.path.localeCompare(b.path))).toEqual([...mixed].sort((a, b) => a.path.localeCompare(b.path)));
  });
});

describe('RealNodeRunner', () => {
  const mixed = [t('test/node/a.test.ts'), t('test/operator/b.test.ts')];

  test('is an event-emitting, non-serial runner like jest\'s', () => {
    const r = new Runner({ maxWorkers: 2 }, {});
    expect(r.supportsEventEmitters).toBe(true);
    expect(r.isSerial).toBeUndefined();
    expect([r.pools.all, r.pools.node, r.pools.rest].map((p) => p.globalConfig.maxWorkers)).toEqual([2, 1, 1]);
  });

  test('runs both pools at once, in workers, and only them', async () => {
    const r = new Runner({ maxWorkers: 2 }, {});
    let release!: () => void;
    r.pools.node.runTests.mockImplementation(() => new Promise<void>((res) => { release = res; }));
    const done = r.runTests(mixed, 'watcher', { serial: false });
    await new Promise(setImmediate);
    // The rest started while the real-node pool is still running.
    expect(r.pools.rest.runTests).toHaveBeenCalledWith([mixed[1]], 'watcher', { serial: false });
    expect(r.pools.node.runTests).toHaveBeenCalledWith([mixed[0]], 'watcher', { serial: false });
    release();
    await done;
    expect(r.pools.all.runTests).not.toHaveBeenCalled();
  });

  test('in band: jest\'s runner with jest\'s options', async () => {
    const r = new Runner({ maxWorkers: 2 }, {});
    await r.runTests(mixed, 'watcher', { serial: true });
    expect(r.pools.all.runTests).toHaveBeenCalledWith(mixed, 'watcher', { serial: true });
    expect(r.pools.node.runTests).not.toHaveBeenCalled();
  });

  test('a pool\'s failure is thrown, after the other pool has finished', async () => {
    const r = new Runner({ maxWorkers: 2 }, {});
    let restDone = false;
    r.pools.node.runTests.mockRejectedValue(new Error('interrupted'));
    r.pools.rest.runTests.mockImplementation(async () => { await new Promise(setImmediate); restDone = true; });
    await expect(r.runTests(mixed, 'watcher', { serial: false })).rejects.toThrow('interrupted');
    expect(restDone).toBe(true);
  });

  test('on() listens on every pool; its unsubscribe unsubscribes them all', () => {
    const r = new Runner({ maxWorkers: 2 }, {});
    const listener = () => undefined;
    const off = r.on('test-file-success', listener);
    for (const p of Object.values(r.pools)) expect(p.on).toHaveBeenCalledWith('test-file-success', listener);
    off();
    for (const p of Object.values(r.pools)) expect(p.offs[0]).toHaveBeenCalledTimes(1);
  });
});

// The path rule above holds only while every file that starts the real node lives in test/node.
describe('nothing outside test/node starts the real node', () => {
  const TEST_DIR = path.join(__dirname, '..');
  // An import of the modules that start a node, take its lock or need it running, of test/node's
  // fixtures, or a call of what starts one. (platform/in-cluster.ts also has ensureKubectl, which
  // starts nothing; node-config and node-host are pure or read-only.)
  const STARTS_NODE = [
    /from\s+['"][^'"]*platform\/(node|node-shared|node-lock|node-pin|node-sidecars|tep-on-node)['"]/,
    /from\s+['"](\.\.\/)+node\/[^'"]*['"]/,
    /from\s+['"][^'"]*test\/node\/[^'"]*['"]/,
    /\b(startNode|testNode|startOwnCluster|startDemoNode|acquireNodeLock)\s*\(/,
  ];
  const files = (fs.readdirSync(TEST_DIR, { recursive: true }) as string[])
    .map((f) => f.split(path.sep).join('/'))
    .filter((f) => f.endsWith('.ts') && !f.startsWith('node/') && path.join(TEST_DIR, f) !== __filename);

  test('the scan sees the test tree', () => {
    expect(files).toEqual(expect.arrayContaining(['operator/crd.test.ts', 'jest/global-setup.ts']));
  });

  test('no test or helper outside test/node imports or calls what starts the node', () => {
    const offenders = files.flatMap((f) => {
      const src = fs.readFileSync(path.join(TEST_DIR, f), 'utf8');
      return STARTS_NODE.filter((re) => re.test(src)).map((re) => `test/${f}: ${re}`);
    });
    expect(offenders).toEqual([]);
  });
});
