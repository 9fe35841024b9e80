import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mintRunTlsPooled } from '../../src/tls';
import { setTimeout as sleep } from 'node:timers/promises';

describe('mintRunTlsPooled (pooled CA and client half, per-run server certificate)', () => {
  test('each bundle is a complete per-run chain: server and client signed by its own CA, SANs of the run', async () => {
    const bundles = [];
    for (let i = 0; i < 6; i++) {
      bundles.push(await mintRunTlsPooled({ hosts: [`docker-daemon-run${i}`, `docker-daemon-run${i}.ci.svc`] }));
      await sleep(50); // let the pool refill, so later bundles come from it
    }
    const cas = new Set<string>();
    bundles.forEach((b, i) => {
      const ca = new X509Certificate(b.caCert);
      const server = new X509Certificate(b.serverCert);
      const client = new X509Certificate(b.clientCert);
      expect(ca.ca).toBe(true);
      expect(server.verify(ca.publicKey)).toBe(true);
      expect(client.verify(ca.publicKey)).toBe(true);
      expect(server.checkHost(`docker-daemon-run${i}.ci.svc`)).toBe(`docker-daemon-run${i}.ci.svc`);
      expect(server.checkHost('docker-daemon-other.ci.svc')).toBeUndefined();
      // The keys belong to the certificates.
      expect(createPublicKey(createPrivateKey(b.serverKey)).export({ type: 'spki', format: 'der' }).equals(server.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
      expect(createPublicKey(createPrivateKey(b.clientKey)).export({ type: 'spki', format: 'der' }).equals(client.publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
      cas.add(ca.fingerprint256);
    });
    // A pooled CA signs one run's server certificate only.
    expect(cas.size).toBe(bundles.length);
    // And a server certificate of one run does not verify against another run's CA.
    expect(new X509Certificate(bundles[1].serverCert).verify(new X509Certificate(bundles[0].caCert).publicKey)).toBe(false);
  });

  test('refuses an empty host list', async () => {
    await expect(mintRunTlsPooled({ hosts: [] })).rejects.toThrow(/at least one host/);
  });
});
