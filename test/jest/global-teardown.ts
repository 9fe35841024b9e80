import * as path from 'node:path';
import { ControlPlane } from '../../platform/control-plane';

/** jest globalTeardown: stop every component by PID; keep the logs when the suite failed. */
export default async function globalTeardown(): Promise<void> {
  const cp: ControlPlane | undefined = (globalThis as any).__controlPlane;
  if (!cp) return;
  const failed = (globalThis as any).__suiteFailed !== false;
  const keep = failed || process.env.KEEP_CONTROL_PLANE_LOGS === '1';
  const left = await cp.stop({ keepLogs: keep });
  if (keep) process.stderr.write(`[control-plane] component logs kept in ${path.join(cp.state.workDir, 'logs')}\n`);
  // A leftover etcd, apiserver or network namespace would hold ports, memory and links on a CI
  // machine: fail loudly instead.
  if (left.length) throw new Error(`left behind after teardown: ${left.join(', ')}`);
  process.stderr.write(`[control-plane] stopped; nothing left (checked ${Object.keys(cp.state.pids).length} PIDs and the netns)\n`);
}
