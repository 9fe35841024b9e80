/**
 * The real node as `npm run demo` and `npm run bench:gate-node` use it: starting the node for their
 * control plane, making the TEP example runnable (its build task needs a Dockerfile, its test task a
 * command the built image has), and the isolation probe. It reuses the platform's node (node*.ts), so
 * the demo runs what test/node/tep-example.test.ts and tep-isolation.test.ts check.
 */
import * as fs from 'node:fs';
import type { RawClient } from '../src/k8s/raw';
import type { ControlPlaneState } from './control-plane';
import { NodeHandle, ensureNodeBinaries, startNode } from './node';
import { NODE_LOCK_FILE } from './node-lock';
import { pinLabelledNamespaces } from './node-pin';
import { podOnNode } from './node-pods';

/** The real node, pinned to labelled namespaces; `stop` undoes both and returns what it could not undo. */
export interface DemoNode {
  readonly handle: NodeHandle;
  stop(): Promise<string[]>;
}

/**
 * Builds or reuses the node cache (scripts/node.sh; a first-time build prints its progress to
 * stderr). Called before the control plane starts so that a long first build is not mistaken for a hang.
 */
export function prepareNodeCache(): string {
  process.stderr.write('[node] building or reusing the real-node tier (scripts/node.sh; the first time takes a while, with progress)\n');
  const t0 = Date.now();
  const dir = ensureNodeBinaries(true);
  process.stderr.write(`[node] node cache ready in ${Date.now() - t0} ms: ${dir}\n`);
  return dir;
}

/** Starts the node (queuing on the one-node-per-machine lock, which a test run may hold) and pins labelled namespaces to it. */
export async function startDemoNode(cp: ControlPlaneState, client: RawClient): Promise<DemoNode> {
  const holder = (() => { try { return fs.readFileSync(NODE_LOCK_FILE, 'utf8').trim().split(' ')[0]; } catch { return undefined; } })();
  if (holder) process.stderr.write(`[node] another real node holds ${NODE_LOCK_FILE} (pid ${holder}, e.g. a test run): waiting for it\n`);
  const handle = await startNode(cp, { verbose: true });
  let unpin: (() => Promise<void>) | undefined;
  try {
    unpin = await pinLabelledNamespaces(client, handle.state);
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return {
    handle,
    stop: async () => {
      await unpin?.().catch(() => undefined);
      return handle.stop();
    },
  };
}

/**
 * The example Pipeline (examples/docker-daemon/pipeline.yaml), made runnable without a git server:
 * the build task's first step writes the Dockerfile git-clone would have fetched (an image whose
 * entrypoint echoes `marker`), and the test task runs the built image instead of `python -m pytest`.
 * Everything else (params, workspaces, DOCKER_HOST and the certificate workspace) is the example's.
 */
export function runnablePipeline(pipeline: Record<string, any>, marker: string): Record<string, any> {
  const p = JSON.parse(JSON.stringify(pipeline));
  const build = p.spec.tasks.find((t: any) => t.name === 'docker-build');
  const test = p.spec.tasks.find((t: any) => t.name === 'docker-test');
  if (!build || !test) throw new Error('examples/docker-daemon/pipeline.yaml no longer has the docker-build and docker-test tasks: update platform/tep-on-node.ts');
  const cli = build.taskSpec.steps[0].image;
  build.taskSpec.steps.unshift({
    name: 'checkout', image: cli, workingDir: '$(workspaces.source.path)',
    script: `cp /bin/busybox busybox\nprintf 'FROM scratch\\nCOPY busybox /bin/busybox\\nENTRYPOINT ["/bin/busybox", "echo", "${marker}"]\\n' > Dockerfile`,
  });
  test.taskSpec.steps[0].script = 'docker run --rm $(params.image) "ran in task 2 (docker-test), image built in task 1 (docker-build)"';
  return p;
}

/**
 * A plain pod of the namespace (no run's labels, like any other run's pod) that tries a TCP
 * connection to the daemon's Service `tries` times and prints CONNECTED or REFUSED. Pinned to the
 * node like every pod of the namespace.
 */
export function isolationProbe(handle: NodeHandle, name: string, ip: string, port: number, tries: number): Record<string, any> {
  const script = `i=0; while [ $i -lt ${tries} ]; do i=$((i+1)); if timeout 2 nc ${ip} ${port} -e true; then echo CONNECTED; exit 0; fi; echo "attempt $i: no connection"; done; echo REFUSED`;
  return podOnNode(handle.state, name, script, { labels: { app: 'isolation-probe' } });
}
