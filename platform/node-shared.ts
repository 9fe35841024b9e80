import * as fs from 'node:fs';
import { clusterState } from './cluster';
import { NodeOptions, NodeState, startNode, stopNode } from './node';

/**
 * The node a test file uses: the one jest's globalSetup started for the whole run (its state file
 * named by NODE_STATE_ENV), or else one of the file's own. Wiring a shared node is then three
 * lines in global-setup/teardown (startNode after the control plane, write its state, stopNode),
 * and saves a node start (7-10 s) per file.
 */
export const NODE_STATE_ENV = 'PIPELINE_SIDECARS_TEST_NODE';

export interface TestNode {
  readonly state: NodeState;
  /** Whether this file started the node (and release stops it). */
  readonly own: boolean;
  /** Stops the node if this file started it; returns what teardown could not undo. */
  release(): Promise<string[]>;
}

export async function testNode(opts: NodeOptions = {}): Promise<TestNode> {
  const file = process.env[NODE_STATE_ENV];
  if (file && fs.existsSync(file)) {
    const state: NodeState = JSON.parse(fs.readFileSync(file, 'utf8'));
    return { state, own: false, release: async () => [] };
  }
  const handle = await startNode(clusterState(), opts);
  return { state: handle.state, own: true, release: () => handle.stop() };
}

export { stopNode };

/**
 * The afterAll of a real-node test file: give the node back (stopping it when this file started it)
 * and fail the file if anything of it was left on the host.
 */
export async function releaseTestNode(node: TestNode | undefined): Promise<void> {
  if (!node) return;
  const errors = await node.release();
  if (errors.length) throw new Error(`the real node left things behind:\n  ${errors.join('\n  ')}`);
}
