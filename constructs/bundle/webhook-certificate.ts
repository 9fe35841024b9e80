import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { SYNC_WAVES, syncWave } from './sync-wave';

/** The annotation cert-manager's CA injector reads on a webhook configuration. */
export const INJECT_CA_FROM = 'cert-manager.io/inject-ca-from';

/** Props of WebhookCertificate. */
export interface WebhookCertificateProps {
  /** Name of the Certificate (the Issuer gets `<name>-selfsigned`). */
  readonly name: string;
  /** The operator's namespace. */
  readonly namespace: string;
  /** Secret cert-manager writes (tls.crt, tls.key, ca.crt): the one the operator serves from. */
  readonly secretName: string;
  /** The webhook Service; its in-cluster DNS names go into the certificate. */
  readonly serviceName: string;
}

/** Lifetimes of the cert-manager chain: the CA outlives many serving certificates. */
export const CERT_MANAGER_DURATIONS = {
  ca: { duration: '87600h', renewBefore: '8760h' },
  serving: { duration: '8760h', renewBefore: '720h' },
} as const;

/**
 * The webhook serving certificate issued by cert-manager, for installs that prefer cert-manager over
 * the operator's own CA: a self-signed Issuer signs a long-lived CA (`<name>-ca`), a CA Issuer of
 * that CA signs the serving certificate. The webhook configuration carries
 * `cert-manager.io/inject-ca-from: <namespace>/<name>`, so caBundle is the CA, not the serving
 * certificate: renewing the serving certificate (yearly) leaves caBundle alone, and a replica that
 * has not reloaded yet stays trusted. The CA keeps its key when cert-manager renews it
 * (rotationPolicy Never), so serving certificates it signed before still verify under the renewed CA.
 */
export class WebhookCertificate extends Construct {
  /** Value for the inject-ca-from annotation. */
  readonly injectCaFrom: string;

  constructor(scope: Construct, id: string, props: WebhookCertificateProps) {
    super(scope, id);
    const selfSigned = `${props.name}-selfsigned`;
    const ca = `${props.name}-ca`;
    this.injectCaFrom = `${props.namespace}/${props.name}`;
    const object = (cid: string, kind: string, name: string, spec: Record<string, unknown>) => syncWave(new ApiObject(this, cid, {
      apiVersion: 'cert-manager.io/v1', kind, metadata: { name, namespace: props.namespace }, spec,
    } as any), SYNC_WAVES.rbac);
    object('Issuer', 'Issuer', selfSigned, { selfSigned: {} });
    object('CaCertificate', 'Certificate', ca, {
      isCA: true, commonName: `${props.name} webhook CA`, secretName: ca,
      issuerRef: { kind: 'Issuer', name: selfSigned },
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Never' },
      ...CERT_MANAGER_DURATIONS.ca,
    });
    object('CaIssuer', 'Issuer', ca, { ca: { secretName: ca } });
    const svc = `${props.serviceName}.${props.namespace}.svc`;
    object('Certificate', 'Certificate', props.name, {
      secretName: props.secretName,
      dnsNames: [svc, `${svc}.cluster.local`],
      issuerRef: { kind: 'Issuer', name: ca },
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      ...CERT_MANAGER_DURATIONS.serving,
    });
  }
}
