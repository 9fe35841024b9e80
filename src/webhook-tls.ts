import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/**
 * The webhook's serving CA and certificate. Kept apart from the per-run material in tls.ts: this one
 * is long-lived, shared by replicas through a Secret, and its CA goes into the webhook
 * configuration's caBundle.
 */

export interface WebhookTls {
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
  /** DNS names and IPs the serving certificate covers. */
  readonly hosts: string[];
  /** Expiry of the serving certificate. */
  readonly notAfter: Date;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
// The tsconfig has no DOM lib, so WebCrypto types are not global: go through `any` at this one edge.
const crypto = webcrypto as any;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function toPem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** A CA that signs serving certificates: its certificate and PKCS#8 private key, both PEM. */
export interface WebhookCa {
  readonly caCert: string;
  readonly caKey: string;
}

/** Mints a self-signed CA valid `validityMs` from now. */
export async function mintWebhookCa(validityMs: number): Promise<WebhookCa> {
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(Date.now() + validityMs);
  const caKeys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as any;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=pipeline-sidecars webhook CA', keys: caKeys, notBefore, notAfter, signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
    ],
  }, crypto);
  return { caCert: ca.toString('pem') + '\n', caKey: toPem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', caKeys.privateKey)) };
}

function fromPem(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/**
 * Mints a serving certificate for `hosts` (DNS names or IPv4 addresses) signed by `ca`, valid
 * `validityMs` from now, but never past the CA.
 */
export async function mintServingCert(ca: WebhookCa, hosts: string[], validityMs: number): Promise<WebhookTls> {
  if (hosts.length === 0) throw new Error('mintServingCert: at least one host is needed');
  const caCert = new x509.X509Certificate(ca.caCert);
  const caPrivate = await crypto.subtle.importKey('pkcs8', fromPem(ca.caKey), ALG, false, ['sign']);
  const caPublic = await caCert.publicKey.export(ALG, ['verify'], crypto);
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const notAfter = new Date(Math.min(Date.now() + validityMs, caCert.notAfter.getTime()));
  const keys = await crypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as any;
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${hosts[0]}`, issuer: caCert.subject, publicKey: keys.publicKey, signingKey: caPrivate,
    notBefore, notAfter, signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(hosts.map((h) => (IPV4.test(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h })), false),
      await x509.AuthorityKeyIdentifierExtension.create(caPublic, false, crypto),
    ],
  }, crypto);
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { caCert: ca.caCert, cert: cert.toString('pem') + '\n', key: toPem('PRIVATE KEY', pkcs8), hosts: [...hosts], notAfter };
}

/** Mints a CA and a serving certificate for `hosts`, both valid `days` days. */
export async function mintWebhookTls(hosts: string[], days = 365): Promise<WebhookTls> {
  if (hosts.length === 0) throw new Error('mintWebhookTls: at least one host is needed');
  return mintServingCert(await mintWebhookCa(days * 86_400_000), hosts, days * 86_400_000);
}

/** Expiry of a PEM certificate (to decide whether a stored one must be replaced). */
export function certificateNotAfter(pem: string): Date {
  return new x509.X509Certificate(pem).notAfter;
}

/** Whether a PEM certificate is still valid `marginMs` from now (false for anything unreadable). */
export function validFor(pem: string | undefined, marginMs = 0): boolean {
  if (!pem) return false;
  try { return certificateNotAfter(pem).getTime() - Date.now() > marginMs; } catch { return false; }
}

/** Whether `cert` was signed by the CA `caCert` (checked cryptographically, not by name). */
export async function signedBy(cert: string, caCert: string): Promise<boolean> {
  try {
    return await new x509.X509Certificate(cert).verify({ publicKey: new x509.X509Certificate(caCert), signatureOnly: true }, crypto);
  } catch {
    return false;
  }
}
