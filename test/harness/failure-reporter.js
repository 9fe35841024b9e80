// Tells globalTeardown (same process, runs after this) whether the suite failed, so it keeps
// the control-plane logs exactly when someone will want to read them.
class FailureReporter {
  onRunComplete(_contexts, results) {
    globalThis.__suiteFailed = results.numFailedTests > 0 || results.numRuntimeErrorTestSuites > 0 || results.numFailedTestSuites > 0;
  }
}
module.exports = FailureReporter;
