import { GROUP } from '../constructs/api/spec';

/**
 * The label a Secret or ConfigMap must carry before a PipelineSidecar may read it. A
 * PipelineSidecar's author may be someone who cannot read the namespace's Secrets; the operator,
 * which can, would otherwise hand any of them to that author's sidecar through env.valueFrom,
 * envFrom or a volume. Whoever may edit a Secret may also label it, so the label is the owner's
 * consent.
 */
export const SIDECAR_USE_LABEL = `${GROUP}/sidecar-use`;

/** A Secret or ConfigMap a rendered pod reads, and where. */
export interface PodInput {
  readonly kind: 'Secret' | 'ConfigMap';
  readonly name: string;
  /** The field that names it, e.g. Deployment/db-abc.spec.template.spec.containers[0].env[1]. */
  readonly where: string;
}

/**
 * The Secrets and ConfigMaps the pods of `manifests` read that are not among `manifests` themselves
 * (the run's own TLS and credential Secrets are the operator's). Pure: a scan of the pod templates.
 */
export function externalPodInputs(manifests: ReadonlyArray<Record<string, any>>): PodInput[] {
  const own = new Set(manifests.filter((m) => m.kind === 'Secret' || m.kind === 'ConfigMap').map((m) => `${m.kind}/${m.metadata.name}`));
  const out: PodInput[] = [];
  const add = (kind: PodInput['kind'], name: string | undefined, where: string) => {
    if (name && !own.has(`${kind}/${name}`)) out.push({ kind, name, where });
  };
  for (const m of manifests) {
    const pod = m.kind === 'Pod' ? m.spec : m.spec?.template?.spec;
    if (!pod) continue;
    const base = `${m.kind}/${m.metadata.name}${m.kind === 'Pod' ? '' : '.spec.template'}.spec`;
    for (const field of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
      (pod[field] ?? []).forEach((c: any, i: number) => {
        (c.env ?? []).forEach((e: any, j: number) => {
          add('Secret', e.valueFrom?.secretKeyRef?.name, `${base}.${field}[${i}].env[${j}]`);
          add('ConfigMap', e.valueFrom?.configMapKeyRef?.name, `${base}.${field}[${i}].env[${j}]`);
        });
        (c.envFrom ?? []).forEach((e: any, j: number) => {
          add('Secret', e.secretRef?.name, `${base}.${field}[${i}].envFrom[${j}]`);
          add('ConfigMap', e.configMapRef?.name, `${base}.${field}[${i}].envFrom[${j}]`);
        });
      });
    }
    (pod.volumes ?? []).forEach((v: any, i: number) => {
      add('Secret', v.secret?.secretName, `${base}.volumes[${i}]`);
      add('ConfigMap', v.configMap?.name, `${base}.volumes[${i}]`);
      (v.projected?.sources ?? []).forEach((s: any, j: number) => {
        add('Secret', s.secret?.name, `${base}.volumes[${i}].projected.sources[${j}]`);
        add('ConfigMap', s.configMap?.name, `${base}.volumes[${i}].projected.sources[${j}]`);
      });
    });
  }
  return out;
}
