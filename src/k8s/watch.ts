import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiError } from './raw';

/** One decoded watch event. */
export interface WatchEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: Record<string, any>;
}

export interface WatchHandle {
  /** Resolves when the stream ends: undefined on a clean end (server timeout), an Error otherwise. */
  readonly done: Promise<Error | undefined>;
  abort(): void;
}

/**
 * A streaming watch over plain JSON (newline-delimited events). Our own, not client-node's Watch,
 * so the objects reach handlers exactly as the server sent them and the stream's end is always
 * reported (never a silent stall): `done` resolves on every way a stream can finish.
 */
export async function startWatch(kc: KubeConfig, path: string, query: Record<string, string | number | boolean | undefined>, onEvent: (e: WatchEvent) => void): Promise<WatchHandle> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(path, cluster.server);
  for (const [k, v] of Object.entries({ ...query, watch: true })) if (v !== undefined) url.searchParams.set(k, String(v));
  const opts: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const lib = url.protocol === 'https:' ? https : http;
  let req: http.ClientRequest | undefined;
  let finish!: (e: Error | undefined) => void;
  const done = new Promise<Error | undefined>((resolve) => { let settled = false; finish = (e) => { if (!settled) { settled = true; resolve(e); } }; });
  req = lib.request(url, { ...opts, agent: false }, (res) => {
    if ((res.statusCode ?? 0) >= 300) {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any; try { body = JSON.parse(text); } catch { body = undefined; }
        finish(new ApiError(res.statusCode ?? 0, body?.reason ?? 'WatchFailed', `watch ${url.pathname}: ${res.statusCode} ${body?.message ?? text.slice(0, 300)}`, body));
      });
      res.on('error', (e) => finish(e));
      return;
    }
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let ev: WatchEvent;
        try { ev = JSON.parse(line); } catch { finish(new Error(`watch ${url.pathname}: undecodable event`)); req?.destroy(); return; }
        try { onEvent(ev); } catch (e) { finish(e instanceof Error ? e : new Error(String(e))); req?.destroy(); return; }
      }
    });
    res.on('end', () => finish(undefined));
    res.on('error', (e) => finish(e));
    res.on('close', () => finish(undefined));
  });
  req.on('error', (e) => finish(e));
  req.end();
  return { done, abort: () => { finish(undefined); req?.destroy(); } };
}
