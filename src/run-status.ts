import { ANNOTATIONS } from '../constructs/api/spec';
import type { KubeObject } from './k8s/object-store';
import { ApiError, RawClient } from './k8s/raw';
import { objectPath } from './k8s/resources';
import { CANCELLED, CANCELLED_ANNOTATION, PENDING, PipelineRun } from './pipelinerun';

/**
 * The only spec write the operator makes: take a pending run out of pending (`start`) or cancel it,
 * with an annotation saying when. Guarded by a JSON Patch `test` on spec.status: if the run is no
 * longer pending (another replica, an earlier life of this process, or its owner got there first)
 * the patch fails and nothing changes, so a run is started or cancelled at most once.
 *
 * Returns the run as the API server stored it, or undefined when the guard failed (422) or the run
 * is gone (404).
 */
export async function setRunStatus(client: RawClient, run: PipelineRun, to: 'start' | 'cancel', now: number, annotations: Record<string, string> = {}): Promise<KubeObject | undefined> {
  const ann = run.metadata.annotations;
  const stamp = new Date(now).toISOString();
  const annotation = to === 'start' ? ANNOTATIONS.started : CANCELLED_ANNOTATION;
  const annKey = annotation.replace(/\//g, '~1');
  const ops: unknown[] = [
    { op: 'test', path: '/spec/status', value: PENDING },
    to === 'start' ? { op: 'remove', path: '/spec/status' } : { op: 'replace', path: '/spec/status', value: CANCELLED },
    ann ? { op: 'add', path: `/metadata/annotations/${annKey}`, value: stamp } : { op: 'add', path: '/metadata/annotations', value: { [annotation]: stamp } },
    ...Object.entries(annotations).map(([k, v]) => ({ op: 'add', path: `/metadata/annotations/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`, value: v })),
  ];
  try {
    return await client.jsonPatch(objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: run.metadata }), ops);
  } catch (e) {
    if (e instanceof ApiError && (e.statusCode === 422 || e.statusCode === 404)) return undefined;
    throw e;
  }
}
