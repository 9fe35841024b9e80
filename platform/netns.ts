import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

/**
 * A network namespace the harness creates for one control plane, joined to the host by a veth pair
 * with two private addresses. The API server reaches a process started inside it (Tekton's webhook)
 * at `innerAddress`, which exists nowhere but in this namespace; no real address of the machine is
 * used, and deleting the namespace removes both ends of the pair. Needs root.
 */
export interface NetnsState {
  readonly name: string;
  readonly hostLink: string;
  readonly hostAddress: string;
  readonly innerAddress: string;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Whether this process may create network namespaces (root), with the reason when not. */
export function netnsSupport(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== 'linux') return { ok: false, why: `this is ${process.platform}, and the test platform needs Linux network namespaces` };
  if (process.getuid?.() !== 0) return { ok: false, why: 'the test platform needs root: Tekton\'s webhook runs in a network namespace the harness creates' };
  try { execFileSync('ip', ['-V'], { stdio: 'ignore' }); } catch { return { ok: false, why: 'the `ip` command (iproute2) is missing: apt-get install iproute2' }; }
  try { execFileSync('nsenter', ['--version'], { stdio: 'ignore' }); } catch { return { ok: false, why: 'the `nsenter` command (util-linux) is missing' }; }
  return { ok: true };
}

/** A /24 in 10.250.0.0/16 that no address or route of this machine uses. */
function freeSubnet(): number {
  const used = ip(['-4', 'route', 'show', 'table', 'all']) + ip(['-4', '-o', 'addr']);
  for (let i = 0; i < 100; i++) {
    const n = crypto.randomInt(0, 256);
    if (!used.includes(`10.250.${n}.`)) return n;
  }
  throw new Error('no free /24 in 10.250.0.0/16 for the harness network namespace');
}

export function createNetns(): NetnsState {
  const support = netnsSupport();
  if (!support.ok) throw new Error(support.why);
  const id = crypto.randomBytes(3).toString('hex');
  const subnet = freeSubnet();
  const state: NetnsState = { name: `ps-${id}`, hostLink: `ps${id}h`, hostAddress: `10.250.${subnet}.1`, innerAddress: `10.250.${subnet}.2` };
  const inner = `ps${id}n`;
  try {
    ip(['netns', 'add', state.name]);
    ip(['link', 'add', state.hostLink, 'type', 'veth', 'peer', 'name', inner]);
    ip(['link', 'set', inner, 'netns', state.name]);
    ip(['addr', 'add', `${state.hostAddress}/24`, 'dev', state.hostLink]);
    ip(['link', 'set', state.hostLink, 'up']);
    ip(['-n', state.name, 'addr', 'add', `${state.innerAddress}/24`, 'dev', inner]);
    ip(['-n', state.name, 'link', 'set', inner, 'up']);
    ip(['-n', state.name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    deleteNetns(state);
    throw new Error(`creating network namespace ${state.name}: ${(e as any).stderr?.toString().trim() || (e as Error).message}`);
  }
  return state;
}

/** Removes the namespace (and with it both veth ends). Safe to call twice. */
export function deleteNetns(state: NetnsState): void {
  try { ip(['netns', 'del', state.name]); } catch { /* already gone */ }
  try { ip(['link', 'del', state.hostLink]); } catch { /* went with the namespace */ }
}

/** `nsenter` arguments that run a command in the namespace's network (and nothing else of it). */
export function inNetns(state: NetnsState, command: string, args: string[]): { command: string; args: string[] } {
  return { command: 'nsenter', args: [`--net=/run/netns/${state.name}`, '--', command, ...args] };
}

/** Whether anything of the namespace is left on the host (teardown checks). */
export function netnsLeftovers(state: NetnsState): string[] {
  const left: string[] = [];
  if (fs.existsSync(`/run/netns/${state.name}`)) left.push(`netns ${state.name}`);
  try { ip(['link', 'show', state.hostLink]); left.push(`link ${state.hostLink}`); } catch { /* gone */ }
  return left;
}
