import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONTROL_PLANE_STATE_FILE, ControlPlaneState, isAlive, stopPids } from './control-plane';
import { NodeState, stopNode } from './node';

/**
 * `npm run platform:stop`: finds what a killed run of the platform left behind, by the platform's
 * own records, removes it, and says what it removed. Every control plane and real node writes its
 * state (PIDs, network namespace, work dir, cgroups) into its work dir under the system temp dir as
 * it starts; one whose starting process is gone but which still has a live process, a network
 * namespace or mounts is a leftover. One whose starter still runs is in use and left alone.
 */

/** One leftover platform piece and what stopping it did. */
export interface Stopped {
  readonly what: 'control plane' | 'real node';
  readonly workDir: string;
  /** What was still there: processes (component=pid), the netns, mounts. */
  readonly found: string[];
  /** What could not be removed. */
  readonly left: string[];
}

const tmp = () => process.env.TMPDIR ?? os.tmpdir();

function records(prefix: string, file: string): Array<{ dir: string; state: any }> {
  const out: Array<{ dir: string; state: any }> = [];
  for (const d of fs.readdirSync(tmp())) {
    if (!d.startsWith(prefix)) continue;
    const f = path.join(tmp(), d, file);
    try { out.push({ dir: path.join(tmp(), d), state: JSON.parse(fs.readFileSync(f, 'utf8')) }); } catch { /* no record, or half-written */ }
  }
  return out;
}

/** Why a record is left alone: its starter runs, or it names none (then nobody can tell, so it is not ours to stop). */
function ownerOf(state: { ownerPid?: number }): string {
  return state.ownerPid ? `started by pid ${state.ownerPid}, still running` : 'its record names no starting process; stop it by hand if it is yours';
}

/** A recorded PID that still runs the program it was started as (a reused PID is someone else's). */
function stillOurs(pid: number, component: string, workDir: string): boolean {
  if (!isAlive(pid)) return false;
  let cmd = '';
  try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { return false; }
  const program = component.startsWith('apiserver-forward') || component === 'forward' || component === 'apiserver-for-pods' ? 'forward' : component;
  return cmd.includes(program) || cmd.includes(workDir);
}

function mountsUnder(dir: string): string[] {
  try {
    return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m && m.startsWith(dir + '/'));
  } catch { return []; }
}

/** What of a recorded piece is still on the host; empty: nothing to do. */
function remains(state: { workDir: string; pids: Record<string, number>; netns?: unknown }, netnsName?: string): string[] {
  const found = Object.entries(state.pids ?? {}).filter(([c, pid]) => stillOurs(pid, c, state.workDir)).map(([c, pid]) => `process ${c}=${pid}`);
  if (netnsName && fs.existsSync(`/run/netns/${netnsName}`)) found.push(`network namespace ${netnsName}`);
  found.push(...mountsUnder(state.workDir).map((m) => `mount ${m}`));
  return found;
}

/** Stops every leftover (nodes first: they talk to a control plane's API server, if it still runs). */
export async function stopLeftovers(): Promise<{ stopped: Stopped[]; inUse: string[] }> {
  const stopped: Stopped[] = [];
  const inUse: string[] = [];
  for (const { dir, state } of records('pipeline-sidecars-node-', 'node-state.json') as Array<{ dir: string; state: NodeState }>) {
    const found = remains(state, state.netns);
    if (found.length === 0) continue;
    if (!state.ownerPid || isAlive(state.ownerPid)) { inUse.push(`real node ${dir} (${ownerOf(state)})`); continue; }
    // Only the PIDs that are still ours: a reused PID must never be signalled.
    const pids = Object.fromEntries(Object.entries(state.pids).filter(([c, pid]) => stillOurs(pid, c, state.workDir)));
    // With its control plane gone too, the Node object and EndpointSlice went with the API server.
    const left = (await stopNode({ ...state, pids, lockToken: undefined }, { keepLogs: true }))
      .filter((e) => !(/^delete the (Node object|kubernetes EndpointSlice)/.test(e) && /ECONNREFUSED|connect|socket hang up/i.test(e)));
    stopped.push({ what: 'real node', workDir: dir, found, left });
  }
  for (const { dir, state } of records('pipeline-sidecars-cp-', CONTROL_PLANE_STATE_FILE) as Array<{ dir: string; state: ControlPlaneState }>) {
    const found = remains(state, state.netns?.name);
    if (found.length === 0) continue;
    if (!state.ownerPid || isAlive(state.ownerPid)) { inUse.push(`control plane ${dir} (${ownerOf(state)})`); continue; }
    const pids = Object.fromEntries(Object.entries(state.pids).filter(([c, pid]) => stillOurs(pid, c, state.workDir)));
    const left = await stopPids({ ...state, pids }, { keepLogs: true });
    stopped.push({ what: 'control plane', workDir: dir, found, left });
  }
  return { stopped, inUse };
}

if (require.main === module) {
  stopLeftovers().then(({ stopped, inUse }) => {
    for (const s of stopped) {
      process.stdout.write(`stopped a leftover ${s.what} (${s.workDir}): removed ${s.found.join(', ')}\n`);
      for (const l of s.left) process.stdout.write(`  could not remove: ${l}\n`);
    }
    for (const u of inUse) process.stdout.write(`left alone, in use: ${u}\n`);
    if (stopped.length === 0) process.stdout.write('nothing left behind by a killed run\n');
    process.exitCode = stopped.some((s) => s.left.length > 0) ? 1 : 0;
  }, (e) => { process.stderr.write(`platform:stop failed: ${(e as Error).message}\n`); process.exitCode = 2; });
}
