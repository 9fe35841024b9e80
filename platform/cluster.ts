import * as fs from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { RawClient } from '../src/k8s/raw';
import type { ControlPlaneState } from './control-plane';
import { setTimeout as sleep } from 'node:timers/promises';

/** The environment variable through which globalSetup hands the running control plane to test workers. */
export const STATE_ENV = 'PIPELINE_SIDECARS_TEST_CLUSTER';

export function clusterState(): ControlPlaneState {
  const file = process.env[STATE_ENV];
  if (!file || !fs.existsSync(file)) {
    throw new Error(`${STATE_ENV} is not set: run tests through jest (npm test), whose globalSetup starts the local control plane`);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

/** An admin KubeConfig for the test control plane. */
export function testKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(clusterState().kubeconfig);
  return kc;
}

/** A KubeConfig that authenticates with a bearer token (e.g. a ServiceAccount's) instead of admin. */
export function tokenKubeConfig(token: string): KubeConfig {
  const s = clusterState();
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: s.server, caFile: s.caFile, skipTLSVerify: false }],
    users: [{ name: 'token', token }],
    contexts: [{ name: 'local', cluster: 'local', user: 'token' }],
    currentContext: 'local',
  });
  return kc;
}

let shared: RawClient | undefined;
/** A shared admin RawClient (JSON in, JSON out). */
export function rawClient(): RawClient {
  shared ??= new RawClient(testKubeConfig());
  return shared;
}

let counter = 0;
/** Creates a namespace with a unique name for one test, and returns its name. */
export async function createTestNamespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const name = `${prefix}-${process.pid.toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 6)}`.slice(0, 63).replace(/-+$/, '');
  await rawClient().create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  // Tekton fails a TaskRun whose ServiceAccount does not exist, and the controller-manager creates
  // the namespace's "default" one a moment after the namespace: wait for it, as a user would have.
  await eventually(`the default ServiceAccount of ${name}`, () => rawClient().getOrUndefined(`/api/v1/namespaces/${name}/serviceaccounts/default`), 30_000, 50);
  return name;
}

/** Polls `fn` until it returns a truthy value, or throws with `what` after timeoutMs. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { lastError = e; }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
}
