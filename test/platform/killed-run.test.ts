import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { clusterState } from '../../platform/cluster';
import { CONTROL_PLANE_STATE_FILE, ControlPlaneState, isAlive } from '../../platform/control-plane';
import { eventually } from '../../platform/cluster';

/**
 * A run of the platform killed with SIGKILL (no teardown ran: the exit hooks never fire) leaves its
 * components running and its network namespace on the host; `npm run platform:stop` finds them by
 * the records the platform writes, removes them and says so, and leaves a platform still in use alone.
 */
jest.setTimeout(300_000);

const REPO = path.join(__dirname, '..', '..');
const tsNode = (file: string) => [require.resolve('ts-node/dist/bin.js'), '--transpile-only', '--project', path.join(REPO, 'test', 'tsconfig.json'), file];

test('a control plane whose run was SIGKILLed is found and removed by platform:stop, naming what it removed; the suite\'s own control plane is left alone', async () => {
  // A process that starts a control plane with Tekton, says where, and waits to be killed.
  const starter = path.join(REPO, '.work', `start-and-wait-${process.pid}.ts`);
  fs.mkdirSync(path.dirname(starter), { recursive: true });
  fs.writeFileSync(starter, `import { ControlPlane } from '../platform/control-plane';
ControlPlane.start({}).then((cp) => { process.stdout.write('READY ' + cp.state.workDir + '\\n'); setInterval(() => undefined, 60_000); });
`);
  const child = spawn(process.execPath, tsNode(starter), { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += String(d); });
  const workDir = await eventually('the killed run\'s control plane to be ready', async () => /READY (\S+)/.exec(out)?.[1], 180_000, 200);
  const state: ControlPlaneState = JSON.parse(fs.readFileSync(path.join(workDir, CONTROL_PLANE_STATE_FILE), 'utf8'));
  const pids = Object.entries(state.pids);
  expect(pids.map(([c]) => c)).toEqual(expect.arrayContaining(['etcd', 'kube-apiserver', 'tekton-controller']));

  child.kill('SIGKILL');
  await eventually('the starter to be gone', async () => child.exitCode !== null || child.signalCode !== null, 10_000, 50);
  // Negative control: the kill really left things behind (so the clean-up below is not vacuous).
  for (const [c, pid] of pids) expect({ c, alive: isAlive(pid) }).toEqual({ c, alive: true });
  expect(fs.existsSync(`/run/netns/${state.netns!.name}`)).toBe(true);

  const r = spawnSync(process.execPath, tsNode(path.join(REPO, 'platform', 'stop.ts')), { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  process.stderr.write(`[platform:stop]\n${r.stdout}${r.stderr}`);
  expect(r.status).toBe(0);
  const line = r.stdout.split('\n').find((l) => l.includes(workDir)) ?? '';
  expect(line).toMatch(/^stopped a leftover control plane/);
  for (const c of ['etcd', 'kube-apiserver', 'tekton-controller']) expect(line).toContain(`process ${c}=`);
  expect(line).toContain(`network namespace ${state.netns!.name}`);
  for (const [c, pid] of pids) expect({ c, alive: isAlive(pid) }).toEqual({ c, alive: false });
  expect(fs.existsSync(`/run/netns/${state.netns!.name}`)).toBe(false);

  // The suite's own control plane runs on, named as in use.
  const own = clusterState();
  expect(r.stdout).toContain(`left alone, in use: control plane ${own.workDir} (started by pid`);
  for (const [c, pid] of Object.entries(own.pids)) expect({ c, alive: isAlive(pid) }).toEqual({ c, alive: true });
  fs.rmSync(starter, { force: true });
  fs.rmSync(workDir, { recursive: true, force: true });
});
