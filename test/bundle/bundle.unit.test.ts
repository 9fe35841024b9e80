import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { BUNDLE_DEFAULTS, OPERATOR_VERSION, SYNC_WAVE_ANNOTATION } from '../../constructs/bundle';
import { installBundleObjects } from '../../constructs/bundle/main';
import { RUN_OPTIONS } from '../../src/cli-run';

const byKind = (objs: Array<Record<string, any>>, kind: string, name?: string) =>
  objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const one = (objs: Array<Record<string, any>>, kind: string, name?: string) => {
  const found = byKind(objs, kind, name);
  expect(found).toHaveLength(1);
  return found[0];
};
const container = (objs: Array<Record<string, any>>) => one(objs, 'Deployment').spec.template.spec.containers[0];

/** What the install bundle contains, synthesized in memory (no cluster). */
describe('InstallBundle', () => {
  const objs = installBundleObjects();

  test('the default image is tagged with the package version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
    expect(OPERATOR_VERSION).toBe(pkg.version);
    expect(container(objs).image).toBe(`ghcr.io/pipeline-sidecars/operator:${pkg.version}`);
  });

  test('the image is a single parameter: changing it changes exactly one field', () => {
    const other = installBundleObjects({ image: 'registry.example/ops/pipeline-sidecars:1.2.3' });
    const a = JSON.stringify(objs);
    const b = JSON.stringify(other);
    expect(a.split(BUNDLE_DEFAULTS.image)).toHaveLength(2);
    expect(b.replace('registry.example/ops/pipeline-sidecars:1.2.3', BUNDLE_DEFAULTS.image)).toBe(a);
  });

  test('objects in apply order, each with its Argo CD sync wave; CRDs and Namespace first, webhook last', () => {
    const waves = objs.map((o) => [o.kind, o.metadata.name, o.metadata.annotations?.[SYNC_WAVE_ANNOTATION]]);
    expect(waves).toEqual([
      ['CustomResourceDefinition', 'pipelinesidecars.pipeline-sidecars.dev', '-2'],
      ['Namespace', 'pipeline-sidecars', '-2'],
      ['ServiceAccount', 'pipeline-sidecars', '-1'],
      ['ClusterRole', 'pipeline-sidecars', '-1'],
      ['ClusterRoleBinding', 'pipeline-sidecars', '-1'],
      ['Role', 'pipeline-sidecars', '-1'],
      ['RoleBinding', 'pipeline-sidecars', '-1'],
      ['ClusterRole', 'pipeline-sidecars-namespace', '-1'],
      ['ValidatingAdmissionPolicy', 'pipeline-sidecars', '-1'],
      ['ValidatingAdmissionPolicyBinding', 'pipeline-sidecars', '-1'],
      ['Deployment', 'pipeline-sidecars', '0'],
      ['Service', 'pipeline-sidecars', '0'],
      ['PodDisruptionBudget', 'pipeline-sidecars', '0'],
      ['MutatingWebhookConfiguration', 'pipeline-sidecars', '1'],
    ]);
    // Applying in file order never needs a later wave: waves never decrease.
    const w = waves.map((x) => Number(x[2]));
    expect(w).toEqual([...w].sort((x, y) => x - y));
    for (const o of objs) expect(o.metadata.generateName).toBeUndefined();
  });

  test('the operator Deployment: 2 replicas, locked down, probed, resourced', () => {
    const dep = one(objs, 'Deployment');
    expect(dep.spec.replicas).toBe(2);
    const pod = dep.spec.template.spec;
    expect(pod.serviceAccountName).toBe('pipeline-sidecars');
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    const c = container(objs);
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    expect(c.resources.requests).toEqual({ cpu: '100m', memory: '128Mi' });
    expect(c.resources.limits.memory).toBe('512Mi');
    expect(pod.affinity.podAntiAffinity).toBeDefined();
    expect(pod.topologySpreadConstraints).toHaveLength(1);
    expect(one(objs, 'PodDisruptionBudget').spec).toEqual({ minAvailable: 1, selector: dep.spec.selector });
    const svc = one(objs, 'Service');
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
    expect(svc.spec.ports.map((p: any) => [p.port, p.targetPort])).toEqual([[443, 'webhook'], [8080, 'health']]);
    expect(c.ports.map((p: any) => [p.name, p.containerPort])).toEqual([['webhook', 8443], ['health', 8080]]);
  });

  test('the operator args are accepted by `pipeline-sidecars run` and point at the bundle\'s objects', () => {
    const args: string[] = container(objs).args;
    expect(args.slice(0, 3)).toEqual(['run', '--namespace', 'pipeline-sidecars']);
    const { values } = parseArgs({ args: args.slice(1), options: RUN_OPTIONS, strict: true });
    expect(values).toMatchObject({
      'namespace': 'pipeline-sidecars', 'webhook-service': one(objs, 'Service').metadata.name,
      'webhook-config': one(objs, 'MutatingWebhookConfiguration').metadata.name, 'webhook-port': '8443', 'health-port': '8080',
      'leader-elect': true, 'lease-name': 'pipeline-sidecars-leader',
    });
    expect(values['webhook-external-ca']).toBeUndefined();
    expect(values['watch-namespace']).toBeUndefined();
  });

  test('the webhook configuration calls the Service and leaves caBundle to the operator', () => {
    const mwc = one(objs, 'MutatingWebhookConfiguration');
    expect(mwc.webhooks).toHaveLength(2);
    for (const w of mwc.webhooks) {
      expect(w.clientConfig.service).toMatchObject({ namespace: 'pipeline-sidecars', name: 'pipeline-sidecars', port: 443 });
      expect(w.clientConfig.caBundle).toBeUndefined();
      // Nothing served by default: the webhook gates no run (every namespace has its name label).
      expect(w.namespaceSelector).toEqual({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'DoesNotExist' }] });
    }
    expect(mwc.metadata.annotations['cert-manager.io/inject-ca-from']).toBeUndefined();
  });

  test('servedNamespaces: a RoleBinding in each, --watch-namespace each, and the webhook limited to them', () => {
    const served = installBundleObjects({ servedNamespaces: ['team-b', 'team-a', 'team-b'] });
    const rbs = byKind(served, 'RoleBinding').filter((rb) => rb.metadata.namespace !== 'pipeline-sidecars');
    expect(rbs.map((rb) => rb.metadata.namespace)).toEqual(['team-a', 'team-b']);
    for (const rb of rbs) {
      expect(rb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'pipeline-sidecars-namespace' });
      expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: 'pipeline-sidecars', namespace: 'pipeline-sidecars' }]);
      expect(rb.metadata.labels['pipeline-sidecars.dev/served-namespace']).toBe('true');
    }
    const { values } = parseArgs({ args: container(served).args.slice(1), options: RUN_OPTIONS, strict: true });
    expect(values['watch-namespace']).toEqual(['team-a', 'team-b']);
    for (const w of one(served, 'MutatingWebhookConfiguration').webhooks) {
      expect(w.namespaceSelector).toEqual({ matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['team-a', 'team-b'] }] });
    }
  });

  test('certManager: a Certificate for the Service, CA injection annotation, operator leaves the CA alone', () => {
    const cm = installBundleObjects({ certManager: true });
    const cert = byKind(cm, 'Certificate').find((c) => c.metadata.name === 'pipeline-sidecars-webhook')!;
    expect(cert.spec.secretName).toBe('pipeline-sidecars-webhook-tls');
    expect(cert.spec.dnsNames).toEqual(['pipeline-sidecars.pipeline-sidecars.svc', 'pipeline-sidecars.pipeline-sidecars.svc.cluster.local']);
    expect(byKind(cm, 'Issuer').find((i) => i.metadata.name === 'pipeline-sidecars-webhook-selfsigned')!.spec).toEqual({ selfSigned: {} });
    expect(one(cm, 'MutatingWebhookConfiguration').metadata.annotations['cert-manager.io/inject-ca-from']).toBe('pipeline-sidecars/pipeline-sidecars-webhook');
    expect(container(cm).args).toContain('--webhook-external-ca');
  });

  test('refuses bad props with a clear error', () => {
    expect(() => installBundleObjects({ servedNamespaces: ['Not_A_Namespace'] })).toThrow(/not a valid namespace name/);
    expect(() => installBundleObjects({ servedNamespaces: ['pipeline-sidecars'] })).toThrow(/own namespace/);
    expect(() => installBundleObjects({ replicas: 0 })).toThrow(/replicas/);
    expect(() => installBundleObjects({ image: '' })).toThrow(/image/);
    expect(() => installBundleObjects({ name: 'Bad_Name' })).toThrow(/name "Bad_Name" is not a DNS-1123 label/);
  });

  test('the Argo CD example syncs dist/ and ignores the runtime-patched caBundle of this webhook configuration', () => {
    const root = path.join(__dirname, '..', '..');
    const appManifest = parse(fs.readFileSync(path.join(root, 'examples', 'argocd-application.yaml'), 'utf8'));
    expect(appManifest.kind).toBe('Application');
    expect(appManifest.spec.source.path).toBe('dist');
    expect(fs.existsSync(path.join(root, appManifest.spec.source.path, 'pipeline-sidecars.k8s.yaml'))).toBe(true);
    const mwc = one(objs, 'MutatingWebhookConfiguration');
    expect(appManifest.spec.ignoreDifferences).toContainEqual({
      group: 'admissionregistration.k8s.io', kind: 'MutatingWebhookConfiguration', name: mwc.metadata.name,
      jqPathExpressions: ['.webhooks[]?.clientConfig.caBundle'],
    });
    expect(appManifest.spec.syncPolicy.syncOptions).toContain('RespectIgnoreDifferences=true');
  });
});
