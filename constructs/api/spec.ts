/**
 * The user-facing API of pipeline-sidecars, as TypeScript types. This file is the single source
 * for the runtime's types; the CRD's OpenAPI schema (constructs/api/crd.ts) is written to match it.
 */

/** API group, version and kind of our CRD. */
export const GROUP = 'pipeline-sidecars.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'PipelineSidecar';
export const PLURAL = 'pipelinesidecars';

/** Annotations and labels we read or write. */
export const ANNOTATIONS = {
  /** On a PipelineRun or Pipeline: comma-separated PipelineSidecar names the run asks for. */
  sidecars: `${GROUP}/sidecars`,
  /** On a PipelineRun, set by the webhook at CREATE: the short id all object names derive from. */
  runId: `${GROUP}/run-id`,
  /** On a PipelineRun, set by the webhook: "true" when the webhook set spec.status=PipelineRunPending. */
  gated: `${GROUP}/gated`,
  /** On a PipelineRun, set by the operator once it unpended the run (so a restart never unpends twice). */
  started: `${GROUP}/started`,
  /**
   * On a PipelineRun its author created pending: `when-ready` lets the operator release it once its
   * sidecars are Ready (fallback mode). Without it, a pending run is someone else's to release.
   */
  release: `${GROUP}/release`,
} as const;

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  runId: `${GROUP}/run-id`,
  /**
   * The run's uid on every object of a run. A run id is chosen at CREATE and could be copied by
   * another run; the uid is the API server's, so clean-up selects by it and never reaches another
   * run's objects.
   */
  runUid: `${GROUP}/run-uid`,
  pipelineRun: `${GROUP}/pipelinerun`,
  sidecar: `${GROUP}/sidecar`,
  /**
   * On a PipelineRun, set only by the webhook at CREATE, to the run id it minted: the run's
   * bookkeeping is the webhook's. A user cannot forge it: the webhook strips every
   * pipeline-sidecars.dev/ key a user writes, a run carrying one is refused while the webhook is
   * down, and the bundle's ValidatingAdmissionPolicy forbids changing them afterwards.
   */
  admitted: `${GROUP}/admitted`,
  /** On a Namespace: privileged sidecar kinds (DockerDaemon) may run here. */
  allowPrivileged: `${GROUP}/allow-privileged`,
} as const;

/** Prefix of every annotation and label key that is ours; on a PipelineRun only the webhook and the operator write them. */
export const RESERVED_PREFIX = `${GROUP}/`;

export const MANAGED_BY = 'pipeline-sidecars';
export const FIELD_MANAGER = 'pipeline-sidecars';

/** Which runs get a sidecar without asking by annotation. Both fields must match when both are set. */
export interface SidecarSelector {
  /** Runs whose spec.pipelineRef.name equals this. */
  readonly pipelineRef?: string;
  /** Runs whose labels include all of these. */
  readonly matchLabels?: Record<string, string>;
}

/** A port the sidecar serves, exposed through its Service. */
export interface SidecarPort {
  /** IANA-style port name (DNS-1123 label, at most 15 characters). */
  readonly name: string;
  /** Port number, 1-65535. */
  readonly port: number;
  /** TCP (default) or UDP. */
  readonly protocol?: 'TCP' | 'UDP';
}

/** A param the webhook adds to the run at CREATE, if the Pipeline declares it. */
export interface ExposedParam {
  /** Pipeline param name. */
  readonly name: string;
  /** Value; `$(host)`, `$(port)` and `$(address)` are replaced with this sidecar's Service coordinates. */
  readonly value: string;
}

/** What the run's tasks get, decided at CREATE by the webhook. */
export interface SidecarExpose {
  /** Params added to the run when the Pipeline declares them. */
  readonly params?: ExposedParam[];
  /** Pipeline workspace name bound to the client TLS Secret (ca.pem, cert.pem, key.pem). */
  readonly workspace?: string;
}

/** Who may reach the sidecar. */
export interface SidecarIsolation {
  /** SameRun (default): only pods of this PipelineRun. Namespace: any pod in the run's namespace. */
  readonly from?: 'SameRun' | 'Namespace';
  /**
   * Deprecated, accepted and ignored: task pods are always matched by the tekton.dev/pipelineRunUID
   * label Tekton sets from the real run (a run name or user label can be copied by another run).
   */
  readonly matchRunUid?: boolean;
  /** Egress rules for the sidecar pod (NetworkPolicy egress); absent means egress is not restricted. */
  readonly egress?: Array<Record<string, unknown>>;
}

/** Start-up and failure handling. */
export interface SidecarLifecycle {
  /** How long the sidecar may take to become Ready (Go-style duration: 90s, 5m, 1h). Default 5m. */
  readonly startupTimeout?: string;
  /** Cancel (default): cancel the run when the sidecar fails to start. Ignore: start it anyway, with an Event. */
  readonly onSidecarFailure?: 'Cancel' | 'Ignore';
}

/** A container of the generic `Container` kind; mirrors a Tekton Sidecar / core v1 Container subset. */
export interface SidecarContainer {
  readonly name: string;
  readonly image: string;
  readonly command?: string[];
  readonly args?: string[];
  readonly env?: Array<{ name: string; value?: string; valueFrom?: Record<string, unknown> }>;
  readonly ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  readonly startupProbe?: Record<string, unknown>;
  readonly readinessProbe?: Record<string, unknown>;
  readonly resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readonly securityContext?: Record<string, unknown>;
  readonly volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
  readonly workingDir?: string;
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
}

/** Options of the DockerDaemon kind. */
export interface DockerDaemonOptions {
  /** Serve TLS with operator-minted certs and require client certs (default true). */
  readonly tls?: boolean;
  /** dockerd --storage-driver (default overlay2). */
  readonly storageDriver?: string;
  /** dockerd --registry-mirror values. */
  readonly registryMirrors?: string[];
  /** dockerd --insecure-registry values. */
  readonly insecureRegistries?: string[];
  /** Image (default docker:27-dind). */
  readonly image?: string;
  /** Size of the emptyDir for /var/lib/docker, e.g. 20Gi (default: no limit). */
  readonly storageSize?: string;
}

/** Options of the BuildKitDaemon kind (rootless buildkitd). */
export interface BuildKitDaemonOptions {
  /** Image (default moby/buildkit:rootless). */
  readonly image?: string;
}

/** Options of the Postgres kind. */
export interface PostgresOptions {
  /** Image (default postgres:15). */
  readonly image?: string;
  /** Database name (default app). */
  readonly database?: string;
  /** User name (default app). */
  readonly user?: string;
}

/** Options of the Registry kind (a per-run OCI registry). */
export interface RegistryOptions {
  /** Image (default registry:2). */
  readonly image?: string;
}

/** spec of a PipelineSidecar. */
export interface PipelineSidecarSpec {
  /** Runs that get this sidecar without the annotation. */
  readonly selector?: SidecarSelector;
  /** A registered sidecar kind: Container, DockerDaemon, BuildKitDaemon, Postgres, Registry, or your own. */
  readonly kind: string;
  /** Generic form, for kind Container. */
  readonly template?: { containers: SidecarContainer[] };
  readonly dockerDaemon?: DockerDaemonOptions;
  readonly buildKitDaemon?: BuildKitDaemonOptions;
  readonly postgres?: PostgresOptions;
  readonly registry?: RegistryOptions;
  /** Ports exposed by the Service; kinds supply defaults. */
  readonly ports?: SidecarPort[];
  readonly expose?: SidecarExpose;
  readonly isolation?: SidecarIsolation;
  readonly lifecycle?: SidecarLifecycle;
  /** Kind-specific options of a custom kind live under any other key; parsers read them from here. */
  readonly [extra: string]: unknown;
}

/** A condition in status, Kubernetes-style. */
export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason?: string;
  readonly message?: string;
  readonly lastTransitionTime?: string;
  readonly observedGeneration?: number;
}

export interface PipelineSidecarStatus {
  readonly conditions?: Condition[];
  readonly activeRuns?: number;
  readonly observedGeneration?: number;
}

/** The PipelineSidecar custom resource. */
export interface PipelineSidecarResource {
  readonly apiVersion: typeof API_VERSION;
  readonly kind: typeof KIND;
  readonly metadata: { name: string; namespace?: string; generation?: number; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string };
  readonly spec: PipelineSidecarSpec;
  readonly status?: PipelineSidecarStatus;
}

/**
 * The identity of one PipelineRun, as constructs need it.
 * `naming` decides object names: `runId` gives `<sidecar>-<runId>` (webhook mode);
 * `runName` gives `<runName>-<sidecar>` (fallback mode without the webhook, where tasks can only
 * derive a host from `$(context.pipelineRun.name)`).
 */
export interface RunIdentity {
  /** PipelineRun name. */
  readonly name: string;
  /** PipelineRun namespace. */
  readonly namespace: string;
  /** PipelineRun uid (ownerReference). */
  readonly uid: string;
  /** Short run id (annotation pipeline-sidecars.dev/run-id, or derived from uid in fallback mode). */
  readonly runId: string;
  /** How object names are formed. */
  readonly naming: 'runId' | 'runName';
}

/** PEM material the operator mints once per run and passes into constructs. */
export interface TlsBundle {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

/** Per-sidecar secret material minted outside the constructs (they do no I/O and no randomness). */
export interface SidecarMaterial {
  /** Present when the kind needs TLS. */
  readonly tls?: TlsBundle;
  /** Present when the kind needs a generated password (Postgres). */
  readonly password?: string;
}
