import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as x509 from '@peculiar/x509';

/**
 * The control plane's client CA (--client-ca-file) and the client certificates it signs: the real
 * node's kubelet authenticates as system:node:<name> in system:nodes, so the API server's Node
 * authorizer and NodeRestriction hold it to its own Node and pods, as in a real cluster.
 */
x509.cryptoProvider.set(webcrypto as any);
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface ClientCa { readonly certFile: string; readonly keyFile: string }

function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY') + '\n';
}

/** Writes a new client CA (certificate and key) into `dir`. */
export async function writeClientCa(dir: string): Promise<ClientCa> {
  const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: 'CN=pipeline-sidecars test client CA',
    notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + 30 * 86_400_000),
    keys: keys as any, signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as any),
    ],
  });
  const certFile = path.join(dir, 'client-ca.crt');
  const keyFile = path.join(dir, 'client-ca.key');
  fs.writeFileSync(certFile, ca.toString('pem') + '\n');
  fs.writeFileSync(keyFile, await keyPem(keys.privateKey), { mode: 0o600 });
  return { certFile, keyFile };
}

/** A client certificate for user `cn` in `groups` (the subject's O), signed by `ca`, written as `<prefix>.crt/.key`. */
export async function writeClientCert(ca: ClientCa, prefix: string, cn: string, groups: string[]): Promise<{ certFile: string; keyFile: string }> {
  const caCert = new x509.X509Certificate(fs.readFileSync(ca.certFile, 'utf8'));
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decode(fs.readFileSync(ca.keyFile, 'utf8'))[0], EC_KEY, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
  const now = Date.now();
  const subject = [`CN=${cn}`, ...groups.map((g) => `O=${g}`)].join(', ');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(), subject, issuer: caCert.subject,
    notBefore: new Date(now - 5 * 60_000), notAfter: new Date(now + 7 * 86_400_000),
    publicKey: keys.publicKey as any, signingKey: caKey as any, signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  const certFile = `${prefix}.crt`;
  const keyFile = `${prefix}.key`;
  fs.writeFileSync(certFile, cert.toString('pem') + '\n');
  fs.writeFileSync(keyFile, await keyPem(keys.privateKey), { mode: 0o600 });
  return { certFile, keyFile };
}
