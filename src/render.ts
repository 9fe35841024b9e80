import { createHash } from 'node:crypto';
import * as YAML from 'yaml';
import { ANNOTATIONS, API_VERSION, KIND, PipelineSidecarResource, RunIdentity, SidecarMaterial } from '../constructs/api/spec';
import { KindRegistry, defaultKinds } from '../constructs/kinds';
import { sidecarEndpoints } from '../constructs/endpoints';
import { serviceDnsNames } from '../constructs/names';
import { synthesizeRun } from '../constructs/synthesize';
import { runIdFromUid } from './runid';
import { SelectablePipeline, selectSidecars } from './selection';
import { mintRunTls, randomPassword } from './tls';

/** Options of renderRuns. */
export interface RenderOptions {
  /** Whether privileged kinds may run (default true: a preview has no namespace to check). */
  readonly allowPrivileged?: boolean;
  /** Object naming: runId (webhook mode, default) or runName (fallback mode). */
  readonly naming?: 'runId' | 'runName';
  /** Kinds (default the built-in ones). */
  readonly kinds?: KindRegistry;
}

/** One run's preview. */
export interface RenderedRun {
  readonly run: RunIdentity;
  /** Sidecars that apply, with where tasks reach them. */
  readonly sidecars: Array<{ name: string; host: string; port: number; clientSecretName?: string }>;
  /** Manifests, in apply order. */
  readonly manifests: Array<Record<string, any>>;
}

/** Every non-empty document of a multi-doc YAML text, with `kind: List` flattened. */
export function parseDocs(text: string, source = 'input'): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0].message}`);
    const v = doc.toJS();
    if (v === null || v === undefined) continue;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${source}: every YAML document must be a Kubernetes object`);
    if (v.kind === 'List' && Array.isArray(v.items)) out.push(...v.items);
    else out.push(v);
  }
  return out;
}

function previewUid(ns: string, name: string): string {
  const h = createHash('sha256').update(`${ns}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * The manifests each PipelineRun among `docs` would get, with no cluster: PipelineSidecars and
 * Pipelines come from `docs` too. TLS material is really minted (so the output is a faithful
 * preview, not a template); run ids come from the run-id annotation or, for a preview, from the
 * run's name, so the names are stable between invocations.
 */
export async function renderRuns(docs: Array<Record<string, any>>, opts: RenderOptions = {}): Promise<RenderedRun[]> {
  const kinds = opts.kinds ?? defaultKinds();
  const runs = docs.filter(d => d.kind === 'PipelineRun');
  if (runs.length === 0) throw new Error('no PipelineRun among the documents given: pass the run with -f run.yaml');
  const crs = docs.filter(d => d.kind === KIND && (d.apiVersion === API_VERSION || !d.apiVersion)) as PipelineSidecarResource[];
  const pipelines = docs.filter(d => d.kind === 'Pipeline');
  const out: RenderedRun[] = [];
  for (const r of runs) {
    const ns: string = r.metadata?.namespace ?? crs.find(c => c.metadata.namespace)?.metadata.namespace ?? 'default';
    const name: string = r.metadata?.name ?? `${r.metadata?.generateName ?? 'run-'}preview`;
    const uid: string = r.metadata?.uid ?? previewUid(ns, name);
    const run: RunIdentity = {
      name,
      namespace: ns,
      uid,
      runId: r.metadata?.annotations?.[ANNOTATIONS.runId] ?? runIdFromUid(`${ns}/${name}`),
      naming: opts.naming ?? 'runId',
    };
    const pipelineName = r.spec?.pipelineRef?.name;
    const pipeline: SelectablePipeline | undefined = pipelines.find(p => p.metadata?.name === pipelineName && (p.metadata?.namespace ?? ns) === ns) as SelectablePipeline | undefined;
    const sel = selectSidecars({ ...r, metadata: { ...r.metadata, namespace: ns } }, pipeline, crs.map(c => ({ ...c, metadata: { ...c.metadata, namespace: c.metadata.namespace ?? ns } })));
    if (sel.unknown.length > 0) {
      throw new Error(`PipelineRun ${name} asks for sidecars with no PipelineSidecar among the documents: ${sel.unknown.join(', ')}; pass them with -f`);
    }
    const sidecars = await Promise.all(sel.names.map(async n => {
      const spec = crs.find(c => c.metadata.name === n)!.spec;
      const ep = sidecarEndpoints(run, n, spec, kinds);
      const needs = kinds.get(spec.kind, n).needs(spec);
      const material: SidecarMaterial = {
        tls: needs.tls ? await mintRunTls({ hosts: serviceDnsNames(ep.serviceName, ns) }) : undefined,
        password: needs.password ? randomPassword() : undefined,
      };
      return { name: n, spec, material, ep };
    }));
    const manifests = synthesizeRun({ run, sidecars, allowPrivileged: opts.allowPrivileged ?? true, kinds });
    out.push({
      run,
      sidecars: sidecars.map(s => ({ name: s.name, host: s.ep.host, port: s.ep.port, clientSecretName: s.ep.clientSecretName })),
      manifests,
    });
  }
  return out;
}

/** Rendered runs as multi-doc YAML, each run introduced by a comment saying where tasks reach its sidecars. */
export function toYaml(rendered: RenderedRun[]): string {
  const parts: string[] = [];
  for (const r of rendered) {
    const lines = [`# PipelineRun ${r.run.namespace}/${r.run.name} (run id ${r.run.runId})`];
    if (r.sidecars.length === 0) lines.push('# no sidecars apply to this run');
    for (const s of r.sidecars) {
      lines.push(`#   ${s.name}: ${s.host}:${s.port}${s.clientSecretName ? `, client Secret ${s.clientSecretName}` : ''}`);
    }
    for (let i = 0; i < r.manifests.length; i++) {
      const body = YAML.stringify(r.manifests[i], { lineWidth: 0 });
      parts.push(i === 0 ? `${lines.join('\n')}\n${body}` : body);
    }
    if (r.manifests.length === 0) parts.push(`${lines.join('\n')}\n`);
  }
  return parts.join('---\n');
}
