const fs = require('node:fs');
const path = require('node:path');

/** Where test/operator/helpers.ts testLogDir() puts each test file's operator logs. */
const TEST_LOGS_ROOT = path.join(__dirname, '..', '..', '.work', 'test-logs');

// Tells globalTeardown (same process, runs after this) whether the suite failed, so it keeps
// the control-plane logs exactly when someone will want to read them; and removes the operator
// logs of every test file that passed, so only failures' logs stay.
class FailureReporter {
  onTestFileResult(test, result) {
    if (result.numFailingTests > 0 || result.testExecError) return;
    const dir = path.join(TEST_LOGS_ROOT, path.relative(path.join(__dirname, '..', '..'), test.path).replace(/[\\/]/g, '__'));
    fs.rmSync(dir, { recursive: true, force: true });
  }

  onRunComplete(_contexts, results) {
    globalThis.__suiteFailed = results.numFailedTests > 0 || results.numRuntimeErrorTestSuites > 0 || results.numFailedTestSuites > 0;
  }
}
module.exports = FailureReporter;
