import { Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-27';
import { PipelineSidecarCrd } from '../api/crd';
import { PipelineRunWebhookConfiguration } from '../api/webhook-config';
import { POD_CONTROLLER_USERS, TEKTON_CONTROLLER_USER } from '../api/tekton-labels';
import { BookkeepingPolicy } from './bookkeeping-policy';
import { BUNDLE_DEFAULTS, BUNDLE_LABELS, leaseName, webhookTlsSecretName } from './defaults';
import { OperatorDeployment, ResourceQuantities } from './operator-deployment';
import { OperatorDisruptionBudget } from './operator-disruption-budget';
import { OperatorRbac } from './operator-rbac';
import { OperatorService } from './operator-service';
import { RunLabelGuard } from './run-label-guard';
import { ServedNamespace } from './served-namespace';
import { SYNC_WAVES, SYNC_WAVE_ANNOTATION, syncWave } from './sync-wave';
import { INJECT_CA_FROM, WebhookCertificate } from './webhook-certificate';

/** Props of the install bundle; every field has a default in BUNDLE_DEFAULTS. */
export interface InstallBundleProps {
  /** Name of the ServiceAccount, Deployment, Service, PDB, RBAC objects and webhook configuration (default pipeline-sidecars). */
  readonly name?: string;
  /** The operator image reference, the one parameter a release changes (default ghcr.io/pipeline-sidecars/operator:<version>). */
  readonly image?: string;
  /** Namespace the operator runs in, created by the bundle (default pipeline-sidecars). */
  readonly namespace?: string;
  /** Namespaces whose PipelineRuns get sidecars: each gets a RoleBinding and a --watch-namespace (default none: see docs/install.md). */
  readonly servedNamespaces?: string[];
  /** Operator replicas (default 2). */
  readonly replicas?: number;
  /** Let cert-manager issue the webhook certificate and inject the caBundle, instead of the operator (default false). */
  readonly certManager?: boolean;
  /** Operator container resources (default requests 100m / 128Mi, limits 1 CPU / 512Mi). */
  readonly resources?: ResourceQuantities;
  /**
   * Served namespaces where privileged sidecar kinds (DockerDaemon, BuildKitDaemon) may run. The
   * operator is told so by a flag, so the opt-in is part of the bundle rather than a namespace
   * label applied by hand (the label still works). Each must be a served namespace.
   * @default []
   */
  readonly privilegedNamespaces?: string[];
  /**
   * Ship RunLabelGuard: only Tekton may put its run labels on Pods, TaskRuns and pod templates in
   * served namespaces, which closes the same-namespace gap of run isolation (docs/install.md).
   * Off by default because it must name the identities of Tekton's controller and of
   * kube-controller-manager in your cluster (`tektonControllerUsers`, `podControllerUsers`).
   * @default false
   */
  readonly guardTektonLabels?: boolean;
  /**
   * Who Tekton's controller authenticates as: the only user that may set Tekton's run labels on
   * PipelineRuns (and, with guardTektonLabels, on TaskRuns and pods).
   * @default ['system:serviceaccount:tekton-pipelines:tekton-pipelines-controller']
   */
  readonly tektonControllerUsers?: string[];
  /**
   * Who creates the pods of a StatefulSet (Tekton's affinity assistant), for guardTektonLabels.
   * @default ['system:serviceaccount:kube-system:statefulset-controller', 'system:kube-controller-manager']
   */
  readonly podControllerUsers?: string[];
}

/** The props with every default filled in. */
export function resolveBundleProps(props: InstallBundleProps = {}): Required<InstallBundleProps> {
  const served = [...new Set(props.servedNamespaces ?? BUNDLE_DEFAULTS.servedNamespaces)].sort();
  return {
    name: props.name ?? BUNDLE_DEFAULTS.name,
    image: props.image ?? BUNDLE_DEFAULTS.image,
    namespace: props.namespace ?? BUNDLE_DEFAULTS.namespace,
    servedNamespaces: served,
    replicas: props.replicas ?? BUNDLE_DEFAULTS.replicas,
    certManager: props.certManager ?? BUNDLE_DEFAULTS.certManager,
    resources: props.resources ?? BUNDLE_DEFAULTS.resources,
    privilegedNamespaces: [...new Set(props.privilegedNamespaces ?? [])].sort(),
    guardTektonLabels: props.guardTektonLabels ?? false,
    tektonControllerUsers: props.tektonControllerUsers ?? [TEKTON_CONTROLLER_USER],
    podControllerUsers: props.podControllerUsers ?? [...POD_CONTROLLER_USERS],
  };
}

/**
 * The webhook's namespaceSelector: only served namespaces. With none served it matches nothing
 * (every namespace carries its kubernetes.io/metadata.name label): a run must not be gated by an
 * operator that has nowhere to create its sidecars, or it would stay pending.
 */
export function servedSelector(served: string[]): Record<string, unknown> {
  const key = 'kubernetes.io/metadata.name';
  return { matchExpressions: [served.length ? { key, operator: 'In', values: served } : { key, operator: 'DoesNotExist' }] };
}

/**
 * Everything `kubectl apply -f dist/` or an Argo CD Application installs: the PipelineSidecar CRD,
 * the operator's Namespace, ServiceAccount and least-privilege RBAC, the operator Deployment with
 * its Service and PodDisruptionBudget, the ValidatingAdmissionPolicy that keeps runs' bookkeeping
 * the operator's, and the MutatingWebhookConfiguration, in Argo CD sync
 * waves (CRDs and Namespace, RBAC, workloads, webhook). Objects are emitted in that order too, so
 * a plain `kubectl apply` of the single file works in one pass. Deterministic: no generated names.
 */
export class InstallBundle extends Chart {
  /** The resolved props. */
  readonly config: Required<InstallBundleProps>;

  constructor(scope: Construct, id: string, props: InstallBundleProps = {}) {
    super(scope, id, { labels: { ...BUNDLE_LABELS }, disableResourceNameHashes: true });
    const c = this.config = resolveBundleProps(props);
    const name = c.name;
    const dns1123Label = (v: string) => /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v) && v.length <= 63;
    if (!dns1123Label(name)) throw new Error(`InstallBundle: name "${name}" is not a DNS-1123 label (lower-case letters, digits and '-', at most 63)`);
    for (const ns of [c.namespace, ...c.servedNamespaces]) {
      if (!dns1123Label(ns)) throw new Error(`InstallBundle: "${ns}" is not a valid namespace name`);
    }
    const unserved = c.privilegedNamespaces.filter((ns) => !c.servedNamespaces.includes(ns));
    if (unserved.length) throw new Error(`InstallBundle: privileged namespace${unserved.length > 1 ? 's' : ''} ${unserved.join(', ')} ${unserved.length > 1 ? 'are' : 'is'} not served; add ${unserved.length > 1 ? 'them' : 'it'} to servedNamespaces too (synth --served-namespace)`);
    for (const [field, users] of [['tektonControllerUsers', c.tektonControllerUsers], ['podControllerUsers', c.podControllerUsers]] as const) {
      if (users.length === 0 || users.some((u) => !u || /['\\\s]/.test(u))) throw new Error(`InstallBundle: ${field} must list user names such as system:serviceaccount:NAMESPACE:NAME, not ${JSON.stringify(users)}`);
    }
    if (c.servedNamespaces.includes(c.namespace)) throw new Error(`InstallBundle: the operator's own namespace "${c.namespace}" cannot be a served namespace`);
    if (!Number.isInteger(c.replicas) || c.replicas < 1) throw new Error(`InstallBundle: replicas must be a positive integer, not ${c.replicas}`);
    if (!c.image || /\s/.test(c.image)) throw new Error(`InstallBundle: "${c.image}" is not an image reference`);

    syncWave(new PipelineSidecarCrd(this, 'PipelineSidecarCrd'), SYNC_WAVES.crds);
    syncWave(new k8s.KubeNamespace(this, 'Namespace', {
      metadata: { name: c.namespace, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/enforce-version': 'latest' } },
    }), SYNC_WAVES.namespace);

    const rbac = new OperatorRbac(this, 'Rbac', { name, namespace: c.namespace, webhookConfigName: name });
    for (const ns of c.servedNamespaces) {
      new ServedNamespace(this, `Served-${ns}`, {
        namespace: ns, name, clusterRoleName: rbac.namespaceRoleName,
        serviceAccount: { name: rbac.serviceAccountName, namespace: c.namespace },
      });
    }
    // The runs' bookkeeping stays the operator's after CREATE, even while the operator is down.
    new BookkeepingPolicy(this, 'BookkeepingPolicy', {
      name, serviceAccount: { namespace: c.namespace, name: rbac.serviceAccountName }, namespaceSelector: servedSelector(c.servedNamespaces),
      tektonControllerUsers: c.tektonControllerUsers,
    });
    if (c.guardTektonLabels) {
      new RunLabelGuard(this, 'RunLabelGuard', {
        name: `${name}-run-labels`, namespaceSelector: servedSelector(c.servedNamespaces),
        trustedUsers: [...c.tektonControllerUsers, ...c.podControllerUsers],
      });
    }
    const certificate = c.certManager
      ? new WebhookCertificate(this, 'WebhookCertificate', { name: `${name}-webhook`, namespace: c.namespace, secretName: webhookTlsSecretName(name), serviceName: name })
      : undefined;

    new OperatorDeployment(this, 'Deployment', {
      name, namespace: c.namespace, image: c.image, replicas: c.replicas, serviceAccountName: rbac.serviceAccountName,
      webhookServiceName: name, webhookConfigName: name, leaseName: leaseName(name),
      servedNamespaces: c.servedNamespaces, privilegedNamespaces: c.privilegedNamespaces, externalCa: c.certManager, resources: c.resources,
    });
    new OperatorService(this, 'Service', { name, namespace: c.namespace });
    new OperatorDisruptionBudget(this, 'DisruptionBudget', { name, namespace: c.namespace });

    // caBundle is left out: the operator patches it in at start (or cert-manager injects it).
    new PipelineRunWebhookConfiguration(this, 'WebhookConfiguration', {
      name,
      service: { namespace: c.namespace, name, port: 443 },
      annotations: {
        [SYNC_WAVE_ANNOTATION]: String(SYNC_WAVES.webhook),
        ...(certificate ? { [INJECT_CA_FROM]: certificate.injectCaFrom } : {}),
      },
      namespaceSelector: servedSelector(c.servedNamespaces),
    });
  }
}
