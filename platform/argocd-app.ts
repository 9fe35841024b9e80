import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { RawClient } from '../src/k8s/raw';
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

/**
 * Asks the controller for a refresh and waits until it took it (it removes the annotation when it
 * has compared the Application again). `normal` re-resolves the branch, as Argo CD's git webhook
 * does after a push; `hard` also regenerates the manifests, bypassing the repo server's cache.
 */
export async function refresh(client: RawClient, name: string, type: 'normal' | 'hard', timeoutMs = 120_000): Promise<void> {
  const key = 'argocd.argoproj.io/refresh';
  await client.mergePatch(appPath(name), { metadata: { annotations: { [key]: type } } });
  await eventually(`Application ${name} ${type} refresh taken`, async () => (await readApp(client, name)).metadata.annotations?.[key] === undefined, timeoutMs, 200);
}

/** The Argo CD health of one of the Application's resources, as status.resources reports it. */
export function resourceHealth(app: Record<string, any>, kind: string, name: string, namespace?: string): { status?: string; message?: string } | undefined {
  return (app.status?.resources ?? []).find((r: any) => r.kind === kind && r.name === name && (r.namespace || undefined) === namespace)?.health;
}
