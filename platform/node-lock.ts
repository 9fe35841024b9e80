import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * One real node at a time on a machine. Two nodes could run side by side network-wise, but the
 * kubelet sets global sysctls that each node restores at stop from what it saw at start, and a
 * host-restore check must not see another node come or go: so startNode queues on this lock
 * (jest runs test files in parallel workers). The lock is a file holding "PID TOKEN"; a lock whose
 * PID is gone is stale and taken over; the token lets another process (globalTeardown) release it.
 */

/** How long a real-node file may wait for the lock: another file's whole run on the node (the install test takes 4-7 min). */
export const NODE_LOCK_WAIT_MS = 900_000;

/**
 * The timeout of a real-node file's beforeAll (or test) that takes the node: the lock wait plus a
 * node start and its set-up. Within one jest run the real-node files take turns on one worker
 * (test/jest/real-node-runner.js), but the demo, the gate bench or another checkout's run may hold it.
 */
export const NODE_SETUP_TIMEOUT_MS = NODE_LOCK_WAIT_MS + 300_000;

export const NODE_LOCK_FILE = path.join(os.tmpdir(), 'pipeline-sidecars-node.lock');

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** Waits for the lock and returns its token (pass it to releaseNodeLock). */
export async function acquireNodeLock(timeoutMs = NODE_LOCK_WAIT_MS, file = NODE_LOCK_FILE): Promise<string> {
  const token = crypto.randomBytes(8).toString('hex');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.writeFileSync(file, `${process.pid} ${token}\n`, { flag: 'wx' });
      return token;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const [pid] = (() => { try { return fs.readFileSync(file, 'utf8').trim().split(' '); } catch { return ['']; } })();
    if (pid && !alive(Number(pid))) { try { fs.unlinkSync(file); } catch { /* raced */ } continue; }
    if (Date.now() > deadline) throw new Error(`another real node holds ${file} (pid ${pid}) for more than ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** Releases the lock if `token` still holds it. */
export function releaseNodeLock(token: string, file = NODE_LOCK_FILE): void {
  try { if (fs.readFileSync(file, 'utf8').trim().split(' ')[1] === token) fs.unlinkSync(file); } catch { /* gone */ }
}
