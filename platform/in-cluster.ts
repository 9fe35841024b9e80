import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { STATE_ENV } from './cluster';
import { ControlPlane } from './control-plane';
import { NodeHandle, ctr, startNode } from './node';
import { acquireNodeLock, releaseNodeLock } from './node-lock';

/**
 * The operator installed as a user installs it: its image built from the Dockerfile
 * (scripts/operator-image.sh), kubectl (scripts/kubectl.sh), and a cluster of the test file's own
 * (a control plane with Tekton, and the real node as its only schedulable node) that the install may
 * change as a whole: the bundle's CRD, Namespace, cluster-wide RBAC and webhook configuration, and
 * their deletion, must not reach the other tests' shared control plane.
 */

const REPO = path.resolve(__dirname, '..');

/** The operator image: its reference, its `docker save` archive, its unpacked size in bytes. */
export interface OperatorImage { readonly ref: string; readonly archive: string; readonly sizeBytes: number }

/** Builds (or reuses) the operator image with scripts/operator-image.sh. */
export function ensureOperatorImage(): OperatorImage {
  const out = execFileSync('bash', [path.join(REPO, 'scripts', 'operator-image.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  const [ref, archive, size] = out.trim().split('\n').pop()!.split(' ');
  return { ref, archive, sizeBytes: Number(size) };
}

/**
 * Builds an image FROM ours as a platform team does (`dockerfile` in `context`, whose FROM names our
 * image as released), with the same no-network builder (scripts/operator-image.sh --derived); the
 * archive goes to `outDir`, a directory of the caller's. Our own image is built first if needed.
 */
export function buildDerivedOperatorImage(context: string, dockerfile: string, name: string, outDir: string): OperatorImage {
  const out = execFileSync('bash', [path.join(REPO, 'scripts', 'operator-image.sh'), '--derived', context, dockerfile, name, outDir],
    { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  const [ref, archive, size] = out.trim().split('\n').pop()!.split(' ');
  return { ref, archive, sizeBytes: Number(size) };
}

/** Builds (or reuses) kubectl with scripts/kubectl.sh and returns its path. */
export function ensureKubectl(): string {
  return execFileSync('bash', [path.join(REPO, 'scripts', 'kubectl.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' }).trim().split('\n').pop()!;
}

/** A cluster of one test file's own: control plane, Tekton, and the real node as the only schedulable node. */
export interface OwnCluster {
  readonly cp: ControlPlane;
  readonly node: NodeHandle;
  readonly kubeconfig: string;
  /** Runs kubectl against this cluster; throws with its output when it fails. */
  kubectl(args: string[], timeoutMs?: number): string;
  /** Stops the node and the control plane and gives the shared cluster back to this worker; fails if the host is not as it was. */
  stop(): Promise<void>;
}

/**
 * Starts the cluster and points this worker's harness helpers (rawClient(), createRun, ...) at it,
 * through the state file STATE_ENV names, until stop(). The kwok node is cordoned, so every pod runs
 * on the real node; the node routes between pods and the API server as a cluster does
 * (NodeOptions.controlPlaneRouting), so the operator can run as Pods.
 */
export async function startOwnCluster(kubectlPath: string): Promise<OwnCluster> {
  const previous = process.env[STATE_ENV];
  // The node lock covers this control plane as well as its node: its netns and links must not come
  // or go while host-restore.test compares the host before and after a node of its own.
  const lock = await acquireNodeLock();
  let cp: ControlPlane;
  try {
    cp = await ControlPlane.start({ verbose: true });
  } catch (e) {
    releaseNodeLock(lock);
    throw e;
  }
  const stateFile = path.join(cp.state.workDir, 'state.json');
  fs.writeFileSync(stateFile, JSON.stringify(cp.state, null, 2));
  process.env[STATE_ENV] = stateFile;
  let node: NodeHandle;
  try {
    node = await startNode(cp.state, { dedicated: false, controlPlaneRouting: true, verbose: true, lock: false });
  } catch (e) {
    await cp.stop();
    releaseNodeLock(lock);
    process.env[STATE_ENV] = previous;
    throw e;
  }
  const kubeconfig = cp.state.kubeconfig;
  const kubectl = (args: string[], timeoutMs = 300_000): string => {
    const r = spawnSync(kubectlPath, ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', timeout: timeoutMs });
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')}: exit ${r.status}${r.error ? ` (${r.error.message})` : ''}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  kubectl(['cordon', 'kwok-node-0']);
  return {
    cp, node, kubeconfig, kubectl,
    stop: async () => {
      const errors: string[] = [];
      try {
        errors.push(...await node.stop());
        errors.push(...await cp.stop());
      } finally {
        releaseNodeLock(lock);
      }
      process.env[STATE_ENV] = previous;
      if (errors.length) throw new Error(`the cluster left things behind:\n  ${errors.join('\n  ')}`);
    },
  };
}

/** Imports an image archive into the node's containerd (as the node's own images are) and tags it `extraTags` too. */
export function importImage(own: OwnCluster, image: OperatorImage, extraTags: string[] = []): void {
  ctr(own.node.state, ['images', 'import', image.archive]);
  for (const t of extraTags) ctr(own.node.state, ['images', 'tag', '--force', image.ref, t]);
}

/** The host PID of a container of the node (its task), from its CRI container ID. */
export function containerPid(own: OwnCluster, containerId: string): number {
  const id = containerId.replace(/^containerd:\/\//, '');
  const line = ctr(own.node.state, ['tasks', 'ls']).split('\n').find((l) => l.startsWith(`${id} `));
  if (!line) throw new Error(`no task ${id} on the node`);
  return Number(line.trim().split(/\s+/)[1]);
}

/**
 * The README's install section as argument lists (test/bundle/readme-install.test.ts checks that the
 * README says exactly these; operator-install.test.ts runs them with its own image, namespace and dir).
 */
export const README_INSTALL = {
  /** `./bin/pipeline-sidecars synth ...` */
  synth: (image: string, servedNamespace: string, out: string): string[] => [
    'synth', '--out', out, '--served-namespace', servedNamespace, '--privileged-namespace', servedNamespace, '--image', image,
  ],
  /** `kubectl apply --server-side -f dist/` */
  apply: (dir: string): string[] => ['apply', '--server-side', '-f', `${dir}/`],
  /** `kubectl -n pipeline-sidecars rollout status deployment/pipeline-sidecars` */
  rollout: ['-n', 'pipeline-sidecars', 'rollout', 'status', 'deployment/pipeline-sidecars'],
  /** `kubectl delete -f dist/` */
  uninstall: (dir: string): string[] => ['delete', '-f', `${dir}/`],
} as const;
