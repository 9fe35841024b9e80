import type { PipelineSidecarSpec, RunIdentity, SidecarMaterial, TlsBundle } from '../constructs/api/spec';
import type { KindRegistry } from '../constructs/kinds';
import { sidecarEndpoints } from '../constructs/endpoints';
import { CLIENT_BACKUP_KEYS } from '../constructs/pipeline-sidecar';
import { serviceDnsNames } from '../constructs/names';
import type { ObjectCache } from './k8s/object-store';
import { RawClient, isNotFound } from './k8s/raw';
import { objectPath } from './k8s/resources';
import { mintRunTlsPooled, randomPassword } from './tls';

/** A sidecar of a run, with the spec it is synthesized from. */
export interface RunSidecar { readonly name: string; readonly spec: PipelineSidecarSpec }

/**
 * What MaterialStore.resolve() found for a run's sidecars. `lost` names Secrets of a started run that are gone and
 * cannot be rebuilt with the material the sidecar already serves with: they are never re-minted
 * (a running daemon and its clients would hold two different CAs), and the caller says so.
 */
export interface MaterialResult {
  readonly material: Map<string, SidecarMaterial>;
  readonly lost: ReadonlyArray<{ readonly sidecar: string; readonly secret: string; readonly why: string }>;
  /** A half-written set of a run that has not started was removed: reconcile again. */
  readonly restart: boolean;
}

function decode(secret: Record<string, any> | undefined, key: string): string | undefined {
  const v = secret?.data?.[key];
  return typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : undefined;
}

/**
 * The run's TLS material and passwords: created once, read back from the run's
 * Secrets on every later reconcile, never rotated.
 */
export class MaterialStore {
  /**
   * `uid/sidecar` → material this process minted whose Secrets the cache has not shown yet: the
   * next reconcile (the other objects' events come first) reuses it instead of minting again and
   * losing the race on create (docs/benchmarks.md). Cleared with the run (forget()).
   */
  private readonly minted = new Map<string, SidecarMaterial>();

  constructor(private readonly client: RawClient, private readonly secrets: ObjectCache | undefined, private readonly kinds: KindRegistry) {}

  /** Per-run entries held in memory (tests check they are released). */
  get size(): number { return this.minted.size; }

  forget(uid: string): void {
    for (const k of this.minted.keys()) if (k.startsWith(`${uid}/`)) this.minted.delete(k);
  }

  /**
   * @param started the run's tasks may be running: nothing is deleted or re-minted any more.
   */
  async resolve(ident: RunIdentity, sidecars: readonly RunSidecar[], started: boolean): Promise<MaterialResult> {
    const material = new Map<string, SidecarMaterial>();
    const lost: Array<{ sidecar: string; secret: string; why: string }> = [];
    for (const s of sidecars) {
      const needs = this.kinds.get(s.spec.kind, s.name).needs(s.spec);
      if (!needs.tls && !needs.password) { material.set(s.name, {}); continue; }
      const ep = sidecarEndpoints(ident, s.name, s.spec, this.kinds);
      // Neither Secret in the cache (complete since start): a new run, so mint without asking the
      // server. Should our own create of a moment ago be missing from the cache, the create answers
      // 409 and the reconcile starts over. Only a half pair in the cache is confirmed on the server.
      const anyCached = (needs.tls && this.secrets?.get(ident.namespace, ep.serverSecretName!)) || this.secrets?.get(ident.namespace, ep.clientSecretName!);
      const mintedKey = `${ident.uid}/${s.name}`;
      if (anyCached) this.minted.delete(mintedKey);
      else if (this.minted.has(mintedKey)) { material.set(s.name, this.minted.get(mintedKey)!); continue; }
      const server = needs.tls && (anyCached || started) ? await this.secret(ident.namespace, ep.serverSecretName!) : undefined;
      const client = anyCached || started ? await this.secret(ident.namespace, ep.clientSecretName!) : undefined;
      const haveAll = (!needs.tls || server) && client;
      if (haveAll && needs.tls && decode(server, 'ca.pem') !== decode(client, 'ca.pem') && !started) {
        // Two mints raced before the run started: TLS could never work, and nothing uses them yet.
        for (const sec of [server, client]) await this.deleteIgnoringMissing(objectPath(sec as any));
        return { material, lost, restart: true };
      }
      if (haveAll) {
        const tls: TlsBundle | undefined = needs.tls ? {
          caCert: decode(server, 'ca.pem')!, serverCert: decode(server, 'cert.pem')!, serverKey: decode(server, 'key.pem')!,
          clientCert: decode(client, 'cert.pem')!, clientKey: decode(client, 'key.pem')!,
        } : undefined;
        material.set(s.name, { ...(tls ? { tls } : {}), ...(needs.password ? { password: decode(client, 'password') } : {}) });
        continue;
      }
      if (started && needs.tls && server && !client && decode(server, CLIENT_BACKUP_KEYS.key) && !needs.password) {
        // The client Secret of a started run is gone, and the server Secret keeps a copy of its
        // certificate and key: restore it with exactly the material the sidecar trusts.
        material.set(s.name, { tls: {
          caCert: decode(server, 'ca.pem')!, serverCert: decode(server, 'cert.pem')!, serverKey: decode(server, 'key.pem')!,
          clientCert: decode(server, CLIENT_BACKUP_KEYS.cert)!, clientKey: decode(server, CLIENT_BACKUP_KEYS.key)!,
        } });
        continue;
      }
      if (started) {
        // A Secret of a started run is gone. Its private keys existed only in the Secrets: what is
        // missing cannot be rebuilt, and a new mint would give the daemon and its clients two CAs.
        if (needs.tls && !server) lost.push({ sidecar: s.name, secret: ep.serverSecretName!, why: 'the server certificate and key existed only in it' });
        if (!client) lost.push({ sidecar: s.name, secret: ep.clientSecretName!, why: needs.tls ? 'the client key existed only in it' : 'the generated password existed only in it' });
        // What survives still lets the other objects be synthesized (and re-created if missing); the
        // lost Secrets themselves are never written (the caller skips them).
        const ca = decode(server, 'ca.pem') ?? decode(client, 'ca.pem') ?? '';
        material.set(s.name, {
          ...(needs.tls ? { tls: { caCert: ca, serverCert: decode(server, 'cert.pem') ?? '', serverKey: decode(server, 'key.pem') ?? '', clientCert: decode(client, 'cert.pem') ?? '', clientKey: decode(client, 'key.pem') ?? '' } } : {}),
          ...(needs.password ? { password: decode(client, 'password') ?? '' } : {}),
        });
        continue;
      }
      if (server || client) {
        // Half a pair without the other (a crash between the two creates): the CA key is gone with
        // that reconcile, so start over. The run has not started; nothing uses them.
        for (const sec of [server, client]) if (sec) await this.deleteIgnoringMissing(objectPath(sec as any));
        return { material, lost, restart: true };
      }
      const fresh: SidecarMaterial = {
        ...(needs.tls ? { tls: await mintRunTlsPooled({ hosts: serviceDnsNames(ep.serviceName, ident.namespace) }) } : {}),
        ...(needs.password ? { password: randomPassword() } : {}),
      };
      this.minted.set(mintedKey, fresh);
      material.set(s.name, fresh);
    }
    return { material, lost, restart: false };
  }

  /** A Secret from the cache, or from the server when the cache has not seen it (yet). */
  private async secret(namespace: string, name: string): Promise<Record<string, any> | undefined> {
    const cached = this.secrets?.get(namespace, name);
    if (cached) return cached;
    return this.client.getOrUndefined(objectPath({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } }));
  }

  private async deleteIgnoringMissing(path: string): Promise<void> {
    try { await this.client.delete(path); } catch (e) { if (!isNotFound(e)) throw e; }
  }
}
