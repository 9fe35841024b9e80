import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, RawClient } from '../src/k8s/raw';
import { ARGOCD_NAMESPACE } from './argocd';
import { eventually } from './cluster';

/**
 * The Argo CD Application of the tests: examples/argocd-application.yaml as shipped, pointed at
 * the repository on this machine, and what the tests read of it and do to it (a refresh, as Argo
 * CD's git webhook or `argocd app get --refresh` would ask for one).
 */

const REPO = path.resolve(__dirname, '..');
export const EXAMPLE_APPLICATION = path.join(REPO, 'examples', 'argocd-application.yaml');

/** The example's text with its repoURL (one line) replaced by `repoURL`, and nothing else changed. */
export function exampleApplication(repoURL: string): { text: string; app: Record<string, any> } {
  const lines = fs.readFileSync(EXAMPLE_APPLICATION, 'utf8').split('\n');
  const at = lines.flatMap((l, i) => (/^\s+repoURL:\s/.test(l) ? [i] : []));
  if (at.length !== 1) throw new Error(`${EXAMPLE_APPLICATION} must have one repoURL line, not ${at.length}`);
  lines[at[0]] = lines[at[0]].replace(/repoURL:.*$/, `repoURL: ${repoURL}`);
  const text = lines.join('\n');
  return { text, app: parse(text) };
}

export function appPath(name: string): string {
  return `/apis/argoproj.io/v1alpha1/namespaces/${ARGOCD_NAMESPACE}/applications/${name}`;
}

export async function readApp(client: RawClient, name: string): Promise<Record<string, any>> {
  return client.get(appPath(name));
}

/** What an Application says, for failure messages and progress lines. */
export function appSummary(app: Record<string, any>): Record<string, unknown> {
  const s = app.status ?? {};
  return {
    sync: s.sync?.status, revision: s.sync?.revision?.slice(0, 8), health: s.health?.status,
    operation: s.operationState ? { phase: s.operationState.phase, message: String(s.operationState.message ?? '').slice(0, 400) } : undefined,
    conditions: (s.conditions ?? []).map((c: any) => `${c.type}: ${String(c.message).slice(0, 200)}`),
    notSyncedOrHealthy: (s.resources ?? []).filter((r: any) => r.status !== 'Synced' || (r.health && r.health.status !== 'Healthy'))
      .map((r: any) => `${r.kind}/${r.namespace ? `${r.namespace}/` : ''}${r.name}: ${r.status} ${r.health?.status ?? ''} ${r.health?.message ?? ''}`.trim()),
  };
}

/** Whether the Application is Synced to `revision`, Healthy, and its last sync (of that revision) Succeeded. */
export function syncedHealthyAt(app: Record<string, any>, revision: string): boolean {
  const s = app.status ?? {};
  const op = s.operationState;
  return s.sync?.status === 'Synced' && s.sync?.revision === revision && s.health?.status === 'Healthy' &&
    op?.phase === 'Succeeded' && op?.syncResult?.revision === revision;
}

/** Waits until syncedHealthyAt; the timeout's message says where the Application stands. */
export async function waitSyncedHealthy(client: RawClient, name: string, revision: string, timeoutMs: number): Promise<Record<string, any>> {
  let last: Record<string, any> = {};
  try {
    return await eventually(`Application ${name} Synced and Healthy at ${revision.slice(0, 8)}`, async () => {
      last = await readApp(client, name);
      return syncedHealthyAt(last, revision) ? last : undefined;
    }, timeoutMs, 250);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n  ${JSON.stringify(appSummary(last), null, 2)}`);
  }
}

/** What refresh() saw of a refresh it asked for. */
export interface RefreshTaken {
  /** How many times the request was made (more than 1: the controller had not picked it up, see refresh()). */
  readonly requests: number;
  /** status.reconciledAt before the request and after the refresh (whole seconds, as Argo CD writes it). */
  readonly reconciledAtBefore?: string;
  readonly reconciledAt: string;
  /** The controller's "Refreshing app status (<type> refresh requested)" lines for the Application since the first request. */
  readonly loggedRefreshes: number;
  /** First request → annotations removed (ms). */
  readonly ms: number;
}

const REFRESH = 'argocd.argoproj.io/refresh';
const REFRESH_TIMESTAMP = 'argocd.argoproj.io/refresh-timestamp';
const pointer = (key: string) => `/metadata/annotations/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;

/** The controller's log lines about the Application `name` in `text`. */
function appLines(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.includes(` application=${name} `) || l.endsWith(` application=${name}`));
}
function readFrom(file: string, offset: number): string {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.max(0, size - offset));
    fs.readSync(fd, buf, 0, buf.length, offset);
    return buf.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Asks the controller for a refresh and waits until it has done one for this request. `normal`
 * re-resolves the branch, as Argo CD's git webhook does after a push; `hard` also regenerates the
 * manifests, bypassing the repo server's cache. `controllerLog` is the application controller's
 * log file (evidence, and the tail a timeout shows).
 *
 * The request is what Argo CD's own RefreshApp (API server, CLI, webhook) writes: the refresh
 * annotation and a refresh-timestamp naming this request. The controller removes both when it has
 * compared the Application for it, with a JSON patch that first tests the timestamp, so a removal
 * is of this request and no other (controller/appcontroller.go, handleRefreshAnnotation).
 *
 * The controller can miss a request: it writes the answer of its own patches back into its
 * informer's store (PatchAppWithWriteBack), and when the answer to its removal of the previous
 * request arrives after the watch event of this one, the store goes back to the copy without the
 * annotation. The reconcile that event queued then reads that copy, finds nothing to refresh
 * (needRefreshAppStatus) and queues nothing more; the request waits for the informer's resync
 * (timeout.reconciliation, 120 s, plus jitter). So when the controller has not started a refresh
 * for the request (no "Refreshing app status (<type> refresh requested)" line for the Application
 * in its log) within `retryAfterMs`, the request is made again with a new timestamp: a new watch
 * event, which puts the annotation back into the store (the controller then removes it after the
 * refresh it does for the new timestamp; one started for the old one leaves it, having seen it
 * change). Only while the annotations still name the last request (a test op on its timestamp):
 * once the controller took it, nothing is re-added.
 *
 * A refresh is shown taken by the annotations gone and status.reconciledAt (set when the
 * comparison starts, in whole seconds) at or after the second of the request; the request is made
 * in a later second than the reconciledAt before it, so that the new one is later.
 */
export async function refresh(client: RawClient, name: string, type: 'normal' | 'hard', controllerLog: string,
  opts: { timeoutMs?: number; retryAfterMs?: number } = {}): Promise<RefreshTaken> {
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const retryAfterMs = opts.retryAfterMs ?? 10_000;
  const started = new RegExp(`msg="Refreshing app status \\(${type} refresh requested\\)`);
  const before = await readApp(client, name);
  const reconciledAtBefore: string | undefined = before.status?.reconciledAt;
  if (reconciledAtBefore) {
    const next = Date.parse(reconciledAtBefore) + 1000;
    await eventually('the second after the last reconciledAt', async () => Date.now() >= next, 2_000, 20);
  }
  const logStart = fs.statSync(controllerLog).size;
  const t0 = Date.now();
  const firstSecond = Math.floor(t0 / 1000) * 1000;
  let stamp = new Date().toISOString();
  await client.mergePatch(appPath(name), { metadata: { annotations: { [REFRESH]: type, [REFRESH_TIMESTAMP]: stamp } } });
  let requests = 1;
  let lastRequest = Date.now();
  let lastLogOffset = logStart;
  let app: Record<string, any> = before;
  while (Date.now() - t0 < timeoutMs) {
    app = await readApp(client, name);
    const annotations = app.metadata.annotations ?? {};
    if (annotations[REFRESH] === undefined) {
      const reconciledAt: string | undefined = app.status?.reconciledAt;
      const loggedRefreshes = appLines(readFrom(controllerLog, logStart), name).filter((l) => started.test(l)).length;
      if (!reconciledAt || Date.parse(reconciledAt) < firstSecond || loggedRefreshes === 0) {
        throw new Error(`Application ${name}: the ${type} refresh annotations were removed, but no refresh for them shows ` +
          `(reconciledAt ${reconciledAt} before ${reconciledAtBefore}, request at ${new Date(t0).toISOString()}; ${loggedRefreshes} refresh lines logged)`);
      }
      return { requests, reconciledAtBefore, reconciledAt, loggedRefreshes, ms: Date.now() - t0 };
    }
    // Once the controller has started a refresh for the request, it is given longer: a refresh that
    // started but whose removal failed (an API error is only logged) is not retried by it either.
    const startedSinceLast = appLines(readFrom(controllerLog, lastLogOffset), name).some((l) => started.test(l));
    if (Date.now() - lastRequest >= (startedSinceLast ? 4 : 1) * retryAfterMs && annotations[REFRESH_TIMESTAMP] === stamp) {
      const next = new Date().toISOString();
      const offset = fs.statSync(controllerLog).size;
      try {
        await client.jsonPatch(appPath(name), [
          { op: 'test', path: pointer(REFRESH_TIMESTAMP), value: stamp },
          { op: 'replace', path: pointer(REFRESH_TIMESTAMP), value: next },
        ]);
        stamp = next;
        requests++;
        lastRequest = Date.now();
        lastLogOffset = offset;
      } catch (e) {
        // 422: the test op failed, the controller removed the annotations meanwhile (taken; seen above next time).
        if (!(e instanceof ApiError && e.statusCode === 422)) throw e;
      }
    }
    await sleep(200);
  }
  const tail = readFrom(controllerLog, logStart).split('\n').filter(Boolean).slice(-40);
  throw new Error(`timed out after ${timeoutMs} ms waiting for Application ${name} to take a ${type} refresh (requested ${requests} times, ` +
    `annotations ${JSON.stringify(app.metadata?.annotations ?? {})}, reconciledAt ${app.status?.reconciledAt}, before ${reconciledAtBefore})\n` +
    `  ${JSON.stringify(appSummary(app), null, 2)}\n  controller log since the first request (last ${tail.length} lines of ${controllerLog}):\n    ${tail.join('\n    ')}`);
}

/** The Argo CD health of one of the Application's resources, as status.resources reports it. */
export function resourceHealth(app: Record<string, any>, kind: string, name: string, namespace?: string): { status?: string; message?: string } | undefined {
  return (app.status?.resources ?? []).find((r: any) => r.kind === kind && r.name === name && (r.namespace || undefined) === namespace)?.health;
}
