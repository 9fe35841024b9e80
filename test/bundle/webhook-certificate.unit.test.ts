import { installBundleObjects } from '../../constructs/bundle/main';

const hours = (d: string) => Number(/^(\d+)h$/.exec(d)![1]);

test('cert-manager: the serving certificate is signed by a long-lived CA, and caBundle is injected from it', () => {
  const objs = installBundleObjects({ certManager: true });
  const certs = objs.filter((o) => o.kind === 'Certificate');
  const issuers = objs.filter((o) => o.kind === 'Issuer');
  const serving = certs.find((c) => c.spec.secretName === 'pipeline-sidecars-webhook-tls')!;
  // The serving certificate's issuer is a CA Issuer, not the self-signed one (whose every renewal would be a new CA).
  const servingIssuer = issuers.find((i) => i.metadata.name === serving.spec.issuerRef.name)!;
  expect(servingIssuer.spec.ca).toBeDefined();
  const ca = certs.find((c) => c.spec.secretName === servingIssuer.spec.ca.secretName)!;
  expect(ca.spec.isCA).toBe(true);
  expect(issuers.find((i) => i.metadata.name === ca.spec.issuerRef.name)!.spec).toEqual({ selfSigned: {} });
  // The CA outlives many serving certificates and keeps its key across its own renewals.
  expect(hours(ca.spec.duration) - hours(ca.spec.renewBefore)).toBeGreaterThan(5 * hours(serving.spec.duration));
  expect(ca.spec.privateKey.rotationPolicy).toBe('Never');
  // caBundle comes from the serving Certificate's Secret, whose ca.crt is that CA.
  const mwc = objs.find((o) => o.kind === 'MutatingWebhookConfiguration')!;
  expect(mwc.metadata.annotations['cert-manager.io/inject-ca-from']).toBe(`${serving.metadata.namespace}/${serving.metadata.name}`);
  // Every cert-manager object lands before the operator needs its Secret.
  for (const o of [...certs, ...issuers]) expect(o.metadata.annotations['argocd.argoproj.io/sync-wave']).toBe('-1');
});
