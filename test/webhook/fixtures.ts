import * as https from 'node:https';
import * as tls from 'node:tls';
import { defaultKinds } from '../../constructs/kinds';
import { WEBHOOK_PATH } from '../../constructs/api/webhook-config';
import { createLogger, Logger } from '../../src/log';
import { WebhookOptions, WebhookServer } from '../../src/webhook';
import { rawClient } from '../../platform/cluster';

/** Log lines of in-process webhook servers, kept for assertions (a crash or an error line shows up here). */
export function collectingLogger(lines: string[] = []): { log: Logger; lines: string[] } {
  return { log: createLogger({ level: 'debug', write: (l) => lines.push(l) }), lines };
}

/** A WebhookServer on 127.0.0.1 (any port), its certificate in Secret `secretName` of `namespace`; not registered. */
export function webhookServer(namespace: string, extra: Partial<WebhookOptions> = {}, log: Logger = collectingLogger().log): WebhookServer {
  return new WebhookServer(rawClient(), namespace, {
    port: 0, bindAddress: '127.0.0.1', certHosts: ['127.0.0.1'], configName: `ps-${namespace}`, url: `https://127.0.0.1:{port}${WEBHOOK_PATH}`, ...extra,
  }, defaultKinds(), log, undefined, [namespace]);
}

export interface RawResponse { readonly status: number; readonly body: string; readonly json?: any }

/** POSTs `body` as is (string, Buffer or undefined) to the webhook, trusting `ca`. */
export function postRaw(port: number, ca: string | string[], body?: string | Buffer, opts: { method?: string; path?: string; headers?: Record<string, string | number> } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, method: opts.method ?? 'POST', path: opts.path ?? WEBHOOK_PATH, ca, servername: undefined,
      headers: { 'Content-Type': 'application/json', ...(opts.headers ?? {}) },
      agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, body: text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The certificate a TLS server on 127.0.0.1:`port` serves, and whether a client trusting `ca` accepts it (chain and IP SAN). */
export function servedCertificate(port: number, ca: string[]): Promise<{ fingerprint: string; authorized: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      let error = socket.authorizationError ? String(socket.authorizationError) : undefined;
      if (!error) {
        const hostError = tls.checkServerIdentity('127.0.0.1', cert);
        if (hostError) error = hostError.message;
      }
      resolve({ fingerprint: cert.fingerprint256, authorized: !error, error });
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** The PEM certificates of a PEM bundle, one string each. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}
