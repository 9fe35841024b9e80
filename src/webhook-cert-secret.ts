import { ApiError, RawClient, isConflict } from './k8s/raw';
import { collectionPath, objectPath } from './k8s/resources';
import type { Logger } from './log';
import { mintServingCert, mintWebhookCa, validFor, WebhookCa } from './webhook-tls';

/**
 * The shared serving material. `bundle` is what the configuration's caBundle carries: the current CA,
 * and during a CA rotation the previous one too, so a replica still serving a certificate of the
 * previous CA stays trusted until it reloads.
 */
export interface StoredTls { caCert: string; caKey?: string; previousCa?: string; cert: string; key: string; bundle: string }

const DAY_MS = 86_400_000;
const DEFAULT_LEAF_VALIDITY_MS = 365 * DAY_MS;
const DEFAULT_RENEW_BEFORE_MS = 30 * DAY_MS;
const DEFAULT_CA_VALIDITY_MS = 3650 * DAY_MS;

/** The caBundle for a CA and, while it is still valid, the one before it. */
function caBundleOf(caCert: string, previousCa?: string): string {
  return previousCa && previousCa !== caCert && validFor(previousCa) ? caCert + previousCa : caCert;
}

/** Where the shared serving certificate lives, what it must name, and how long things last. */
export interface ServingTlsOptions {
  readonly namespace: string;
  readonly secretName: string;
  /** DNS names and addresses the serving certificate must name. */
  readonly hosts: string[];
  /** What this replica serves now (its CA is kept as the previous one if the Secret was lost). */
  readonly current?: StoredTls;
  /** @default one year */
  readonly leafValidityMs?: number;
  /** @default 30 days */
  readonly renewBeforeMs?: number;
  /** @default ten years */
  readonly caValidityMs?: number;
}

/**
 * Reads the shared serving certificate, or renews and stores it (the first replica to write the
 * Secret wins; the others use theirs). Renewal never strands a replica that has not reloaded yet:
 * while the CA has life left it only re-issues the serving certificate under the same CA, so the
 * caBundle does not change; when the CA itself must go, the outgoing CA stays in the Secret and in
 * the caBundle (ca-previous.crt) until it expires.
 */
export async function ensureServingTls(client: RawClient, o: ServingTlsOptions, log: Logger): Promise<StoredTls> {
  const { namespace, secretName, hosts } = o;
  const path = objectPath({ apiVersion: 'v1', kind: 'Secret', metadata: { name: secretName, namespace } });
  const leafValidity = o.leafValidityMs ?? DEFAULT_LEAF_VALIDITY_MS;
  const renewBefore = o.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS;
  for (let attempt = 0; attempt < 5; attempt++) {
    const existing = await client.getOrUndefined(path);
    const decode = (k: string) => (existing?.data?.[k] ? Buffer.from(existing.data[k], 'base64').toString('utf8') : undefined);
    const stored = { caCert: decode('ca.crt'), caKey: decode('ca.key'), previousCa: decode('ca-previous.crt'), cert: decode('tls.crt'), key: decode('tls.key') };
    const storedHosts = (existing?.metadata?.annotations?.['pipeline-sidecars.dev/hosts'] ?? '').split(',');
    if (stored.caCert && stored.cert && stored.key && validFor(stored.cert, renewBefore) && hosts.every((h) => storedHosts.includes(h))) {
      return { ...stored, caCert: stored.caCert, cert: stored.cert, key: stored.key, bundle: caBundleOf(stored.caCert, stored.previousCa) };
    }

    // Keep the CA while a full-length serving certificate fits in its life; otherwise rotate it.
    let ca: WebhookCa;
    let previousCa: string | undefined;
    if (stored.caCert && stored.caKey && validFor(stored.caCert, leafValidity)) {
      ca = { caCert: stored.caCert, caKey: stored.caKey };
      previousCa = stored.previousCa && validFor(stored.previousCa) ? stored.previousCa : undefined;
    } else {
      ca = await mintWebhookCa(o.caValidityMs ?? DEFAULT_CA_VALIDITY_MS);
      // The outgoing CA: the stored one, or (the Secret was lost) the one this replica still serves under.
      previousCa = [stored.caCert, o.current?.caCert].find((c) => validFor(c));
    }
    const minted = await mintServingCert(ca, hosts, leafValidity);
    const body = {
      apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
      metadata: {
        name: secretName, namespace: namespace,
        labels: { 'app.kubernetes.io/managed-by': 'pipeline-sidecars', 'app.kubernetes.io/component': 'webhook' },
        annotations: { 'pipeline-sidecars.dev/hosts': minted.hosts.join(',') },
        ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}),
      },
      data: {
        'ca.crt': Buffer.from(ca.caCert).toString('base64'),
        'ca.key': Buffer.from(ca.caKey).toString('base64'),
        ...(previousCa ? { 'ca-previous.crt': Buffer.from(previousCa).toString('base64') } : {}),
        'tls.crt': Buffer.from(minted.cert).toString('base64'),
        'tls.key': Buffer.from(minted.key).toString('base64'),
      },
    };
    try {
      if (existing) await client.request('PUT', path, { body });
      else await client.create(collectionPath('v1', 'Secret', namespace), body);
      log.info('minted the webhook serving certificate', {
        secret: secretName, hosts: minted.hosts, notAfter: minted.notAfter.toISOString(),
        ca: ca.caCert === stored.caCert ? 'kept' : 'rotated', previousCaKept: !!previousCa,
      });
      return { caCert: ca.caCert, caKey: ca.caKey, previousCa, cert: minted.cert, key: minted.key, bundle: caBundleOf(ca.caCert, previousCa) };
    } catch (e) {
      // Another replica wrote it first: use theirs, so all replicas serve under one caBundle.
      if (isConflict(e) || (e instanceof ApiError && e.reason === 'AlreadyExists')) continue;
      throw e;
    }
  }
  throw new Error(`could not settle the webhook certificate Secret ${namespace}/${secretName}: it keeps changing under us`);
}

/** cert-manager (or another issuer) owns the Secret: read it, wait for it, never write it. */
export async function readExternalTls(client: RawClient, namespace: string, secretName: string, log: Logger): Promise<StoredTls> {
  const path = objectPath({ apiVersion: 'v1', kind: 'Secret', metadata: { name: secretName, namespace } });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const s = await client.getOrUndefined(path);
    const get = (k: string) => (s?.data?.[k] ? Buffer.from(s.data[k], 'base64').toString('utf8') : undefined);
    const cert = get('tls.crt');
    const key = get('tls.key');
    if (cert && key) return { caCert: get('ca.crt') ?? '', cert, key, bundle: get('ca.crt') ?? '' };
    if (Date.now() > deadline) {
      throw new Error(`--webhook-external-ca: Secret ${namespace}/${secretName} with tls.crt and tls.key did not appear in 2 minutes; is cert-manager installed and the Certificate Ready?`);
    }
    log.info('waiting for the externally issued webhook certificate', { secret: secretName });
    await new Promise((r) => setTimeout(r, 2000));
  }
}
