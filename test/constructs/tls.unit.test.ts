import 'reflect-metadata';
import { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { TlsBundle } from '../../constructs';
import { serviceDnsNames } from '../../constructs/names';
import { mintRunTls, randomPassword } from '../../src/tls';

const HOSTS = serviceDnsNames('docker-k3x9q2ab', 'ci');

interface Outcome { readonly ok: boolean; readonly reply?: string; readonly error?: string }

/** Connects, sends "ping", and reports whether an authenticated "pong" came back. */
function attempt(port: number, opts: tls.ConnectionOptions): Promise<Outcome> {
  return new Promise(resolve => {
    let data = '';
    const sock = tls.connect({ host: '127.0.0.1', port, ...opts }, () => sock.write('ping\n'));
    sock.setEncoding('utf8');
    sock.on('data', d => {
      data += d;
      if (data.includes('\n')) { sock.end(); resolve({ ok: true, reply: data.trim() }); }
    });
    sock.on('error', e => resolve({ ok: false, error: e.message }));
    sock.on('close', () => resolve({ ok: data.includes('pong'), reply: data, error: data ? undefined : 'closed without reply' }));
  });
}

describe('mintRunTls + mutual TLS', () => {
  let bundle: TlsBundle;
  let server: tls.Server;
  let port: number;
  const serverSaw: string[] = [];

  beforeAll(async () => {
    bundle = await mintRunTls({ hosts: HOSTS });
    server = tls.createServer({ cert: bundle.serverCert, key: bundle.serverKey, ca: bundle.caCert, requestCert: true, rejectUnauthorized: true }, s => {
      serverSaw.push(String(s.getPeerCertificate().subject?.CN ?? ''));
      s.setEncoding('utf8');
      s.on('data', () => s.write(s.authorized ? 'pong\n' : 'unauthorized\n'));
      s.on('error', () => undefined);
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>(r => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>(r => server.close(() => r())));

  test('a client with the run\'s client certificate gets through, verifying the server name', async () => {
    const out = await attempt(port, { ca: bundle.caCert, cert: bundle.clientCert, key: bundle.clientKey, servername: 'docker-k3x9q2ab.ci.svc' });
    expect(out).toEqual({ ok: true, reply: 'pong' });
    expect(serverSaw).toContain('pipeline-sidecars client');
  });

  test('a client without a certificate is refused', async () => {
    const out = await attempt(port, { ca: bundle.caCert, servername: 'docker-k3x9q2ab.ci.svc' });
    expect(out.ok).toBe(false);
    expect(out.reply ?? '').not.toContain('pong');
  });

  test('a client certificate from another run\'s CA is refused', async () => {
    const other = await mintRunTls({ hosts: HOSTS });
    const out = await attempt(port, { ca: bundle.caCert, cert: other.clientCert, key: other.clientKey, servername: 'docker-k3x9q2ab.ci.svc' });
    expect(out.ok).toBe(false);
  });

  test('the client refuses a name the server certificate does not cover', async () => {
    const out = await attempt(port, { ca: bundle.caCert, cert: bundle.clientCert, key: bundle.clientKey, servername: 'postgres-k3x9q2ab.ci.svc' });
    expect(out.ok).toBe(false);
    expect(out.error).toMatch(/altnames|does not match/i);
  });

  test('certificates: ECDSA P-256, server SANs are the Service DNS names, CA is a CA, leaves are not', () => {
    const ca = new X509Certificate(bundle.caCert);
    const srv = new X509Certificate(bundle.serverCert);
    const cli = new X509Certificate(bundle.clientCert);
    expect(ca.ca).toBe(true);
    expect(srv.ca).toBe(false);
    expect(srv.checkIssued(ca)).toBe(true);
    expect(cli.checkIssued(ca)).toBe(true);
    expect(srv.verify(ca.publicKey)).toBe(true);
    expect(srv.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(srv.subjectAltName).toBe(HOSTS.map(h => `DNS:${h}`).join(', '));
    for (const h of HOSTS) expect(srv.checkHost(h)).toBe(h);
    expect(cli.subjectAltName).toBeUndefined();
    expect(srv.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
    expect(cli.keyUsage).toContain('1.3.6.1.5.5.7.3.2');
  });

  test('validity is what was asked, back-dated a little for clock skew', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const b = await mintRunTls({ hosts: ['x'], validityDays: 2, now });
    const c = new X509Certificate(b.serverCert);
    expect(new Date(c.validTo).getTime() - now.getTime()).toBe(2 * 86_400_000);
    expect(now.getTime() - new Date(c.validFrom).getTime()).toBe(5 * 60_000);
  });

  test('every bundle has fresh keys', async () => {
    const b = await mintRunTls({ hosts: HOSTS });
    expect(b.serverKey).not.toBe(bundle.serverKey);
    expect(b.caCert).not.toBe(bundle.caCert);
  });

  test('randomPassword: 24 random bytes, URL-safe', () => {
    const a = randomPassword();
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(randomPassword()).not.toBe(a);
  });

  test('no hosts is a caller error', async () => {
    await expect(mintRunTls({ hosts: [] })).rejects.toThrow(/at least one host/);
  });
});
