import type { IncomingMessage } from 'node:http';

/**
 * Reading an AdmissionReview off the wire, defensively: the webhook's port is reachable by more than
 * the API server, and a review that is not what the API server sends must cost a 4xx, never a 500
 * or the process.
 */

/** The API server refuses request bodies over 3 MiB; no genuine review is larger. */
export const MAX_REVIEW_BYTES = 3 * 1024 * 1024;

/** The request of an admission.k8s.io/v1 AdmissionReview, as far as the webhook reads it. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind?: { readonly group?: unknown; readonly version?: unknown; readonly kind?: unknown };
  readonly resource?: { readonly group?: unknown; readonly version?: unknown; readonly resource?: unknown };
  readonly operation?: unknown;
  readonly namespace?: unknown;
  readonly object?: any;
  readonly userInfo?: { readonly username?: unknown };
}

export function isObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The body, at most `limit` bytes: 'too-large' as soon as it is known to be more (Content-Length or counted). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too-large' | 'aborted'> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) { req.resume(); return Promise.resolve('too-large'); }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (v: Buffer | 'too-large' | 'aborted') => { if (!done) { done = true; resolve(v); } };
    req.on('data', (c: Buffer) => {
      if (done) return; // over the limit: drain and drop the rest, so the 413 gets out
      size += c.length;
      if (size > limit) { chunks.length = 0; finish('too-large'); return; }
      chunks.push(c);
    });
    req.on('end', () => finish(Buffer.concat(chunks)));
    req.on('error', () => finish('aborted'));
    req.on('close', () => finish('aborted'));
  });
}

/** The review's request, or why the body is not an admission.k8s.io/v1 AdmissionReview with one. */
export function parseAdmissionReview(body: Buffer): { request: AdmissionRequest } | { problem: string } {
  let review: unknown;
  try {
    review = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return { problem: e instanceof RangeError ? 'body is nested too deeply' : 'body is not JSON (expected an admission.k8s.io/v1 AdmissionReview)' };
  }
  if (!isObject(review)) return { problem: 'body is not a JSON object (expected an admission.k8s.io/v1 AdmissionReview)' };
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
    return { problem: `body is ${String(review.apiVersion)} ${String(review.kind)}, not admission.k8s.io/v1 AdmissionReview (admissionReviewVersions is [v1])` };
  }
  const request = review.request;
  if (!isObject(request)) return { problem: 'AdmissionReview without request' };
  if (typeof request.uid !== 'string' || request.uid === '' || request.uid.length > 256) return { problem: 'AdmissionReview without a request.uid string' };
  return { request: request as AdmissionRequest };
}

/**
 * Whether the request is a CREATE of a tekton.dev/v1 PipelineRun, by both kind and resource. The
 * configuration asks for v1 only (the API server converts other versions, matchPolicy Equivalent),
 * and the patch is written for v1's shape.
 */
export function isPipelineRunCreate(request: AdmissionRequest): boolean {
  return request.operation === 'CREATE'
    && isObject(request.kind) && request.kind.group === 'tekton.dev' && request.kind.version === 'v1' && request.kind.kind === 'PipelineRun'
    && isObject(request.resource) && request.resource.group === 'tekton.dev' && request.resource.resource === 'pipelineruns';
}
