import * as http from 'node:http';
import * as https from 'node:https';
import type { KubeAccess as KubeConfig } from './kube-access';
import { timerDelay } from '../timers';
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

export interface WatchOptions {
  /**
   * Give up on a stream that delivers nothing, not even a bookmark, for this long (a half-open
   * connection: the peer vanished without a FIN or RST). Counted from the request too, so a
   * connection that never answers is given up as well. Default: no idle bound.
   */
  readonly idleTimeoutMs?: number;
  /** Give up on the stream after this long whatever it delivers (a bound beyond the server's timeoutSeconds). */
  readonly deadlineMs?: number;
  /** TCP keepalive probes on the socket after this much silence (default 15 s): the kernel notices a dead peer. */
  readonly keepAliveMs?: number;
}

/** A watch given up because nothing arrived for too long (see WatchOptions.idleTimeoutMs). */
export class WatchStalledError extends Error {
  constructor(readonly path: string, readonly silentMs: number, why: string) {
    super(`watch ${path}: ${why}`);
    this.name = 'WatchStalledError';
  }
}

/**
 * A streaming watch over plain JSON (newline-delimited events). Our own, not client-node's Watch,
 * so the objects reach handlers exactly as the server sent them and the stream's end is always
 * reported (never a silent stall): `done` resolves on every way a stream can finish, including a
 * stream that goes quiet for longer than the idle timeout.
 */
export async function startWatch(kc: KubeConfig, path: string, query: Record<string, string | number | boolean | undefined>, onEvent: (e: WatchEvent) => void, wopts: WatchOptions = {}): Promise<WatchHandle> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(path, cluster.server);
  for (const [k, v] of Object.entries({ ...query, watch: true })) if (v !== undefined) url.searchParams.set(k, String(v));
  const opts: https.RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const lib = url.protocol === 'https:' ? https : http;
  let req: http.ClientRequest | undefined;
  let finish!: (e: Error | undefined) => void;
  const timers: NodeJS.Timeout[] = [];
  let idle: NodeJS.Timeout | undefined;
  let lastByte = Date.now();
  let settled = false;
  const done = new Promise<Error | undefined>((resolve) => {
    finish = (e) => {
      if (settled) return;
      settled = true;
      if (idle) clearTimeout(idle);
      timers.forEach(clearTimeout);
      resolve(e);
    };
  });
  const giveUp = (why: string) => { finish(new WatchStalledError(url.pathname, Date.now() - lastByte, why)); req?.destroy(); };
  // Re-armed on every chunk: bookmarks (allowWatchBookmarks) keep a healthy but quiet stream alive.
  const touch = () => {
    lastByte = Date.now();
    if (settled || wopts.idleTimeoutMs === undefined) return;
    if (idle) idle.refresh();
    else { idle = setTimeout(() => giveUp(`nothing received for ${wopts.idleTimeoutMs} ms, not even a bookmark: connection presumed dead`), timerDelay(wopts.idleTimeoutMs)); idle.unref?.(); }
  };
  if (wopts.deadlineMs !== undefined) {
    const t = setTimeout(() => giveUp(`still open after its deadline of ${wopts.deadlineMs} ms`), timerDelay(wopts.deadlineMs));
    t.unref?.();
    timers.push(t);
  }
  touch();
  req = lib.request(url, { ...opts, agent: false }, (res) => {
    touch();
    if ((res.statusCode ?? 0) >= 300) {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => { touch(); chunks.push(c); });
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
      touch();
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
  // The kernel probes a silent connection and resets it when the peer is gone (a crashed node, a
  // dropped NAT entry); the idle timeout covers what keepalive cannot see (a peer that ACKs but sends nothing).
  req.on('socket', (s) => s.setKeepAlive(true, wopts.keepAliveMs ?? 15_000));
  req.on('error', (e) => finish(e));
  req.end();
  return { done, abort: () => { finish(undefined); req?.destroy(); } };
}
