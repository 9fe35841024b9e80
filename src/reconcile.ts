import { createHash } from 'node:crypto';
import { ANNOTATIONS, FIELD_MANAGER, GROUP, LABELS, PipelineSidecarResource, PipelineSidecarSpec, RunIdentity, SidecarMaterial, TlsBundle } from '../constructs/api/spec';
import { SidecarSpecError } from '../constructs/errors';
import { KindRegistry } from '../constructs/kinds';
import { sidecarEndpoints } from '../constructs/endpoints';
import { objectName, serviceDnsNames } from '../constructs/names';
import { synthesizeRun, validateSidecarSpec } from '../constructs/synthesize';
import { parseDuration } from './duration';
import { EventRecorder, REASONS } from './events';
import { KubeObject, ObjectCache } from './k8s/informer';
import { ApiError, RawClient, isConflict, isNotFound } from './k8s/raw';
import { collectionPath, objectPath } from './k8s/resources';
import type { Logger } from './log';
import type { OperatorMetrics } from './metrics';
import { deploymentReady, notReadyCause } from './readiness';
import { runIdFromUid } from './runid';
import { annotatedSidecars, selectSidecars } from './selection';
import { mintRunTlsPooled, randomPassword } from './tls';

/** The kinds synthesizeRun emits; the operator watches, sweeps and deletes exactly these. */
export const OWNED_KINDS: ReadonlyArray<{ apiVersion: string; kind: string }> = [
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'v1', kind: 'Secret' },
  { apiVersion: 'v1', kind: 'ServiceAccount' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
];

/** Selects every object of every run (the webhook's own Secret carries no run-id and stays out). */
export const OWNED_SELECTOR = `${LABELS.managedBy}=pipeline-sidecars,${LABELS.runId}`;

const APPLIED_HASH = 'pipeline-sidecars.dev/applied-hash';
const PENDING = 'PipelineRunPending';
const CANCELLED = 'Cancelled';
/** spec.status values that stop a run; on a run that never started, no task will ever run. */
const STOPPED = new Set([CANCELLED, 'CancelledRunFinally', 'StoppedRunFinally']);
/** Set with spec.status: Cancelled when the operator cancels a run (the Event says why). */
export const CANCELLED_ANNOTATION = `${GROUP}/cancelled`;

export interface Caches {
  readonly runs: ObjectCache;
  readonly sidecars: ObjectCache;
  readonly pipelines: ObjectCache;
  readonly namespaces: ObjectCache;
  readonly pods: ObjectCache;
  /** One cache per OWNED_KINDS entry, keyed `apiVersion/kind`. */
  readonly owned: ReadonlyMap<string, ObjectCache>;
}

export interface ReconcilerOptions {
  readonly client: RawClient;
  readonly caches: Caches;
  readonly kinds: KindRegistry;
  readonly events: EventRecorder;
  readonly log: Logger;
  readonly metrics?: OperatorMetrics;
  /** Privileged kinds anywhere, not only in labelled namespaces. */
  readonly allowPrivilegedEverywhere?: boolean;
  /** startupTimeout when a PipelineSidecar sets none (default 5 min). */
  readonly startupTimeoutDefaultMs?: number;
  /** Clock (tests). */
  readonly now?: () => number;
}

export interface ReconcileResult { readonly requeueAfterMs?: number }

/** Succeeded True or False: the run (finally tasks included) is over. */
export function isDone(run: Record<string, any>): boolean {
  return (run.status?.conditions ?? []).some((c: any) => c.type === 'Succeeded' && (c.status === 'True' || c.status === 'False'));
}

/** The identity objects are named by: the webhook's run id, or (fallback mode) one derived from the uid. */
export function runIdentity(run: Record<string, any>): RunIdentity {
  const m = run.metadata;
  const id = m.annotations?.[ANNOTATIONS.runId];
  return id
    ? { name: m.name, namespace: m.namespace, uid: m.uid, runId: id, naming: 'runId' }
    : { name: m.name, namespace: m.namespace, uid: m.uid, runId: runIdFromUid(m.uid), naming: 'runName' };
}

function hashOf(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);
}

function decode(secret: Record<string, any> | undefined, key: string): string | undefined {
  const v = secret?.data?.[key];
  return typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : undefined;
}

/** A reason to stop the run before it starts, with the sidecar to blame. */
class Refusal extends Error {
  constructor(readonly reason: string, message: string) { super(message); }
}

/**
 * The reconcile of one PipelineRun (design §3). Level-triggered and idempotent: everything it
 * needs is re-read from the informer caches (and, where a stale cache could make it do something
 * twice, from the API server), and everything it decides is written to the cluster.
 */
export class Reconciler {
  private readonly now: () => number;
  /**
   * Per run uid: the key of the last synthesis and, per object, where it is cached and the hash it was
   * applied with (not the manifests themselves: at 1,000 live runs they cost ~25 MiB of heap).
   */
  private readonly synthesized = new Map<string, { key: string; name: string; namespace: string; objects: Array<{ cache: string; name: string; hash?: string }> }>();
  /** `uid/sidecar` → material this process minted whose Secrets the cache has not shown yet (see material). */
  private readonly minted = new Map<string, SidecarMaterial>();
  /** Applied-hash of each memoized manifest object, so a no-op reconcile hashes nothing. */
  private readonly manifestHashes = new WeakMap<object, string>();
  constructor(private readonly o: ReconcilerOptions) { this.now = o.now ?? Date.now; }

  private get client(): RawClient { return this.o.client; }
  private get caches(): Caches { return this.o.caches; }

  /** Owned objects in `namespace` matching `pred`, from the caches. */
  ownedObjects(namespace: string | undefined, pred: (o: KubeObject) => boolean): KubeObject[] {
    const out: KubeObject[] = [];
    for (const inf of this.caches.owned.values()) for (const o of inf.list(namespace)) if (pred(o)) out.push(o);
    return out;
  }

  /** The sidecar names a run gets: what the webhook recorded, or (fallback mode) a fresh selection. */
  requestedSidecars(run: Record<string, any>): { names: string[]; unknown: string[] } {
    if (run.metadata.annotations?.[ANNOTATIONS.runId]) return { names: annotatedSidecars(run.metadata.annotations), unknown: [] };
    const ns = run.metadata.namespace;
    const ref = run.spec?.pipelineRef;
    const pipeline = ref?.name && !ref.resolver && !ref.bundle ? this.caches.pipelines.get(ns, ref.name) : undefined;
    const crs = this.caches.sidecars.list(ns) as unknown as PipelineSidecarResource[];
    return selectSidecars(run as any, pipeline as any, crs);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const run = this.caches.runs.get(namespace, name);
    if (!run) return this.runGone(namespace, name);
    const ident = runIdentity(run);
    const spec = run.spec ?? {};
    const annotations = run.metadata.annotations ?? {};
    const started = annotations[ANNOTATIONS.started] !== undefined;
    const mine = (o: KubeObject) => o.metadata.labels?.[LABELS.runId] === ident.runId;

    // Cancelled before we started it: no task will ever run, so the sidecars can go now.
    if (isDone(run) || run.metadata.deletionTimestamp || (STOPPED.has(spec.status) && !started)) {
      await this.cleanup(run, ident, this.ownedObjects(namespace, mine).length > 0);
      return {};
    }

    const { names, unknown } = this.requestedSidecars(run);
    if (names.length === 0 && unknown.length === 0) {
      if (this.ownedObjects(namespace, mine).length > 0) await this.cleanup(run, ident, true);
      return {};
    }
    const pending = spec.status === PENDING;
    const gated = pending && (annotations[ANNOTATIONS.gated] === 'true' || ident.naming === 'runName');
    const log = this.o.log.child({ run: key, runId: ident.runId });

    // The webhook never saw this run (no run id) and nobody gated it: its tasks may already be running.
    if (!pending && !started && spec.status === undefined && ident.naming === 'runName') {
      await this.o.events.emit(run, 'Warning', REASONS.notGated,
        `this run asks for sidecars (${names.join(', ')}) but was admitted without the pipeline-sidecars webhook (was it down?) and is not pending, ` +
        'so its tasks may start before the sidecars are ready; they are being created now. Set spec.status: PipelineRunPending at creation to be safe.');
    }

    try {
      if (unknown.length > 0) throw new Refusal(REASONS.refused, `PipelineSidecar ${unknown.map((n) => `"${n}"`).join(', ')} does not exist in namespace ${namespace}`);
      const sidecars = names.map((n) => {
        const cr = this.caches.sidecars.get(namespace, n) as unknown as PipelineSidecarResource | undefined;
        if (!cr) throw new Refusal(REASONS.refused, `PipelineSidecar "${n}" does not exist in namespace ${namespace} (deleted after the run was created?)`);
        const problems = validateSidecarSpec(n, cr.spec, this.o.kinds);
        if (problems.length) throw new Refusal(REASONS.refused, `PipelineSidecar "${n}" is not valid: ${problems.map((p) => p.message).join('; ')}`);
        return { name: n, spec: cr.spec };
      });
      // Pods beyond Pod Security baseline are refused by synthesizeRun (a SidecarSpecError, below).
      const allowPrivileged = this.privilegedAllowed(namespace);

      const material = await this.material(ident, sidecars, started);
      if (!material) return { requeueAfterMs: 0 };
      const manifests = this.synthesize(ident, sidecars, material, allowPrivileged);
      const createdSecret = await this.apply(run, ident, manifests, log);
      if (createdSecret === 'lost-race') return { requeueAfterMs: 0 };

      return await this.gate(run, ident, sidecars, { pending, gated, started }, log);
    } catch (e) {
      if (e instanceof Refusal || e instanceof SidecarSpecError) {
        const reason = e instanceof Refusal ? e.reason : REASONS.refused;
        await this.refuse(run, ident, { pending, gated, started }, reason, e.message, log);
        return {};
      }
      throw e;
    }
  }

  /**
   * synthesizeRun, skipped when it would change nothing: a run is reconciled several times (its
   * objects' and its own status changes), and synthesis (cdk8s) was the operator's largest CPU cost
   * under load (docs/benchmarks.md). When everything the manifests derive from (the key) is as last
   * time and every object is in the cache as applied then, there is nothing to apply: [] is returned.
   * The entry goes when the run's sidecars are cleaned up.
   */
  private synthesize(ident: RunIdentity, sidecars: Array<{ name: string; spec: PipelineSidecarSpec }>, material: Map<string, SidecarMaterial>, allowPrivileged: boolean): Array<Record<string, any>> {
    const key = hashOf({ ident, sidecars, allowPrivileged, material: [...material] });
    const memo = this.synthesized.get(ident.uid);
    if (memo?.key === key && memo.objects.every((o) => {
      const cached = this.caches.owned.get(o.cache)?.get(ident.namespace, o.name);
      return cached && (o.hash === undefined || cached.metadata.annotations?.[APPLIED_HASH] === o.hash);
    })) return [];
    const manifests = synthesizeRun({ run: ident, sidecars: sidecars.map((s) => ({ ...s, material: material.get(s.name)! })), allowPrivileged, kinds: this.o.kinds });
    const objects = manifests.map((m) => {
      const hash = m.kind === 'Secret' ? undefined : hashOf(m);
      if (hash) this.manifestHashes.set(m, hash);
      return { cache: `${m.apiVersion}/${m.kind}`, name: m.metadata.name, hash };
    });
    this.synthesized.set(ident.uid, { key, name: ident.name, namespace: ident.namespace, objects });
    return manifests;
  }

  private privilegedAllowed(namespace: string): boolean {
    if (this.o.allowPrivilegedEverywhere) return true;
    return this.caches.namespaces.get(undefined, namespace)?.metadata.labels?.[LABELS.allowPrivileged] === 'true';
  }

  /**
   * TLS material and passwords for each sidecar that needs them: read back from the Secrets of an
   * earlier reconcile (never re-minted, so a restart or requeue never rotates them), minted otherwise.
   * Undefined when a half-written set had to be removed first.
   */
  private async material(ident: RunIdentity, sidecars: Array<{ name: string; spec: PipelineSidecarSpec }>, started: boolean): Promise<Map<string, SidecarMaterial> | undefined> {
    const out = new Map<string, SidecarMaterial>();
    for (const s of sidecars) {
      const needs = this.o.kinds.get(s.spec.kind, s.name).needs(s.spec);
      if (!needs.tls && !needs.password) { out.set(s.name, {}); continue; }
      const ep = sidecarEndpoints(ident, s.name, s.spec, this.o.kinds);
      // Neither Secret in the cache (complete since start): a new run, so mint without asking the server.
      // Should our own create of a moment ago be missing from the cache, apply()'s create answers 409
      // and the reconcile starts over. Only a half pair in the cache is confirmed on the server.
      const cache = this.caches.owned.get('v1/Secret');
      const anyCached = (needs.tls && cache?.get(ident.namespace, ep.serverSecretName!)) || cache?.get(ident.namespace, ep.clientSecretName!);
      // What this process minted for the run, until its Secrets are in the cache: the next reconcile
      // (the other objects' events come first) reuses it instead of minting again and losing the race
      // on create (which cost a mint, a 409, a GET and a requeue per run: docs/benchmarks.md).
      const mintedKey = `${ident.uid}/${s.name}`;
      if (anyCached) this.minted.delete(mintedKey);
      else if (this.minted.has(mintedKey)) { out.set(s.name, this.minted.get(mintedKey)!); continue; }
      const server = needs.tls && anyCached ? await this.secret(ident.namespace, ep.serverSecretName!) : undefined;
      const client = anyCached ? await this.secret(ident.namespace, ep.clientSecretName!) : undefined;
      const haveAll = (!needs.tls || server) && client;
      if (haveAll && needs.tls && decode(server, 'ca.pem') !== decode(client, 'ca.pem') && !started) {
        // Server and client certificates from two different mints (two creates that raced, one of them
        // losing): TLS between tasks and sidecar could never work. Nothing uses them before the run
        // starts, so replace the pair.
        for (const sec of [server, client]) await this.deleteIgnoringMissing(objectPath(sec as any));
        return undefined;
      }
      if (haveAll) {
        const tls: TlsBundle | undefined = needs.tls ? {
          caCert: decode(server, 'ca.pem')!, serverCert: decode(server, 'cert.pem')!, serverKey: decode(server, 'key.pem')!,
          clientCert: decode(client, 'cert.pem')!, clientKey: decode(client, 'key.pem')!,
        } : undefined;
        out.set(s.name, { ...(tls ? { tls } : {}), ...(needs.password ? { password: decode(client, 'password') } : {}) });
        continue;
      }
      if (server || client) {
        // One Secret of a pair exists without the other (a crash between the two creates): the CA key
        // is gone with that reconcile, so start the pair over. The run has not started, nothing uses them.
        for (const sec of [server, client]) if (sec) await this.deleteIgnoringMissing(objectPath(sec as any));
        return undefined;
      }
      const fresh: SidecarMaterial = {
        ...(needs.tls ? { tls: await mintRunTlsPooled({ hosts: serviceDnsNames(ep.serviceName, ident.namespace) }) } : {}),
        ...(needs.password ? { password: randomPassword() } : {}),
      };
      this.minted.set(mintedKey, fresh);
      out.set(s.name, fresh);
    }
    return out;
  }

  /** A Secret from the cache, or from the server when the cache has not seen it (yet). */
  private async secret(namespace: string, name: string): Promise<Record<string, any> | undefined> {
    const cached = this.caches.owned.get('v1/Secret')?.get(namespace, name);
    if (cached) return cached;
    return this.client.getOrUndefined(objectPath({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } }));
  }

  /**
   * Secrets are created, never applied: a second create of the same name fails instead of replacing
   * the material the sidecar already serves with. Everything else is server-side applied without
   * force, skipped when the cached object already carries the hash of what we would send.
   */
  private async apply(run: Record<string, any>, ident: RunIdentity, manifests: Array<Record<string, any>>, log: Logger): Promise<'ok' | 'lost-race'> {
    let wrote = 0;
    let lost = false;
    const one = async (m: Record<string, any>): Promise<void> => {
      const inf = this.caches.owned.get(`${m.apiVersion}/${m.kind}`);
      const cached = inf?.get(m.metadata.namespace, m.metadata.name);
      if (m.kind === 'Secret') {
        if (cached) return;
        try {
          await this.client.create(collectionPath('v1', 'Secret', m.metadata.namespace), m);
          wrote++;
        } catch (e) {
          if (e instanceof ApiError && e.statusCode === 409) {
            // Somebody (us, a moment ago, before the cache caught up) created it: use that material.
            const live = await this.client.getOrUndefined(objectPath(m as any));
            if (live && live.data && JSON.stringify(live.data) === JSON.stringify(m.data)) return;
            lost = true;
            return;
          }
          throw e;
        }
        return;
      }
      let hash = this.manifestHashes.get(m);
      if (hash === undefined) { hash = hashOf(m); this.manifestHashes.set(m, hash); }
      if (cached?.metadata.annotations?.[APPLIED_HASH] === hash) return;
      const body = { ...m, metadata: { ...m.metadata, annotations: { ...(m.metadata.annotations ?? {}), [APPLIED_HASH]: hash } } };
      try {
        await this.client.apply(objectPath(body as any), body, FIELD_MANAGER, { force: false });
        wrote++;
      } catch (e) {
        if (isConflict(e)) {
          // Another field manager owns a field we set: never force over it; tell the user who.
          await this.o.events.emit(run, 'Warning', REASONS.applyConflict,
            `cannot apply ${m.kind} ${m.metadata.name}: another field manager owns some of its fields (${(e as Error).message}); remove that manager's changes`, `${m.kind}/${m.metadata.name}`);
          this.o.metrics?.errors.inc({ reason: 'apply_conflict' });
        }
        throw e;
      }
    };
    // Two waves of parallel requests instead of one request after another: first everything the
    // Deployments' pods refer to (ServiceAccount, Secrets) with the Service and NetworkPolicy, then the
    // Deployments, so a pod never starts before its ServiceAccount and Secrets exist.
    for (const wave of [manifests.filter((m) => m.kind !== 'Deployment'), manifests.filter((m) => m.kind === 'Deployment')]) {
      const failed = (await Promise.allSettled(wave.map(one))).find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (lost) return 'lost-race';
    }
    if (wrote > 0) {
      log.info('applied sidecar objects', { written: wrote, total: manifests.length });
      await this.o.events.emit(run, 'Normal', REASONS.sidecarsApplied,
        `created ${manifests.map((m) => `${m.kind} ${m.metadata.name}`).join(', ')}`, ident.runId);
    }
    return 'ok';
  }

  private async gate(
    run: Record<string, any>, ident: RunIdentity, sidecars: Array<{ name: string; spec: PipelineSidecarSpec }>,
    st: { pending: boolean; gated: boolean; started: boolean }, log: Logger,
  ): Promise<ReconcileResult> {
    const deployments = this.caches.owned.get('apps/v1/Deployment')!;
    const notReady: Array<{ name: string; spec: PipelineSidecarSpec; dep?: KubeObject }> = [];
    for (const s of sidecars) {
      const dep = deployments.get(ident.namespace, objectName(ident, s.name));
      if (!deploymentReady(dep)) notReady.push({ ...s, dep });
    }
    if (!st.gated || st.started) return {};
    // Each Event goes out *before* the spec.status patch it announces. A crash between the two then
    // repeats both on the next reconcile (the run is still pending; the Event's deterministic name
    // makes the repeat a no-op), so a started or cancelled run never lacks its explanation, and no
    // in-memory bookkeeping is needed to know whether it was written.
    if (notReady.length === 0) {
      await this.o.events.emit(run, 'Normal', REASONS.sidecarsReady, `sidecars ready (${sidecars.map((s) => s.name).join(', ')}): starting the run`);
      if (await this.setRunStatus(run, 'start')) {
        const latency = (this.now() - Date.parse(run.metadata.creationTimestamp)) / 1000;
        this.o.metrics?.unpendLatency.observe(latency);
        log.info('sidecars ready: started the run', { latencySeconds: latency });
      }
      return {};
    }
    const created = Date.parse(run.metadata.creationTimestamp);
    let nextDeadline = Infinity;
    const expired: typeof notReady = [];
    for (const s of notReady) {
      const timeout = parseDuration(s.spec.lifecycle?.startupTimeout) ?? this.o.startupTimeoutDefaultMs ?? 300_000;
      const deadline = created + timeout;
      if (this.now() >= deadline) expired.push(s); else nextDeadline = Math.min(nextDeadline, deadline);
    }
    if (expired.length === 0) return { requeueAfterMs: Math.max(50, nextDeadline - this.now() + 50) };

    const pods = this.caches.pods.list(ident.namespace);
    const causes = expired.map((s) => {
      const podsOf = pods.filter((p) => p.metadata.labels?.[LABELS.runId] === ident.runId && p.metadata.labels?.[LABELS.sidecar] === s.name);
      const timeout = s.spec.lifecycle?.startupTimeout ?? `${Math.round((this.o.startupTimeoutDefaultMs ?? 300_000) / 1000)}s`;
      return `sidecar "${s.name}" was not Ready within startupTimeout ${timeout}: ${notReadyCause(s.dep, podsOf)}`;
    });
    const cancel = expired.some((s) => (s.spec.lifecycle?.onSidecarFailure ?? 'Cancel') === 'Cancel');
    this.o.metrics?.errors.inc({ reason: 'startup_timeout' });
    if (cancel) {
      await this.o.events.emit(run, 'Warning', REASONS.startupFailed, `${causes.join('; ')}; cancelling the run`);
      if (await this.setRunStatus(run, 'cancel')) {
        log.warn('sidecar startup failed: cancelled the run', { causes });
        await this.cleanup(run, ident, true);
      }
      return {};
    }
    await this.o.events.emit(run, 'Warning', REASONS.startupFailed, `${causes.join('; ')}; starting the run anyway (onSidecarFailure: Ignore)`);
    await this.setRunStatus(run, 'start');
    return {};
  }

  /**
   * The only spec write the operator makes, guarded by a JSON Patch `test` on spec.status: if the
   * run is no longer pending (another replica, an earlier life of this process, or the user got
   * there first) the patch fails and nothing changes, so a run is started or cancelled at most once.
   */
  private async setRunStatus(run: Record<string, any>, to: 'start' | 'cancel'): Promise<boolean> {
    const ann = run.metadata.annotations;
    const stamp = new Date(this.now()).toISOString();
    const annotation = to === 'start' ? ANNOTATIONS.started : CANCELLED_ANNOTATION;
    const annKey = annotation.replace(/\//g, '~1');
    const ops: unknown[] = [
      { op: 'test', path: '/spec/status', value: PENDING },
      to === 'start' ? { op: 'remove', path: '/spec/status' } : { op: 'replace', path: '/spec/status', value: CANCELLED },
      ann ? { op: 'add', path: `/metadata/annotations/${annKey}`, value: stamp } : { op: 'add', path: '/metadata/annotations', value: { [annotation]: stamp } },
    ];
    try {
      await this.client.jsonPatch(objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: run.metadata }), ops);
      return true;
    } catch (e) {
      // 422 from the failed test: not pending any more. 404: deleted meanwhile. Either way, nothing to do.
      if (e instanceof ApiError && (e.statusCode === 422 || e.statusCode === 404)) return false;
      throw e;
    }
  }

  private async refuse(run: Record<string, any>, ident: RunIdentity, st: { pending: boolean; gated: boolean; started: boolean }, reason: string, message: string, log: Logger): Promise<void> {
    this.o.metrics?.errors.inc({ reason: 'refused' });
    log.warn('refusing sidecars', { reason, message });
    if (st.gated && !st.started) {
      await this.o.events.emit(run, 'Warning', reason, `${message}; cancelling the run`);
      await this.setRunStatus(run, 'cancel');
    } else {
      await this.o.events.emit(run, 'Warning', reason, message, message);
    }
    if (this.ownedObjects(ident.namespace, (o) => o.metadata.labels?.[LABELS.runId] === ident.runId).length) await this.cleanup(run, ident, true);
  }

  /** Deletes every object of the run, by label, kind by kind (covers objects the cache has not seen yet). */
  async cleanup(run: Record<string, any>, ident: RunIdentity, anyKnown: boolean): Promise<void> {
    this.synthesized.delete(ident.uid);
    for (const k of this.minted.keys()) if (k.startsWith(`${ident.uid}/`)) this.minted.delete(k);
    if (!anyKnown) return;
    await this.deleteByRunId(ident.namespace, ident.runId);
    this.o.log.info('deleted sidecar objects', { run: `${ident.namespace}/${ident.name}`, runId: ident.runId });
    const why = isDone(run) ? 'the run is done' : run.metadata.deletionTimestamp ? 'the run is being deleted' : 'the run was cancelled before it started';
    await this.o.events.emit(run, 'Normal', REASONS.deleted, `deleted the sidecars of this run: ${why}`);
  }

  /** The run is not in the cache: if the server agrees it is gone, delete what it owned (GC would too, eventually). */
  private async runGone(namespace: string, name: string): Promise<ReconcileResult> {
    for (const [uid, m] of this.synthesized) if (m.namespace === namespace && m.name === name) this.synthesized.delete(uid);
    const orphans = this.ownedObjects(namespace, (o) => (o.metadata as any).ownerReferences?.some((r: any) => r.kind === 'PipelineRun' && r.name === name));
    if (orphans.length === 0) return {};
    const live = await this.client.getOrUndefined(objectPath({ apiVersion: 'tekton.dev/v1', kind: 'PipelineRun', metadata: { name, namespace } }));
    const liveUid = live?.metadata?.uid;
    const runIds = new Set<string>();
    for (const o of orphans) {
      const owner = (o.metadata as any).ownerReferences.find((r: any) => r.kind === 'PipelineRun' && r.name === name);
      if (owner.uid !== liveUid) runIds.add(o.metadata.labels![LABELS.runId]);
    }
    for (const id of runIds) {
      await this.deleteByRunId(namespace, id);
      this.o.log.info('deleted objects of a run that no longer exists', { run: `${namespace}/${name}`, runId: id });
    }
    return live ? { requeueAfterMs: 1000 } : {};
  }

  /** Deletes every object of one run id, kind by kind, by label (so objects the cache has not seen yet go too). */
  async deleteByRunId(namespace: string, runId: string): Promise<void> {
    const labelSelector = `${LABELS.managedBy}=pipeline-sidecars,${LABELS.runId}=${runId}`;
    await Promise.all(OWNED_KINDS.map((k) => this.client.delete(collectionPath(k.apiVersion, k.kind, namespace), { labelSelector, propagationPolicy: 'Background' })
      .catch((e) => { if (!isNotFound(e)) throw e; })));
  }

  private async deleteIgnoringMissing(path: string): Promise<void> {
    try { await this.client.delete(path); } catch (e) { if (!isNotFound(e)) throw e; }
  }
}
