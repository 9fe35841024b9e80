import * as https from 'node:https';
import * as http from 'node:http';
import type { KubeAccess as KubeConfig } from './kube-access';
import { timerDelay } from '../timers';

/**
 * A thin JSON client for the Kubernetes API that sends and receives plain objects.
 *
 * Why not client-node's typed APIs: client-node 1.4 re-serializes typed objects through its
 * ObjectSerializer and silently drops fields it does not model correctly (kubernetes-client/javascript#2825
 * drops NetworkPolicy ingress[].from, which turns isolation into allow-all). Manifests synthesized by
 * our constructs are already plain JSON, so they go to the API server byte for byte.
 */

/** An error answer from the API server, with the fields a caller branches on. */
export class ApiError extends Error {
  constructor(
    /** HTTP status code (404, 409, 422, ...), or 0 for a transport failure. */
    readonly statusCode: number,
    /** The Status reason (NotFound, AlreadyExists, Conflict, Invalid, Forbidden, ...). */
    readonly reason: string,
    message: string,
    /** The Status object the server returned, when it returned one. */
    readonly status?: Record<string, any>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isNotFound(e: unknown): boolean {
  return e instanceof ApiError && e.statusCode === 404;
}
export function isConflict(e: unknown): boolean {
  return e instanceof ApiError && e.statusCode === 409;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  readonly query?: Query;
  readonly body?: unknown;
  /** Content-Type of the body; JSON by default. */
  readonly contentType?: string;
  /** Abort when the connection is silent for this many ms (default 30 s). */
  readonly timeoutMs?: number;
  /**
   * Abort when the whole request (connecting, sending, the answer) takes longer than this many ms
   * (default: no bound beyond timeoutMs). Leader election bounds each Lease update by its renew deadline.
   */
  readonly deadlineMs?: number;
}

/** A JSON client bound to one KubeConfig. Keeps connections alive (an operator talks to one server all day). */
export class RawClient {
  private readonly agentOptions: https.AgentOptions = {};
  private agent?: https.Agent | http.Agent;
  private readonly server: URL;
  /** Number of requests sent; benchmarks report API requests per run from it. */
  requests = 0;

  constructor(readonly kubeConfig: KubeConfig, private readonly maxSockets = 32) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster: set a current-context that names a cluster');
    this.server = new URL(cluster.server);
  }

  async request<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const reqOpts: https.RequestOptions = { method, headers: { Accept: 'application/json' } };
    await this.kubeConfig.applyToHTTPSOptions(reqOpts);
    const isHttps = url.protocol === 'https:';
    if (!this.agent) {
      const base = { keepAlive: true, maxSockets: this.maxSockets };
      this.agent = isHttps
        ? new https.Agent({ ...base, ca: reqOpts.ca, cert: reqOpts.cert, key: reqOpts.key, rejectUnauthorized: reqOpts.rejectUnauthorized })
        : new http.Agent(base);
      Object.assign(this.agentOptions, base);
    }
    const payload = opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    const headers: Record<string, any> = { ...(reqOpts.headers as Record<string, any>) };
    if (payload !== undefined) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = Buffer.byteLength(payload);
    }
    this.requests++;
    const lib = isHttps ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = lib.request(url, { ...reqOpts, agent: this.agent, headers, timeout: opts.timeoutMs ?? 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any = undefined;
          try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = undefined; }
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) return resolve(parsed as T);
          const reason = parsed?.reason ?? http.STATUS_CODES[code] ?? 'Unknown';
          const message = parsed?.message ?? text.slice(0, 500);
          reject(new ApiError(code, reason, `${method} ${url.pathname}: ${code} ${reason}: ${message}`, parsed));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url.pathname}: timed out`)));
      const deadline = opts.deadlineMs === undefined ? undefined
        : setTimeout(() => req.destroy(new Error(`${method} ${url.pathname}: no answer within its deadline of ${opts.deadlineMs} ms`)), timerDelay(opts.deadlineMs));
      if (deadline) req.on('close', () => clearTimeout(deadline));
      req.on('error', (e) => reject(e instanceof ApiError ? e : new ApiError(0, 'TransportError', `${method} ${url.pathname}: ${e.message}`)));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  get<T = any>(path: string, query?: Query): Promise<T> { return this.request<T>('GET', path, { query }); }
  /** GET that answers undefined instead of throwing on 404. */
  async getOrUndefined<T = any>(path: string, query?: Query): Promise<T | undefined> {
    try { return await this.get<T>(path, query); } catch (e) { if (isNotFound(e)) return undefined; throw e; }
  }
  create<T = any>(path: string, body: unknown, query?: Query): Promise<T> { return this.request<T>('POST', path, { body, query }); }
  delete<T = any>(path: string, query?: Query, body?: unknown): Promise<T> { return this.request<T>('DELETE', path, { query, body }); }
  mergePatch<T = any>(path: string, patch: unknown, query?: Query): Promise<T> {
    return this.request<T>('PATCH', path, { body: patch, query, contentType: 'application/merge-patch+json' });
  }
  jsonPatch<T = any>(path: string, ops: unknown[], query?: Query): Promise<T> {
    return this.request<T>('PATCH', path, { body: ops, query, contentType: 'application/json-patch+json' });
  }
  /** Server-side apply of one object (JSON is valid YAML, so the apply content type takes it as is). */
  apply<T = any>(path: string, obj: unknown, fieldManager: string, opts: { force?: boolean; dryRun?: boolean } = {}): Promise<T> {
    return this.request<T>('PATCH', path, {
      body: obj, contentType: 'application/apply-patch+yaml',
      query: { fieldManager, force: opts.force ?? false, dryRun: opts.dryRun ? 'All' : undefined },
    });
  }

  close(): void { this.agent?.destroy(); this.agent = undefined; }
}
