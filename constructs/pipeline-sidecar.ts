import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { RunIdentity, SidecarContainer, SidecarIsolation, SidecarPort, TlsBundle } from './api/spec';
import { SidecarSpecError } from './errors';
import { IsolationPolicy } from './isolation-policy';
import { assertBaseline } from './pod-security';
import { objectName, ownerReference, selectorLabels, sidecarLabels } from './names';

/** Where the server TLS Secret is mounted unless a kind says otherwise. */
export const DEFAULT_TLS_MOUNT_PATH = '/certs/server';
/** Keys of both TLS Secrets; the client ones are what DOCKER_CERT_PATH and buildctl expect. */
export const TLS_KEYS = { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' } as const;
/**
 * A copy of the client certificate and key, kept in the server Secret (and not mounted into the
 * sidecar): if the client Secret of a run that is using it is deleted, the operator restores it
 * with the same material instead of minting a second CA.
 */
export const CLIENT_BACKUP_KEYS = { cert: 'client-cert.pem', key: 'client-key.pem' } as const;
const TLS_VOLUME = 'server-tls';

/** What every kind's construct needs about the run and the sidecar. */
export interface SidecarCommonProps {
  /** The PipelineRun the sidecar serves (names, labels, ownerReference). */
  readonly run: RunIdentity;
  /** The PipelineSidecar name; object names, labels and the Service host derive from it. */
  readonly sidecarName: string;
  /** Ports the Service exposes and the IsolationPolicy opens; kinds supply defaults. */
  readonly ports?: SidecarPort[];
  /** Who may reach the sidecar (default: pods of this run only). */
  readonly isolation?: SidecarIsolation;
  /**
   * The run's namespace opted in to pods beyond the Pod Security baseline profile (namespace label
   * pipeline-sidecars.dev/allow-privileged=true, or the operator's --allow-privileged). Without it the
   * rendered pod must meet baseline, or the construct throws PodSecurityError.
   * @default false
   */
  readonly allowPrivileged?: boolean;
}

/** Props of the base construct. */
export interface PipelineSidecarProps extends SidecarCommonProps {
  /** Containers of the sidecar pod, Tekton-Sidecar-like. */
  readonly containers: SidecarContainer[];
  /** TLS PEMs: when given, a server Secret is mounted into every container and a client Secret emitted. */
  readonly tls?: TlsBundle;
  /** Mount path of the server Secret (ca.pem, cert.pem, key.pem) in every container (default /certs/server). */
  readonly tlsMountPath?: string;
  /** Keys of the client Secret besides TLS ones (credentials for kinds like Postgres); makes the Secret exist. */
  readonly clientSecretData?: Record<string, string>;
  /** Pod-level securityContext (default none). */
  readonly podSecurityContext?: Record<string, unknown>;
  /** Extra pod volumes referenced by the containers' volumeMounts (data emptyDirs). */
  readonly volumes?: Array<Record<string, unknown>>;
  /** Pod annotations. */
  readonly podAnnotations?: Record<string, string>;
  /**
   * @deprecated Ignored: the rendered pod itself is checked against the Pod Security baseline
   * profile (see allowPrivileged). Kept so existing kinds still compile.
   */
  readonly privileged?: boolean;
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

/**
 * One pipeline-level sidecar of one run: Deployment (1 replica, Recreate), ClusterIP Service,
 * ServiceAccount without a token, IsolationPolicy, and the TLS / credential Secrets.
 *
 * Built from plain ApiObjects rather than cdk8s-plus workloads: cdk8s-plus defaults
 * (runAsNonRoot, readOnlyRootFilesystem, resource requests, imagePullPolicy Always, hash selector
 * labels) are wrong for daemons like dind, and every field here is chosen per kind instead.
 */
export class PipelineSidecar extends Construct {
  /** The run this sidecar serves. */
  readonly run: RunIdentity;
  /** The PipelineSidecar name. */
  readonly sidecarName: string;
  /** The Service name (also the Deployment's). */
  readonly serviceName: string;
  /** `<service>.<namespace>.svc`. */
  readonly host: string;
  /** The Service ports. */
  readonly ports: SidecarPort[];
  /** Name of the Secret tasks bind as a workspace, when there is one. */
  readonly clientSecretName?: string;
  /** Name of the Secret with the server certificate, when TLS is on. */
  readonly serverSecretName?: string;
  readonly deployment: ApiObject;
  readonly service: ApiObject;
  readonly serviceAccount: ApiObject;
  readonly isolationPolicy: IsolationPolicy;

  constructor(scope: Construct, id: string, props: PipelineSidecarProps) {
    super(scope, id);
    const { run, sidecarName } = props;
    const ports = props.ports ?? [];
    if (ports.length === 0) throw new SidecarSpecError('spec.ports', 'a sidecar needs at least one port for its Service', sidecarName);
    if (props.containers.length === 0) throw new SidecarSpecError('spec.template.containers', 'a sidecar needs at least one container', sidecarName);

    this.run = run;
    this.sidecarName = sidecarName;
    this.ports = ports;
    this.serviceName = objectName(run, sidecarName);
    this.host = `${this.serviceName}.${run.namespace}.svc`;
    const labels = sidecarLabels(run, sidecarName);
    const selector = selectorLabels(run, sidecarName);
    const metadata = (name: string) => ({ name, namespace: run.namespace, labels, ownerReferences: [ownerReference(run) as any] });

    this.serviceAccount = new ApiObject(this, 'ServiceAccount', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: metadata(this.serviceName),
      automountServiceAccountToken: false,
    } as any);

    const volumes: Array<Record<string, unknown>> = [...(props.volumes ?? [])];
    const tlsMounts: SidecarContainer['volumeMounts'] = [];
    if (props.tls) {
      this.serverSecretName = objectName(run, sidecarName, 'server');
      new ApiObject(this, 'ServerSecret', {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: metadata(this.serverSecretName),
        type: 'Opaque',
        data: {
          [TLS_KEYS.ca]: b64(props.tls.caCert), [TLS_KEYS.cert]: b64(props.tls.serverCert), [TLS_KEYS.key]: b64(props.tls.serverKey),
          [CLIENT_BACKUP_KEYS.cert]: b64(props.tls.clientCert), [CLIENT_BACKUP_KEYS.key]: b64(props.tls.clientKey),
        },
      } as any);
      // 0440 + the pod's fsGroup lets non-root daemons (rootless buildkitd) read the key; root reads it anyway.
      // Only the server's own files are mounted: the client backup stays in the API.
      const items = Object.values(TLS_KEYS).map((k) => ({ key: k, path: k }));
      volumes.push({ name: TLS_VOLUME, secret: { secretName: this.serverSecretName, defaultMode: 0o440, items } });
      tlsMounts.push({ name: TLS_VOLUME, mountPath: props.tlsMountPath ?? DEFAULT_TLS_MOUNT_PATH, readOnly: true });
    }
    if (props.tls || props.clientSecretData) {
      this.clientSecretName = objectName(run, sidecarName, 'client');
      const data: Record<string, string> = {};
      if (props.tls) {
        data[TLS_KEYS.ca] = b64(props.tls.caCert);
        data[TLS_KEYS.cert] = b64(props.tls.clientCert);
        data[TLS_KEYS.key] = b64(props.tls.clientKey);
      }
      for (const [k, v] of Object.entries(props.clientSecretData ?? {})) data[k] = b64(v);
      new ApiObject(this, 'ClientSecret', {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: metadata(this.clientSecretName),
        type: 'Opaque',
        data,
      } as any);
    }

    this.service = new ApiObject(this, 'Service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: metadata(this.serviceName),
      spec: {
        type: 'ClusterIP',
        selector,
        ports: ports.map(p => ({ name: p.name, port: p.port, targetPort: p.port, protocol: p.protocol ?? 'TCP' })),
      },
    });

    this.isolationPolicy = new IsolationPolicy(this, 'IsolationPolicy', { run, sidecarName, ports, isolation: props.isolation });

    const containers = props.containers.map((c, i) => renderContainer(c, i === 0 ? ports : [], tlsMounts));
    const podSpec: Record<string, unknown> = {
      serviceAccountName: this.serviceAccount.name,
      automountServiceAccountToken: false,
      // A run's namespace may hold hundreds of Services; their env vars are noise for a daemon.
      enableServiceLinks: false,
      containers,
    };
    if (props.podSecurityContext) podSpec.securityContext = props.podSecurityContext;
    if (volumes.length > 0) podSpec.volumes = volumes;
    const podMetadata = props.podAnnotations ? { labels, annotations: props.podAnnotations } : { labels };
    // The one privilege check: on the pod as rendered, whatever the kind says about itself
    // (synthesizeRun repeats it on the final manifests, for kinds that edit objects after this).
    if (!props.allowPrivileged) assertBaseline({ metadata: podMetadata, spec: podSpec }, run.namespace, sidecarName);

    this.deployment = new ApiObject(this, 'Deployment', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: metadata(this.serviceName),
      spec: {
        replicas: 1,
        // Two daemons of one run must never overlap (dind state, Postgres data): Recreate, not RollingUpdate.
        strategy: { type: 'Recreate' },
        revisionHistoryLimit: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: podMetadata,
          spec: podSpec,
        },
      },
    });
  }
}

/** A container as the API wants it; ports default to the Service ports on the first container. */
function renderContainer(c: SidecarContainer, servicePorts: SidecarPort[], extraMounts: NonNullable<SidecarContainer['volumeMounts']>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: c.name,
    image: c.image,
    // Not cdk8s-plus's Always: a per-run daemon should start from the node's cache when it can.
    imagePullPolicy: c.imagePullPolicy ?? 'IfNotPresent',
    // The operator reads this when a sidecar fails to start, to say why in the run's Event.
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  if (c.command) out.command = c.command;
  if (c.args) out.args = c.args;
  if (c.workingDir) out.workingDir = c.workingDir;
  if (c.env && c.env.length > 0) out.env = c.env;
  const ports = c.ports ?? servicePorts.map(p => ({ name: p.name, containerPort: p.port, protocol: p.protocol ?? 'TCP' }));
  if (ports.length > 0) out.ports = ports;
  if (c.startupProbe) out.startupProbe = c.startupProbe;
  if (c.readinessProbe) out.readinessProbe = c.readinessProbe;
  if (c.resources) out.resources = c.resources;
  if (c.securityContext) out.securityContext = c.securityContext;
  const mounts = [...(c.volumeMounts ?? []), ...extraMounts];
  if (mounts.length > 0) out.volumeMounts = mounts;
  return out;
}
