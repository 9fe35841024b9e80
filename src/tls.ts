import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { TlsBundle } from '../constructs/api/spec';

// WebCrypto from Node itself: no polyfill, and ECDSA P-256 key generation + signing is ~30 ms per
// bundle (RSA-2048 would be ~800 ms, on the reconcile path of every run).
const crypto = webcrypto;
x509.cryptoProvider.set(crypto as any);
// The tsconfig has no DOM lib: take the WebCrypto types from node:crypto.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const EC_KEY: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** Options of mintRunTls. */
export interface MintTlsOptions {
  /** DNS names of the sidecar Service (svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local): the server SANs. */
  readonly hosts: string[];
  /** Validity of all three certificates in days (default 7: a run's lifetime plus margin). */
  readonly validityDays?: number;
  /** Common name of the CA (default pipeline-sidecars run CA). */
  readonly caName?: string;
  /** Now, for tests (default the current time). */
  readonly now?: Date;
}

function serial(): string {
  // Positive (high bit clear) 16-byte serial, as RFC 5280 asks.
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

async function keyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function cnEscape(s: string): string {
  return s.replace(/([,+"\\<>;=])/g, '\\$1');
}

/** The run-independent half of a bundle: the CA (key kept only until the server cert is signed) and the client cert. */
interface CaParts {
  readonly caKeys: CryptoKeyPair;
  readonly ca: x509.X509Certificate;
  readonly aki: x509.AuthorityKeyIdentifierExtension;
  readonly client: x509.X509Certificate;
  readonly clientKey: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly mintedAt: number;
}

/**
 * Mints a per-run CA, a server certificate for `hosts` and a client certificate, all signed by the
 * CA. The CA key is discarded: nothing can issue more certs for this run afterwards.
 */
export async function mintRunTls(opts: MintTlsOptions): Promise<TlsBundle> {
  if (opts.hosts.length === 0) throw new Error('mintRunTls: give at least one host (the sidecar Service DNS names)');
  return serverBundle(await caParts(opts), opts.hosts);
}

async function caParts(opts: Omit<MintTlsOptions, 'hosts'>): Promise<CaParts> {
  const now = opts.now ?? new Date();
  // Back-dated a little so a node with a slightly slow clock does not see "not yet valid".
  const notBefore = new Date(now.getTime() - 5 * 60_000);
  const notAfter = new Date(now.getTime() + (opts.validityDays ?? 7) * 86_400_000);
  const [caKeys, clientKeys] = await Promise.all([keyPair(), keyPair()]);

  const caName = `CN=${cnEscape(opts.caName ?? 'pipeline-sidecars run CA')}`;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: caName,
    notBefore,
    notAfter,
    keys: caKeys as any,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const aki = await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey);

  const client = await leafCert(caKeys, ca, aki, notBefore, notAfter, 'pipeline-sidecars client', clientKeys, x509.ExtendedKeyUsage.clientAuth);
  return { caKeys, ca, aki, client, clientKey: await keyPem(clientKeys.privateKey), notBefore, notAfter, mintedAt: Date.now() };
}

function leafCert(caKeys: CryptoKeyPair, ca: x509.X509Certificate, aki: x509.AuthorityKeyIdentifierExtension, notBefore: Date, notAfter: Date,
  cn: string, keys: CryptoKeyPair, usage: x509.ExtendedKeyUsage, san?: x509.SubjectAlternativeNameExtension): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${cnEscape(cn)}`,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([usage], false),
        aki,
        ...(san ? [san] : []),
      ],
    });
}

/** Signs the run's server certificate for `hosts` with the CA of `parts`; the CA key goes out of reach after. */
async function serverBundle(parts: CaParts, hosts: string[]): Promise<TlsBundle> {
  const serverKeys = await keyPair();
  const san = new x509.SubjectAlternativeNameExtension(hosts.map(h => ({ type: 'dns' as const, value: h })), false);
  const server = await leafCert(parts.caKeys, parts.ca, parts.aki, parts.notBefore, parts.notAfter, hosts[0].slice(0, 64), serverKeys, x509.ExtendedKeyUsage.serverAuth, san);
  return {
    caCert: parts.ca.toString('pem') + '\n',
    serverCert: server.toString('pem') + '\n',
    serverKey: (await keyPem(serverKeys.privateKey)) + '\n',
    clientCert: parts.client.toString('pem') + '\n',
    clientKey: parts.clientKey + '\n',
  };
}

/**
 * mintRunTls for the reconciler: the run-independent half (CA and client certificate, two thirds
 * of the work) comes from a small pool minted in the background after each use, so only the server
 * certificate (it names the run's Service) is signed on the provisioning path (~23 ms → ~8 ms per
 * run on the benchmark machine, docs/benchmarks.md). Each pooled CA signs exactly one server
 * certificate and is dropped; entries older than 10 minutes are not used.
 */
export async function mintRunTlsPooled(opts: { hosts: string[] }): Promise<TlsBundle> {
  if (opts.hosts.length === 0) throw new Error('mintRunTls: give at least one host (the sidecar Service DNS names)');
  let parts: CaParts | undefined;
  while (!parts && caPool.length > 0) {
    const p = await caPool.shift()!.catch(() => undefined);
    if (p && Date.now() - p.mintedAt < CA_POOL_MAX_AGE_MS) parts = p;
  }
  refillCaPool();
  return serverBundle(parts ?? await caParts({}), opts.hosts);
}

const CA_POOL_SIZE = 4;
const CA_POOL_MAX_AGE_MS = 10 * 60_000;
const caPool: Array<Promise<CaParts>> = [];
let refilling = false;
function refillCaPool(): void {
  if (refilling) return;
  refilling = true;
  // One at a time, after the current work (setImmediate), so a burst of runs is not slowed by refills.
  const next = () => {
    if (caPool.length >= CA_POOL_SIZE) { refilling = false; return; }
    const p = caParts({});
    caPool.push(p);
    p.then(() => setImmediate(next), () => setImmediate(next));
  };
  setImmediate(next);
}

/** A random password of `bytes` bytes of entropy, URL- and shell-safe (base64url). */
export function randomPassword(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}
