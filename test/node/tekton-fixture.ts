import { LABELS } from '../../constructs/api/spec';
import { rawClient } from '../harness/cluster';
import { TestNode, releaseTestNode, testNode } from '../harness/node-shared';
import { REAL_NODE_NAMESPACE_LABEL, pinLabelledNamespaces, waitPinned } from '../harness/node-pin';
import { createSidecar, dockerDaemonSpec, ServedOperator, startServedOperator, stopServedOperator } from '../operator/helpers';

/**
 * The real Tekton on the real node: a served namespace whose pods (TaskRun pods and sidecars) the
 * harness pins to the node, an in-process operator for it, and the TEP's `docker` DockerDaemon.
 */
export interface TektonOnNode {
  readonly node: TestNode;
  readonly fx: ServedOperator;
  /** Stops the operator, unpins, gives the node back (failing if it left anything on the host). */
  stop(): Promise<void>;
}

export async function tektonOnNode(prefix: string): Promise<TektonOnNode> {
  const node = await testNode({ verbose: true });
  const unpin = await pinLabelledNamespaces(rawClient(), node.state);
  const fx = await startServedOperator(prefix, { [REAL_NODE_NAMESPACE_LABEL]: node.state.name, [LABELS.allowPrivileged]: 'true' });
  await waitPinned(rawClient(), fx.ns, node.state);
  await createSidecar(fx.ns, 'docker', dockerDaemonSpec());
  return {
    node, fx,
    stop: async () => {
      await stopServedOperator(fx);
      await unpin();
      await releaseTestNode(node);
      rawClient().close();
    },
  };
}
