import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * What the real-node tier may change on the host, and how to read it back. The node runs its network
 * inside a network namespace of its own, so most of its changes die with that namespace; what does
 * reach the host (global sysctls the kubelet sets, cgroups, mounts, a few fixed directories) is
 * recorded before the node starts and put back by stopNode.
 */

/** Global (not per network namespace) sysctls that the kubelet or kube-proxy set. */
export const GLOBAL_SYSCTLS = ['kernel/panic', 'kernel/panic_on_oops', 'vm/overcommit_memory', 'net/netfilter/nf_conntrack_max'] as const;

/**
 * Fixed host paths that the kubelet, containerd or libcni create whatever their configured roots
 * (device-plugins socket dir, the container log symlinks, libcni's cache, shim sockets, NRI).
 */
export const FIXED_HOST_PATHS = [
  '/var/lib/kubelet', '/var/log/containers', '/var/log/pods', '/var/lib/cni', '/run/containerd', '/var/run/nri',
  '/opt/containerd', '/etc/cni', '/opt/cni', '/run/xtables.lock', '/var/lib/kube-router', '/etc/kubernetes',
] as const;

/** Reads a sysctl by its /proc/sys path ('kernel/panic'), or undefined when the kernel has none. */
export function readSysctl(key: string): string | undefined {
  try { return fs.readFileSync(path.join('/proc/sys', key), 'utf8').trim(); } catch { return undefined; }
}

/** Writes a sysctl back; failures are reported, not thrown (teardown must go on). */
export function writeSysctl(key: string, value: string): string | undefined {
  try { fs.writeFileSync(path.join('/proc/sys', key), value); return undefined; } catch (e) { return `${key}=${value}: ${(e as Error).message}`; }
}

/** The host state before the node starts, enough to put it back. */
export interface HostRecord {
  readonly sysctls: Record<string, string>;
  /** Which FIXED_HOST_PATHS existed before (the others are removed at stop). */
  readonly existing: string[];
  /** Whether /run/netns was a mount point before (ip netns add makes it one). */
  readonly netnsDirMounted: boolean;
}

export function recordHost(): HostRecord {
  const sysctls: Record<string, string> = {};
  for (const k of GLOBAL_SYSCTLS) { const v = readSysctl(k); if (v !== undefined) sysctls[k] = v; }
  return { sysctls, existing: FIXED_HOST_PATHS.filter((p) => exists(p)), netnsDirMounted: mountPoints().includes('/run/netns') };
}

function exists(p: string): boolean {
  try { fs.lstatSync(p); return true; } catch { return false; }
}

/** Mount points of this mount namespace, in /proc/mounts order. */
export function mountPoints(): string[] {
  return fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[1].replace(/\\040/g, ' '));
}

/** The cgroup v1 hierarchies and the cgroup2 mount: every place a cgroup directory can be made. */
export function cgroupMounts(): string[] {
  return fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '))
    .filter((f) => f[2] === 'cgroup' || f[2] === 'cgroup2').map((f) => f[1]);
}

/**
 * A comparable picture of everything the tier could leave behind: host iptables rules (legacy
 * backend, through the cache's wrapper), global sysctls and ip_forward, links, addresses, routes,
 * network namespaces, mounts, cgroup directories two levels deep, and the fixed paths.
 */
export function hostSnapshot(sbinDir?: string): Record<string, string> {
  const run = (cmd: string, args: string[]): string => {
    try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }); } catch (e) { return `error: ${(e as Error).message}`; }
  };
  const snap: Record<string, string> = {};
  if (sbinDir) {
    // Counters change with traffic; the rules are what matter.
    snap['iptables-save'] = run(path.join(sbinDir, 'iptables-save'), []).split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, '')).join('\n');
    snap['ip6tables-save'] = run(path.join(sbinDir, 'ip6tables-save'), []).split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, '')).join('\n');
  }
  snap.sysctls = [...GLOBAL_SYSCTLS, 'net/ipv4/ip_forward', 'net/ipv4/conf/all/route_localnet', 'net/bridge/bridge-nf-call-iptables']
    .map((k) => `${k}=${readSysctl(k)}`).join('\n');
  snap.links = run('ip', ['-o', 'link', 'show']).split('\n').map((l) => l.replace(/\s+link\/\S+ \S+ brd \S+.*$/, '')).join('\n');
  snap.addresses = run('ip', ['-o', 'addr', 'show']);
  snap.routes = run('ip', ['route', 'show', 'table', 'all']);
  snap.netns = run('ip', ['netns', 'list']);
  snap.mounts = mountPoints().join('\n');
  const cgroups: string[] = [];
  for (const m of cgroupMounts()) {
    for (const a of safeDirs(m)) { cgroups.push(path.join(m, a)); for (const b of safeDirs(path.join(m, a))) cgroups.push(path.join(m, a, b)); }
  }
  snap.cgroups = cgroups.sort().join('\n');
  snap.paths = FIXED_HOST_PATHS.filter((p) => exists(p)).join('\n');
  return snap;
}

/**
 * A snapshot without the lines of control planes' network namespaces (netns.ts: `ps-<6 hex>`, host
 * link `ps<6 hex>h`, inner `ps<6 hex>n`, its address, routes and /run/netns mount). Other test files,
 * the bench or the demo start and stop control planes while a node comes and goes; their namespaces
 * are theirs to put back (test/platform/control-plane.test.ts checks that), and a comparison around
 * the node must not see them. The node's own names (`ps-node-…`, `psh…`) never match.
 */
export function withoutControlPlanes(snap: Record<string, string>): Record<string, string> {
  const theirs = /\bps-[0-9a-f]{6}\b|\bps[0-9a-f]{6}[hn]\b/;
  return Object.fromEntries(Object.entries(snap).map(([k, v]) => [k, v.split('\n').filter((l) => !theirs.test(l)).join('\n')]));
}

function safeDirs(dir: string): string[] {
  try { return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name); } catch { return []; }
}

/** Unmounts every mount at or below `dir`, deepest first (lazily, so a busy mount cannot block teardown). */
export function unmountUnder(dir: string): string[] {
  const errors: string[] = [];
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const targets = mountPoints().filter((m) => m === dir || m.startsWith(prefix)).reverse();
  for (const m of targets) {
    try { execFileSync('umount', ['-l', m], { stdio: 'pipe' }); } catch (e) { errors.push(`umount ${m}: ${(e as Error).message.split('\n')[0]}`); }
  }
  return errors;
}

/** Removes a cgroup directory tree depth first in every hierarchy (rmdir only: cgroup files cannot be unlinked). */
export function removeCgroupTree(relative: string): string[] {
  const errors: string[] = [];
  const rm = (dir: string): void => {
    for (const d of safeDirs(dir)) rm(path.join(dir, d));
    try { fs.rmdirSync(dir); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') errors.push(`rmdir ${dir}: ${(e as Error).message}`); }
  };
  for (const m of cgroupMounts()) rm(path.join(m, relative));
  return errors;
}
