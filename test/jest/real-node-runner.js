'use strict';
/**
 * The jest runner of every project: jest's own runner, except that the real-node files run on one
 * worker of their own, one after another, while every other file runs beside them on the other
 * worker(s).
 *
 * Why: a machine has one real node at a time (platform/node-lock.ts: the kubelet sets global
 * sysctls, and host-restore must not see another node come or go), so a real-node file waits on
 * /tmp/pipeline-sidecars-node.lock while another runs. With jest's runner, two real-node files can
 * land on both workers (maxWorkers is 2): one then sits for minutes behind the lock and holds a
 * worker that the control-plane files could have used.
 *
 * The rule: a real-node file is a test file under `test/node/` of its project's rootDir. Every file
 * that starts the real node (platform/node.ts's startNode, platform/node-shared.ts's testNode,
 * platform/in-cluster.ts's startOwnCluster) lives there; test/jest/real-node-runner.unit.test.ts
 * fails if a test or helper outside test/node reaches for them, so the rule cannot silently rot.
 *
 * How: the tests jest hands over are split in two and given to two of jest's own runners at once,
 * one whose globalConfig has maxWorkers 1 (the real-node files, in jest's order: slowest first),
 * one with maxWorkers - 1 (the rest). Both report through the listeners jest subscribed with on(),
 * so reporters, --json, failures and the exit code are jest's, unchanged. When jest runs in band
 * (--runInBand, --detectOpenHandles, one file, or few fast files), maxWorkers is 1, or there is
 * nothing to split, jest's runner runs everything as it would without this file; with only
 * real-node files, they still get one worker, since a second would only wait on the lock.
 *
 * Caveat: the pools do not lend workers to each other; when the real-node files finish first, the
 * remaining files go on with maxWorkers - 1 workers (real-node files are usually the long ones).
 *
 * Plain CommonJS because jest loads runners itself; jest-runner is required when jest constructs the
 * runner, so a unit test can load planRun without it.
 */
const path = require('node:path');

/** Where real-node files live, relative to their project's rootDir. */
const REAL_NODE_DIR = 'test/node/';

/** Whether `test` (a jest Test: { path, context: { config: { rootDir } } }) is a real-node file. */
function isRealNodeFile(test) {
  const rel = path.relative(test.context.config.rootDir, test.path).split(path.sep).join('/');
  return rel.startsWith(REAL_NODE_DIR);
}

/**
 * How to run `tests`: a list of { pool, tests, maxWorkers }, pool being 'all' (jest's runner with
 * jest's own settings and `serial` as jest decided), 'node' or 'rest'.
 */
function planRun(tests, maxWorkers, serial) {
  const node = tests.filter(isRealNodeFile);
  if (serial || maxWorkers <= 1 || node.length === 0) return [{ pool: 'all', tests, maxWorkers }];
  const rest = tests.filter((t) => !isRealNodeFile(t));
  const runs = [{ pool: 'node', tests: node, maxWorkers: 1 }];
  if (rest.length > 0) runs.push({ pool: 'rest', tests: rest, maxWorkers: Math.max(1, maxWorkers - 1) });
  return runs;
}

class RealNodeRunner {
  constructor(globalConfig, context, options) {
    this._globalConfig = globalConfig;
    this._context = context;
    this._options = options;
    this.supportsEventEmitters = true;
    // The same module jest's default `runner: 'jest-runner'` resolves to.
    const JestRunner = require('jest-runner').default;
    const withWorkers = (n) => ({ ...globalConfig, maxWorkers: n });
    this.pools = {
      all: new JestRunner(globalConfig, context, options),
      node: new JestRunner(withWorkers(1), context, options),
      rest: new JestRunner(withWorkers(Math.max(1, globalConfig.maxWorkers - 1)), context, options),
    };
  }

  async runTests(tests, watcher, options) {
    const runs = planRun(tests, this._globalConfig.maxWorkers, options.serial);
    // Wait for both pools even if one fails (e.g. interrupted by --bail), so neither leaves workers behind.
    const settled = await Promise.allSettled(runs.map((r) =>
      this.pools[r.pool].runTests(r.tests, watcher, r.pool === 'all' ? options : { ...options, serial: false })));
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Subscribes on every pool: jest's events (and custom ones a test file sends) reach jest from whichever runs the file. */
  on(eventName, listener) {
    const offs = Object.values(this.pools).map((p) => p.on(eventName, listener));
    return () => { for (const off of offs) off(); };
  }
}

module.exports = RealNodeRunner;
module.exports.planRun = planRun;
module.exports.isRealNodeFile = isRealNodeFile;
module.exports.REAL_NODE_DIR = REAL_NODE_DIR;
