import { ANNOTATIONS, LABELS } from '../../constructs/api/spec';
import { rawClient } from '../../platform/cluster';
import { TestNode, releaseTestNode, testNode } from '../../platform/node-shared';
import { REAL_NODE_NAMESPACE_LABEL, pinLabelledNamespaces, waitPinned } from '../../platform/node-pin';
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

/** The docker CLI image the TEP example's steps run (docker:27, built locally). */
export const DOCKER_CLI = 'docker.io/library/docker:27';

/** A step's environment for the run's DockerDaemon `docker`: its injected host and certificate workspace. */
export const DOCKER_DAEMON_ENV = [
  { name: 'DOCKER_HOST', value: '$(params.docker-host)' },
  { name: 'DOCKER_TLS_VERIFY', value: '1' },
  { name: 'DOCKER_CERT_PATH', value: '$(workspaces.docker-tls-certs.path)' },
];

/**
 * A run with the DockerDaemon sidecar `docker` whose one task, `use`, runs `script` with the
 * daemon's environment (bound by the webhook: the param `docker-host` and workspace `docker-tls-certs`).
 */
export function daemonRun(generateName: string, script: string): Record<string, any> {
  return {
    metadata: { generateName, annotations: { [ANNOTATIONS.sidecars]: 'docker' } },
    spec: {
      pipelineSpec: {
        params: [{ name: 'docker-host' }], workspaces: [{ name: 'docker-tls-certs' }],
        tasks: [{
          name: 'use', params: [{ name: 'docker-host', value: '$(params.docker-host)' }],
          workspaces: [{ name: 'docker-tls-certs', workspace: 'docker-tls-certs' }],
          taskSpec: {
            params: [{ name: 'docker-host' }], workspaces: [{ name: 'docker-tls-certs' }],
            steps: [{ name: 'use', image: DOCKER_CLI, env: DOCKER_DAEMON_ENV, script }],
          },
        }],
      },
    },
  };
}

/** TEP-0130's example (examples/docker-daemon/pipeline.yaml), with a step writing the Dockerfile that git-clone would fetch. */
export function tepPipelineSpec(marker: string): Record<string, any> {
  const dockerEnv = [
    { name: 'DOCKER_HOST', value: '$(params.docker-host)' },
    { name: 'DOCKER_TLS_VERIFY', value: '1' },
    { name: 'DOCKER_CERT_PATH', value: '$(workspaces.docker-tls-certs.path)' },
  ];
  return {
    params: [{ name: 'image' }, { name: 'docker-host' }],
    workspaces: [{ name: 'source' }, { name: 'docker-tls-certs' }],
    tasks: [
      {
        name: 'docker-build',
        params: [{ name: 'image', value: '$(params.image)' }, { name: 'docker-host', value: '$(params.docker-host)' }],
        workspaces: [{ name: 'source', workspace: 'source' }, { name: 'docker-tls-certs', workspace: 'docker-tls-certs' }],
        taskSpec: {
          params: [{ name: 'image' }, { name: 'docker-host' }],
          workspaces: [{ name: 'source' }, { name: 'docker-tls-certs' }],
          steps: [
            {
              name: 'checkout', image: DOCKER_CLI, workingDir: '$(workspaces.source.path)',
              script: `cp /bin/busybox busybox\nprintf 'FROM scratch\\nCOPY busybox /bin/busybox\\nENTRYPOINT ["/bin/busybox", "echo", "${marker}"]\\n' > Dockerfile`,
            },
            { name: 'build', image: DOCKER_CLI, workingDir: '$(workspaces.source.path)', env: dockerEnv, script: 'docker build -t $(params.image) .' },
          ],
        },
      },
      {
        name: 'docker-test', runAfter: ['docker-build'],
        params: [{ name: 'image', value: '$(params.image)' }, { name: 'docker-host', value: '$(params.docker-host)' }],
        workspaces: [{ name: 'docker-tls-certs', workspace: 'docker-tls-certs' }],
        taskSpec: {
          params: [{ name: 'image' }, { name: 'docker-host' }],
          workspaces: [{ name: 'docker-tls-certs' }],
          // The image built by the previous task, without a registry round trip.
          steps: [{ name: 'test', image: DOCKER_CLI, env: dockerEnv, script: 'docker run --rm $(params.image) from-task-2' }],
        },
      },
    ],
  };
}
