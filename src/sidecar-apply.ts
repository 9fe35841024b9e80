import { createHash } from 'node:crypto';
import { FIELD_MANAGER, GROUP, LABELS, RunIdentity, SidecarMaterial } from '../constructs/api/spec';
import type { KindRegistry } from '../constructs/kinds';
import { synthesizeRun } from '../constructs/synthesize';
import { EventRecorder, REASONS } from './events';
import type { KubeObject, ObjectCache } from './k8s/object-store';
import { ApiError, RawClient, isConflict } from './k8s/raw';
import { collectionPath, objectPath } from './k8s/resources';
import type { Logger } from './log';
import type { RunSidecar } from './material';
import type { PipelineRun } from './pipelinerun';

/** Hash of the manifest we applied, on every applied object: what the object should still look like. */
export const APPLIED_HASH = `${GROUP}/applied-hash`;
/**
 * The PipelineSidecar spec an object was synthesized from, on every object of a sidecar: a started
 * run's missing objects are re-created from it, not from the PipelineSidecar as it is now.
 */
export const SPEC_SNAPSHOT = `${GROUP}/sidecar-spec`;
/**
 * When the operator last wrote a new desire into the object (created it, or applied a changed
 * spec to a run that had not started): a sidecar's start-up timeout counts from here, because a
 * changed Deployment rolls out a new pod that needs its own start-up time. Kept as it is when a hand
 * edit is put back. Outside the applied hash, so that time never looks like a change.
 */
export const APPLIED_AT = `${GROUP}/applied-at`;

type Manifest = Record<string, any>;

/** How long a write of ours stands in for an object the informer has not delivered yet. */
const RECENT_TTL_MS = 5_000;

/**
 * Whether `a` is a later version than `b`. resourceVersions are opaque to clients, but the API
 * server's are etcd revisions (integers), which client-go's MutationCache relies on too; anything
 * else is never "newer", so the informer's copy wins.
 */
export function resourceVersionNewer(a: KubeObject, b: KubeObject): boolean {
  const ra = a.metadata?.resourceVersion;
  const rb = b.metadata?.resourceVersion;
  if (!ra || !rb || !/^\d+$/.test(ra) || !/^\d+$/.test(rb)) return false;
  return BigInt(ra) > BigInt(rb);
}

function stamped(m: Manifest, at: string): Manifest {
  return { ...m, metadata: { ...m.metadata, annotations: { ...m.metadata.annotations, [APPLIED_AT]: at } } };
}

function hashOf(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);
}

/**
 * Whether every field we set still has the value we set: the live object may carry more (defaults,
 * status, other managers' fields), never less or different. Lists must match element by element,
 * so a NetworkPolicy widened by an extra peer is a difference.
 */
export function stillAsApplied(desired: unknown, live: unknown): boolean {
  // The API server drops empty values of omitempty fields ("", false, 0, {} and []): absent is equal.
  if (live === undefined && isEmptyValue(desired)) return true;
  if (Array.isArray(desired)) {
    return Array.isArray(live) && live.length === desired.length && desired.every((d, i) => stillAsApplied(d, live[i]));
  }
  if (desired !== null && typeof desired === 'object') {
    if (live === null || typeof live !== 'object' || Array.isArray(live)) return false;
    return Object.entries(desired as Record<string, unknown>).every(([k, v]) => stillAsApplied(v, (live as Record<string, unknown>)[k]));
  }
  return desired === live || (desired === undefined && live === undefined);
}

/** stillAsApplied for a whole object: its metadata we set, and everything but apiVersion and kind (lists omit them). */
function objectAsApplied(m: Manifest, live: KubeObject): boolean {
  const { apiVersion: _a, kind: _k, metadata, ...rest } = m;
  const { labels, annotations, ownerReferences } = metadata;
  return stillAsApplied({ labels, annotations, ownerReferences }, live.metadata) && stillAsApplied(rest, live);
}

function isEmptyValue(v: unknown): boolean {
  if (v === '' || v === false || v === 0 || v === null) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && v !== null && Object.keys(v).length === 0;
}

/**
 * A run's Secret, once it exists, holds the very keys and certificates its memoized manifest does
 * (the memo lives as long as the run): the manifest takes the cached copy's `data`, so the material
 * is held once, not twice (about 6 MiB of heap at a thousand live runs). Only when every value is
 * equal; a manifest whose material differs keeps its own.
 */
function shareSecretData(m: Manifest, live: KubeObject): void {
  const data = (live as Record<string, any>).data;
  if (m.data === data || !data || !m.data) return;
  const keys = Object.keys(m.data);
  if (keys.length !== Object.keys(data).length || keys.some((k) => m.data[k] !== data[k])) return;
  m.data = data;
}

export interface ApplyOutcome {
  /** Objects written (created, updated, or put back). */
  readonly written: number;
  /** A Secret create lost a race to a concurrent mint: reconcile again with what won. */
  readonly lostRace: boolean;
}

/**
 * Synthesis and server-side apply of a run's objects, with a memo so that a reconcile that would
 * change nothing costs neither synthesis nor requests.
 */
export class SidecarApplier {
  /** Per run uid: the key of the last synthesis and its manifests. Dropped with the run (forget()). */
  private readonly memo = new Map<string, { key: string; manifests: Manifest[] }>();

  constructor(
    private readonly client: RawClient,
    private readonly owned: ReadonlyMap<string, ObjectCache>,
    private readonly kinds: KindRegistry,
    private readonly events: EventRecorder,
  ) {}

  get size(): number { return this.memo.size; }
  forget(uid: string): void { this.memo.delete(uid); }

  /** The run's manifests, each carrying the hash of itself and the spec snapshot of its sidecar. */
  manifests(ident: RunIdentity, sidecars: readonly RunSidecar[], material: Map<string, SidecarMaterial>, allowPrivileged: boolean): Manifest[] {
    const key = hashOf({ ident, sidecars, allowPrivileged, material: [...material] });
    const memo = this.memo.get(ident.uid);
    if (memo?.key === key) return memo.manifests;
    const specs = new Map(sidecars.map((s) => [s.name, JSON.stringify(s.spec)]));
    const raw = synthesizeRun({ run: ident, sidecars: sidecars.map((s) => ({ ...s, material: material.get(s.name)! })), allowPrivileged, kinds: this.kinds });
    const manifests = raw.map((m) => {
      const snapshot = specs.get(m.metadata.labels?.[LABELS.sidecar]);
      const annotations = { ...(m.metadata.annotations ?? {}), ...(snapshot && m.kind !== 'Secret' ? { [SPEC_SNAPSHOT]: snapshot } : {}) };
      const withSnapshot = { ...m, metadata: { ...m.metadata, annotations } };
      if (m.kind === 'Secret') return withSnapshot;
      return { ...withSnapshot, metadata: { ...withSnapshot.metadata, annotations: { ...annotations, [APPLIED_HASH]: hashOf(withSnapshot) } } };
    });
    this.memo.set(ident.uid, { key, manifests });
    return manifests;
  }

  /**
   * What our own writes returned, until the informer has caught up with them (client-go's
   * MutationCache): a reconcile that runs again before the watch delivered the object it just
   * applied would otherwise apply it a second time (1.7 Deployment applies per run under load).
   * Dropped when the cache holds the same or a newer resourceVersion, when the object is seen
   * deleted (objectDeleted), or after RECENT_TTL_MS.
   */
  private readonly recent = new Map<string, { obj: KubeObject; at: number }>();

  private static keyOf(m: Record<string, any>): string {
    return `${m.apiVersion}/${m.kind}/${m.metadata.namespace}/${m.metadata.name}`;
  }

  private remember(m: Manifest, written: KubeObject | undefined): void {
    if (!written?.metadata?.resourceVersion) return;
    if (written.metadata.managedFields) delete written.metadata.managedFields;
    const now = Date.now();
    // Oldest first (insertion order): drop what has expired, so the map holds seconds of writes, not history.
    for (const [k, v] of this.recent) { if (now - v.at < RECENT_TTL_MS) break; this.recent.delete(k); }
    this.recent.delete(SidecarApplier.keyOf(m));
    this.recent.set(SidecarApplier.keyOf(m), { obj: written, at: now });
  }

  /** The informer saw the object deleted: what we wrote before is no longer there. */
  objectDeleted(obj: KubeObject): void {
    this.recent.delete(SidecarApplier.keyOf(obj));
  }

  private cached(m: Manifest): KubeObject | undefined {
    const inf = this.owned.get(`${m.apiVersion}/${m.kind}`)?.get(m.metadata.namespace, m.metadata.name);
    const key = SidecarApplier.keyOf(m);
    const mine = this.recent.get(key);
    if (!mine) return inf;
    const newer = inf ? resourceVersionNewer(mine.obj, inf) : Date.now() - mine.at < RECENT_TTL_MS;
    if (!newer) { this.recent.delete(key); return inf; }
    return mine.obj;
  }

  /**
   * Applies what is missing or no longer as applied. A run whose tasks may be running (`frozen`)
   * keeps the objects it got: an object whose hash differs from `desired` (the PipelineSidecar was
   * edited, or a new operator has new defaults) is left alone; only missing objects are re-created
   * and hand edits of what we applied are put back. Secrets are created, never applied, so TLS
   * material never rotates; `skip` names Secrets that must not be written at all.
   */
  async apply(run: PipelineRun, manifests: Manifest[], opts: { frozen: boolean; skip?: ReadonlySet<string>; log: Logger }): Promise<ApplyOutcome> {
    let written = 0;
    let lostRace = false;
    const recreated: string[] = [];
    const one = async (m: Manifest): Promise<void> => {
      const live = this.cached(m);
      const what = `${m.kind} ${m.metadata.name}`;
      if (m.kind === 'Secret') {
        if (live) { shareSecretData(m, live); return; }
        if (opts.skip?.has(m.metadata.name)) return;
        try {
          this.remember(m, await this.client.create(collectionPath('v1', 'Secret', m.metadata.namespace), m));
          written++;
          if (opts.frozen) recreated.push(what);
        } catch (e) {
          if (!(e instanceof ApiError && e.statusCode === 409)) throw e;
          // Somebody (us, a moment ago, before the cache caught up) created it: use that material.
          const current = await this.client.getOrUndefined(objectPath(m as any));
          if (!(current?.data && JSON.stringify(current.data) === JSON.stringify(m.data))) lostRace = true;
        }
        return;
      }
      const hash = m.metadata.annotations[APPLIED_HASH];
      const now = new Date().toISOString();
      if (!live) {
        this.remember(m, await this.client.apply(objectPath(m as any), stamped(m, now), FIELD_MANAGER, { force: false }));
        written++;
        if (opts.frozen) recreated.push(what);
        return;
      }
      const liveHash = live.metadata.annotations?.[APPLIED_HASH];
      if (liveHash === hash && objectAsApplied(m, live)) return;
      if (liveHash !== hash) {
        // Changed desire. A started run keeps what it got; a run that has not started gets the change.
        if (opts.frozen) return;
        this.remember(m, await this.applyOrReport(run, stamped(m, now), false));
        written++;
        return;
      }
      // Same desire, different object: a hand edit (scaled to zero, a widened policy). Put it back,
      // and say whose change was overridden: the object's managedFields name the last other writer
      // (the caches drop managedFields, so this rare path reads the object once).
      written++;
      const by = await this.lastOtherManager(m);
      const key = `${what}/${live.metadata.resourceVersion}`;
      const back = stamped(m, live.metadata.annotations?.[APPLIED_AT] ?? now);
      try {
        await this.client.apply(objectPath(m as any), back, FIELD_MANAGER, { force: false });
        await this.events.emit(run, 'Warning', REASONS.driftCorrected, `${what} was changed${by} and no longer matched what the operator applied; put it back`, key);
      } catch (e) {
        if (!isConflict(e)) throw e;
        await this.events.emit(run, 'Warning', REASONS.driftCorrected,
          `${what} was changed${by}; putting back what the operator applied, overriding that field manager: ${(e as Error).message}`, key);
        await this.client.apply(objectPath(m as any), back, FIELD_MANAGER, { force: true });
      }
    };
    // Two waves of parallel requests: everything the Deployments' pods refer to (ServiceAccount,
    // Secrets) with the Service and NetworkPolicy first, then the Deployments, so a pod never starts
    // before its ServiceAccount and Secrets exist.
    for (const wave of [manifests.filter((m) => m.kind !== 'Deployment'), manifests.filter((m) => m.kind === 'Deployment')]) {
      const failed = (await Promise.allSettled(wave.map(one))).find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (lostRace) return { written, lostRace };
    }
    if (recreated.length) {
      opts.log.warn('re-created missing objects of a started run', { objects: recreated });
      await this.events.emit(run, 'Warning', REASONS.recreated, `re-created ${recreated.join(', ')}, deleted while the run was using it, from what the run got at its first apply`, recreated.join(','));
    }
    return { written, lostRace };
  }

  /** ` by "<manager>" (<operation> at <time>)` for the most recent writer other than us, or ''. */
  private async lastOtherManager(m: Manifest): Promise<string> {
    const live = await this.client.getOrUndefined(objectPath(m as any)).catch(() => undefined);
    const others = ((live?.metadata?.managedFields ?? []) as Array<{ manager?: string; operation?: string; time?: string; subresource?: string }>)
      .filter((f) => f.manager !== FIELD_MANAGER && f.subresource !== 'status')
      .sort((a, b) => (b.time ?? '').localeCompare(a.time ?? ''));
    const f = others[0];
    return f ? ` by "${f.manager ?? 'unknown'}" (${f.operation ?? 'Update'}${f.subresource ? ` of ${f.subresource}` : ''} at ${f.time ?? '?'})`
      : ' by a writer the API server recorded no field manager for (for example through the scale subresource)';
  }

  /** A plain apply; a conflict with another manager on a run that has not started is reported, never forced. */
  private async applyOrReport(run: PipelineRun, m: Manifest, force: boolean): Promise<KubeObject> {
    try {
      return await this.client.apply(objectPath(m as any), m, FIELD_MANAGER, { force });
    } catch (e) {
      if (isConflict(e)) {
        await this.events.emit(run, 'Warning', REASONS.applyConflict,
          `cannot apply ${m.kind} ${m.metadata.name}: another field manager owns some of its fields (${(e as Error).message}); remove that manager's changes`, `${m.kind}/${m.metadata.name}`);
      }
      throw e;
    }
  }
}
