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

/**
 * The webhook serving certificate issued by cert-manager (a self-signed Issuer in the operator's
 * namespace), for installs that prefer cert-manager over the operator's own CA. The webhook
 * configuration then carries `cert-manager.io/inject-ca-from: <namespace>/<name>`.
 */
export class WebhookCertificate extends Construct {
  /** Value for the inject-ca-from annotation. */
  readonly injectCaFrom: string;

  constructor(scope: Construct, id: string, props: WebhookCertificateProps) {
    super(scope, id);
    const issuer = `${props.name}-selfsigned`;
    this.injectCaFrom = `${props.namespace}/${props.name}`;
    syncWave(new ApiObject(this, 'Issuer', {
      apiVersion: 'cert-manager.io/v1', kind: 'Issuer',
      metadata: { name: issuer, namespace: props.namespace },
      spec: { selfSigned: {} },
    } as any), SYNC_WAVES.rbac);
    const svc = `${props.serviceName}.${props.namespace}.svc`;
    syncWave(new ApiObject(this, 'Certificate', {
      apiVersion: 'cert-manager.io/v1', kind: 'Certificate',
      metadata: { name: props.name, namespace: props.namespace },
      spec: {
        secretName: props.secretName,
        dnsNames: [svc, `${svc}.cluster.local`],
        issuerRef: { kind: 'Issuer', name: issuer },
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
        duration: '8760h',
        renewBefore: '720h',
      },
    } as any), SYNC_WAVES.rbac);
  }
}
