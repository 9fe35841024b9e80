import { TEKTON_RUN_LABELS } from '../api/tekton-labels';

/**
 * CEL pieces for the admission policies that keep Tekton's run labels Tekton's (BookkeepingPolicy
 * for PipelineRuns, RunLabelGuard for pods, TaskRuns and pod templates). Pure string builders.
 */

/** A CEL list literal of strings. */
export function celList(values: readonly string[]): string {
  return `[${values.map((v) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(', ')}]`;
}

/**
 * CEL: the map at `root.a.b.c`, or `{}` where any step is missing (CEL's `has()` tests only the
 * last step; reading under an absent field is an error, which a policy with failurePolicy Fail
 * would turn into a refusal of objects that carry no labels at all).
 */
export function mapAt(root: string, path: readonly string[]): string {
  const steps = path.map((_, i) => `has(${[root, ...path.slice(0, i + 1)].join('.')})`);
  return `(${steps.join(' && ')} ? ${[root, ...path].join('.')} : {})`;
}

/**
 * CEL: the Tekton run labels of `newLabels` (a CEL map expression) that a request writes: present
 * at CREATE, or added or changed on UPDATE compared with `oldLabels` (`{}` at CREATE). Removing one
 * forges nothing, so it is allowed.
 */
export function changedRunLabels(oldLabels: string, newLabels: string): string {
  return `${celList(TEKTON_RUN_LABELS)}.filter(k, k in ${newLabels} && (!(k in ${oldLabels}) || ${oldLabels}[k] != ${newLabels}[k]))`;
}
