import * as fs from 'node:fs';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { RawClient } from '../../src/k8s/raw';
import { installTekton } from './bootstrap';
import { STATE_ENV } from './cluster';
import { ControlPlane } from './control-plane';

/** jest globalSetup: one real control plane for the whole suite. */
export default async function globalSetup(): Promise<void> {
  const t0 = Date.now();
  const cp = await ControlPlane.start({ verbose: true });
  const kc = new KubeConfig();
  kc.loadFromFile(cp.state.kubeconfig);
  const client = new RawClient(kc);
  try {
    await installTekton(client);
  } catch (e) {
    await cp.stop({ keepLogs: true });
    throw new Error(`installing Tekton CRDs into the test cluster failed: ${(e as Error).message}; logs in ${cp.state.workDir}/logs`);
  } finally {
    client.close();
  }
  const stateFile = path.join(cp.state.workDir, 'state.json');
  fs.writeFileSync(stateFile, JSON.stringify(cp.state, null, 2));
  process.env[STATE_ENV] = stateFile;
  (globalThis as any).__controlPlane = cp;
  process.stderr.write(`[control-plane] warm start + Tekton CRDs: ${Date.now() - t0} ms\n`);
}
