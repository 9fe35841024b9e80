import { ANNOTATIONS, PipelineSidecarResource } from '../constructs/api/spec';

/** The parts of a PipelineRun that decide its sidecars. */
export interface SelectableRun {
  readonly metadata: { readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec?: { readonly pipelineRef?: { readonly name?: string } };
}

/** The parts of a Pipeline that decide its runs' sidecars. */
export interface SelectablePipeline {
  readonly metadata: { readonly annotations?: Record<string, string> };
}

/** Which sidecars a run gets. */
export interface Selection {
  /** PipelineSidecars that apply, sorted and unique. */
  readonly names: string[];
  /** Names the run or Pipeline asked for by annotation with no PipelineSidecar in the namespace (sorted). */
  readonly unknown: string[];
}

/** The comma-separated names of a `pipeline-sidecars.dev/sidecars` annotation. */
export function annotatedSidecars(annotations: Record<string, string> | undefined): string[] {
  const v = annotations?.[ANNOTATIONS.sidecars];
  if (!v) return [];
  return v.split(',').map(s => s.trim()).filter(s => s.length > 0);
}

/**
 * Whether a PipelineSidecar's selector matches a run. Both fields must match when both are set;
 * an empty selector matches nothing, so a sidecar never lands on every run of a namespace by accident.
 */
export function selectorMatches(cr: Pick<PipelineSidecarResource, 'spec'>, run: SelectableRun): boolean {
  const sel = cr.spec.selector;
  if (!sel || (sel.pipelineRef === undefined && sel.matchLabels === undefined)) return false;
  if (sel.pipelineRef !== undefined && sel.pipelineRef !== run.spec?.pipelineRef?.name) return false;
  if (sel.matchLabels !== undefined) {
    const labels = run.metadata.labels ?? {};
    for (const [k, v] of Object.entries(sel.matchLabels)) if (labels[k] !== v) return false;
  }
  return true;
}

/**
 * The sidecars a run asks for: the run's annotation, the referenced Pipeline's annotation, and every
 * PipelineSidecar of the run's namespace whose selector matches. `pipeline` is the cluster-local
 * Pipeline of spec.pipelineRef, when there is one.
 */
export function selectSidecars(run: SelectableRun, pipeline: SelectablePipeline | undefined, sidecarCRs: ReadonlyArray<Pick<PipelineSidecarResource, 'metadata' | 'spec'>>): Selection {
  const ns = run.metadata.namespace;
  const crs = sidecarCRs.filter(cr => ns === undefined || cr.metadata.namespace === undefined || cr.metadata.namespace === ns);
  const known = new Set(crs.map(cr => cr.metadata.name));
  const names = new Set<string>();
  const unknown = new Set<string>();
  for (const n of [...annotatedSidecars(run.metadata.annotations), ...annotatedSidecars(pipeline?.metadata.annotations)]) {
    (known.has(n) ? names : unknown).add(n);
  }
  for (const cr of crs) if (selectorMatches(cr, run)) names.add(cr.metadata.name);
  return { names: [...names].sort(), unknown: [...unknown].sort() };
}
