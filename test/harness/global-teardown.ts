import * as path from 'node:path';
import { ControlPlane, isAlive } from './control-plane';

/** jest globalTeardown: stop every component by PID; keep the logs when the suite failed. */
export default async function globalTeardown(): Promise<void> {
  const cp: ControlPlane | undefined = (globalThis as any).__controlPlane;
  if (!cp) return;
  const failed = (globalThis as any).__suiteFailed !== false;
  const keep = failed || process.env.KEEP_CONTROL_PLANE_LOGS === '1';
  await cp.stop({ keepLogs: keep });
  const alive = Object.entries(cp.state.pids).filter(([, pid]) => isAlive(pid));
  if (keep) process.stderr.write(`[control-plane] component logs kept in ${path.join(cp.state.workDir, 'logs')}\n`);
  // A leftover etcd or apiserver would hold ports and memory on a CI machine: fail loudly instead.
  if (alive.length) throw new Error(`control-plane processes still alive after teardown: ${alive.map(([c, p]) => `${c}=${p}`).join(', ')}`);
  process.stderr.write(`[control-plane] stopped; no component process left (checked ${Object.keys(cp.state.pids).length} PIDs)\n`);
}
