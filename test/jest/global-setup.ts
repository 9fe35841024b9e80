import * as fs from 'node:fs';
import * as path from 'node:path';
import { STATE_ENV } from '../../platform/cluster';
import { ControlPlane } from '../../platform/control-plane';

/** jest globalSetup: one real control plane, with the real Tekton, for the whole suite. */
export default async function globalSetup(): Promise<void> {
  const t0 = Date.now();
  const cp = await ControlPlane.start({ verbose: true });
  const stateFile = path.join(cp.state.workDir, 'state.json');
  fs.writeFileSync(stateFile, JSON.stringify(cp.state, null, 2));
  process.env[STATE_ENV] = stateFile;
  (globalThis as any).__controlPlane = cp;
  process.stderr.write(`[control-plane] warm start with Tekton: ${Date.now() - t0} ms\n`);
}
