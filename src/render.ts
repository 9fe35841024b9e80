import { createHash } from 'node:crypto';
import * as YAML from 'yaml';
import { ANNOTATIONS, API_VERSION, KIND, PipelineSidecarResource, RunIdentity, SidecarMaterial } from '../constructs/api/spec';
import { MAX_SIDECAR_NAME_LENGTH } from '../constructs/api/crd';
import { KindRegistry, defaultKinds } from '../constructs/kinds';
import { sidecarEndpoints } from '../constructs/endpoints';
import { isDns1035Label, serviceDnsNames } from '../constructs/names';
import { synthesizeRun } from '../constructs/synthesize';
import { admitPipelineRun } from './admission';
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
  /**
   * The PipelineRun as the webhook would admit it (run id, gate, params, workspace); absent in
   * fallback mode (naming runName), where no webhook changes the run.
   */
  readonly admitted?: Record<string, any>;
  /** What the webhook would warn about at CREATE. */
  readonly warnings: string[];
  /** Sidecars that apply, with where tasks reach them. */
  readonly sidecars: Array<{ name: string; host: string; port: number; clientSecretName?: string }>;
  /** Manifests, in apply order. */
  readonly manifests: Array<Record<string, any>>;
}

/** The kinds of document render reads; any other kind is a mistake worth reporting. */
const READ_KINDS = ['PipelineRun', 'Pipeline', KIND];
/** Which file each parsed document came from, for error messages. */
const sources = new WeakMap<object, string>();

/** Every non-empty document of a multi-doc YAML text, with `kind: List` flattened. */
export function parseDocs(text: string, source = 'input'): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0].message}`);
    const v = doc.toJS();
    if (v === null || v === undefined) continue;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error(`${source}: every YAML document must be a Kubernetes object`);
    const items = v.kind === 'List' && Array.isArray(v.items) ? v.items : [v];
    for (const item of items) {
      if (item && typeof item === 'object') sources.set(item, source);
      out.push(item);
    }
  }
  return out;
}

/** Throws on a document render would otherwise skip or misread, naming its file. */
function checkDocs(docs: Array<Record<string, any>>): void {
  for (const d of docs) {
    const src = sources.get(d) ?? 'input';
    const kind = d?.kind;
    if (typeof kind !== 'string' || !READ_KINDS.includes(kind)) {
      const near = typeof kind === 'string' ? READ_KINDS.find((k) => editDistance(k.toLowerCase(), kind.toLowerCase()) <= 2) : undefined;
      throw new Error(`${src}: ${typeof kind === 'string' ? `unknown kind "${kind}"` : 'a document without a kind'}` +
        `${near ? ` (did you mean ${near}?)` : ''}; render reads ${READ_KINDS.join(', ')}: fix the kind or leave the document out`);
    }
    if (kind !== KIND) continue;
    const name = d.metadata?.name;
    if (d.apiVersion !== undefined && d.apiVersion !== API_VERSION) {
      throw new Error(`${src}: PipelineSidecar ${name ?? ''} has apiVersion ${d.apiVersion}: the CRD serves ${API_VERSION}`);
    }
    if (typeof name !== 'string' || !isDns1035Label(name)) {
      throw new Error(`${src}: PipelineSidecar name ${JSON.stringify(name)} must be a DNS-1035 label (lowercase letters, digits and "-", starting with a letter)`);
    }
    if (name.length > MAX_SIDECAR_NAME_LENGTH) {
      throw new Error(`${src}: PipelineSidecar "${name}" is ${name.length} characters long; the CRD allows at most ${MAX_SIDECAR_NAME_LENGTH} ` +
        '(object names are <name>-<run id>-client and must fit in 63): shorten it');
    }
  }
}

/** Levenshtein distance, for "did you mean" on a misspelled kind. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function previewUid(ns: string, name: string): string {
  const h = createHash('sha256').update(`${ns}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * The manifests each PipelineRun among `docs` would get, with no cluster: PipelineSidecars and
 * Pipelines come from `docs` too. In webhook mode the run goes through the webhook's own decision
 * (admitPipelineRun), so the preview shows the run as admitted and is refused where the webhook
 * would refuse it. TLS material is really minted (so the output is a faithful preview, not a
 * template); run ids come from the run-id annotation or, for a preview, from the run's name, so the
 * names are stable between invocations.
 */
export async function renderRuns(docs: Array<Record<string, any>>, opts: RenderOptions = {}): Promise<RenderedRun[]> {
  checkDocs(docs);
  const kinds = opts.kinds ?? defaultKinds();
  const naming = opts.naming ?? 'runId';
  const runs = docs.filter(d => d.kind === 'PipelineRun');
  if (runs.length === 0) throw new Error('no PipelineRun among the documents given: pass the run with -f run.yaml');
  const crs = docs.filter(d => d.kind === KIND) as PipelineSidecarResource[];
  for (const c of crs) {
    if (!kinds.has(c.spec?.kind)) {
      throw new Error(`${sources.get(c) ?? 'input'}: PipelineSidecar ${c.metadata.name} has kind ${JSON.stringify(c.spec?.kind)}, which render does not know ` +
        `(it knows ${kinds.names().join(', ')}): load the module that adds it with --kinds MODULE (docs/custom-kind.md)`);
    }
  }
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
      naming,
    };
    const ref = r.spec?.pipelineRef;
    const pipeline = pipelines.find(p => p.metadata?.name === ref?.name && (p.metadata?.namespace ?? ns) === ns);
    const nsCrs = crs.map(c => ({ ...c, metadata: { ...c.metadata, namespace: c.metadata.namespace ?? ns } })).filter(c => c.metadata.namespace === ns);
    const runInNs = { ...r, metadata: { ...r.metadata, namespace: ns } };
    const sel = selectSidecars(runInNs, pipeline as SelectablePipeline | undefined, nsCrs);
    if (sel.unknown.length > 0) {
      throw new Error(`PipelineRun ${name} asks for sidecars with no PipelineSidecar among the documents: ${sel.unknown.join(', ')}; pass them with -f`);
    }
    let names = sel.names;
    let admitted: Record<string, any> | undefined;
    let warnings: string[] = [];
    if (naming === 'runId') {
      const decision = admitPipelineRun({
        run: runInNs, namespace: ns, pipeline, sidecars: nsCrs, kinds, runId: run.runId,
        pipelineProblem: ref?.name && !ref.resolver && !pipeline ? `Pipeline ${ref.name} was not given to render (pass it with -f)` : undefined,
      });
      if (!decision.allowed) throw new Error(`PipelineRun ${name}: the webhook would refuse it: ${decision.message}`);
      names = decision.sidecars;
      admitted = decision.mutated ?? runInNs;
      warnings = decision.warnings;
    }
    const sidecars = await Promise.all(names.map(async n => {
      const spec = nsCrs.find(c => c.metadata.name === n)!.spec;
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
      admitted,
      warnings,
      sidecars: sidecars.map(s => ({ name: s.name, host: s.ep.host, port: s.ep.port, clientSecretName: s.ep.clientSecretName })),
      manifests,
    });
  }
  return out;
}

const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
/** What a redacted key reads as. Not base64, so applying a redacted preview fails instead of installing a broken key. */
export const REDACTED = '<private key redacted: render --show-secrets prints it>';

/** `m`, or a copy of it whose Secret data that are private keys read REDACTED. */
export function redactPrivateKeys(m: Record<string, any>): Record<string, any> {
  if (m.kind !== 'Secret' || !m.data) return m;
  const keys = Object.keys(m.data).filter(k => PRIVATE_KEY.test(Buffer.from(String(m.data[k]), 'base64').toString('utf8')));
  if (keys.length === 0) return m;
  return { ...m, data: { ...m.data, ...Object.fromEntries(keys.map(k => [k, REDACTED])) } };
}

/**
 * Rendered runs as multi-doc YAML: each run introduced by comments saying where tasks reach its
 * sidecars, then the run as admitted, then its manifests. Private keys are redacted unless
 * `showSecrets`: a preview is pasted into reviews and logs, where a key (even a throwaway one) trips
 * secret scanners and teaches people to ignore them.
 */
export function toYaml(rendered: RenderedRun[], opts: { showSecrets?: boolean } = {}): string {
  const parts: string[] = [];
  for (const r of rendered) {
    const lines = [`# PipelineRun ${r.run.namespace}/${r.run.name} (run id ${r.run.runId})`];
    if (r.sidecars.length === 0) lines.push('# no sidecars apply to this run');
    for (const s of r.sidecars) {
      lines.push(`#   ${s.name}: ${s.host}:${s.port}${s.clientSecretName ? `, client Secret ${s.clientSecretName}` : ''}`);
    }
    for (const w of r.warnings) lines.push(`# warning: ${w}`);
    const docs = [...(r.admitted ? [r.admitted] : []), ...r.manifests.map(m => (opts.showSecrets ? m : redactPrivateKeys(m)))];
    if (r.admitted) lines.push('# the PipelineRun as the webhook admits it, then the objects the operator applies:');
    if (!opts.showSecrets && r.manifests.some(m => redactPrivateKeys(m) !== m)) lines.push('# private keys are redacted; --show-secrets prints them');
    docs.forEach((d, i) => {
      const body = YAML.stringify(d, { lineWidth: 0 });
      parts.push(i === 0 ? `${lines.join('\n')}\n${body}` : body);
    });
    if (docs.length === 0) parts.push(`${lines.join('\n')}\n`);
  }
  return parts.join('---\n');
}
