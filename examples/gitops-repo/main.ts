import { App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { defaultKinds, InstallBundle, KindRegistry, PipelineSidecarObject } from 'pipeline-sidecars';
import { kinds as ourKinds } from './kinds/web-server';

/**
 * The platform team's cluster state for CI, as one cdk8s app: the pipeline-sidecars install bundle
 * and the team's PipelineSidecars. `cdk8s synth` writes one file per chart into dist/, which is
 * committed and which Argo CD syncs.
 */

/** The namespace whose PipelineRuns get sidecars. It is the CI teams' own, made outside this repo. */
const CI_NAMESPACE = 'ci';

/**
 * The operator image: ours plus our kinds module (Dockerfile.operator), from our registry. CI that
 * builds and pushes a new tag sets OPERATOR_IMAGE and commits the re-synthesized dist/.
 */
const OPERATOR_IMAGE = process.env.OPERATOR_IMAGE ?? 'registry.example.com/platform-team/pipeline-sidecars-operator:0.1.0';

/** The kinds the operator image serves: the built-in ones and ours, so our specs are checked at synth. */
function operatorKinds(): KindRegistry {
  const registry = defaultKinds();
  for (const kind of ourKinds) registry.register(kind);
  return registry;
}

/** The PipelineSidecars that runs in the CI namespace may ask for (annotation pipeline-sidecars.dev/sidecars). */
class CiSidecars extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id, { namespace: CI_NAMESPACE });
    const kinds = operatorKinds();
    // TEP-0130's `docker`: a Docker daemon per run, over mutual TLS.
    new PipelineSidecarObject(this, 'docker', {
      name: 'docker',
      kinds,
      spec: {
        kind: 'DockerDaemon',
        dockerDaemon: { tls: true, storageDriver: 'overlay2', storageSize: '20Gi' },
        ports: [{ name: 'docker', port: 2376 }],
        expose: { params: [{ name: 'docker-host', value: 'tcp://$(host):2376' }], workspace: 'docker-tls-certs' },
        lifecycle: { startupTimeout: '5m', onSidecarFailure: 'Cancel' },
      },
    });
    // Our own kind: a fixture web page the run's tasks fetch.
    new PipelineSidecarObject(this, 'fixture-site', {
      name: 'fixture-site',
      kinds,
      spec: {
        kind: 'WebServer',
        webServer: {
          page: 'Hello from the platform team\'s WebServer sidecar',
          // A busybox the example's test node has; use your registry's busybox.
          image: 'pipeline-sidecars.local/busybox:1.38',
        },
        ports: [{ name: 'http', port: 8080 }],
        expose: { params: [{ name: 'fixture-url', value: 'http://$(address)/' }] },
        lifecycle: { startupTimeout: '2m', onSidecarFailure: 'Cancel' },
      },
    });
  }
}

const app = new App();
const bundle = new InstallBundle(app, 'pipeline-sidecars', {
  image: OPERATOR_IMAGE,
  servedNamespaces: [CI_NAMESPACE],
  // DockerDaemon needs a privileged pod: allowed in this namespace only.
  privilegedNamespaces: [CI_NAMESPACE],
});
// The PipelineSidecars need the bundle's CRD: the dependency numbers the files in apply order
// (0000-pipeline-sidecars, 0001-ci-sidecars), for `kubectl apply`; Argo CD orders by sync wave.
new CiSidecars(app, 'ci-sidecars').addDependency(bundle);
app.synth();
