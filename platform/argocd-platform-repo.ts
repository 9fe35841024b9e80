import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { API_VERSION, KIND } from '../constructs/api/spec';

/**
 * The platform team's GitOps repository as the Argo CD tests commit it: the directory the
 * example Application syncs (dist/), holding the install bundle made for the team's image and
 * namespace, and the team's PipelineSidecars.
 */

const REPO = path.resolve(__dirname, '..');
/** Where the repository's manifests live: what `cdk8s synth` writes, and the example Application's `path`. */
export const DIST = 'dist';

export interface PlatformRepoInput {
  /** The operator image the bundle runs. */
  readonly image: string;
  /** The team's namespace: served, and privileged (its DockerDaemon runs there). */
  readonly servedNamespace: string;
  /** The team's PipelineSidecars, by name. */
  readonly sidecars: Record<string, Record<string, unknown>>;
}

/**
 * THE REPOSITORY'S CONTENT, file name → text, for one commit. This is the one place that makes it:
 * the bundle from `pipeline-sidecars synth --served-namespace NS --privileged-namespace NS --image
 * IMAGE` (what InstallBundle synthesizes for those props) and the PipelineSidecars as YAML beside
 * it. examples/gitops-repo/ (a cdk8s app composing InstallBundle with the team's PipelineSidecars,
 * whose `cdk8s synth` writes dist/) is to produce the same; switch this function to it.
 */
export function platformRepoContent(p: PlatformRepoInput): Record<string, string> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-sidecars-synth-'));
  try {
    execFileSync(process.execPath, [path.join(REPO, 'bin', 'pipeline-sidecars'), 'synth', '--out', out,
      '--served-namespace', p.servedNamespace, '--privileged-namespace', p.servedNamespace, '--image', p.image], { cwd: REPO, stdio: 'pipe' });
    const files: Record<string, string> = {};
    for (const f of fs.readdirSync(out).sort()) files[f] = fs.readFileSync(path.join(out, f), 'utf8');
    files['team-sidecars.yaml'] = Object.entries(p.sidecars)
      .map(([name, spec]) => stringify({ apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace: p.servedNamespace }, spec }))
      .join('---\n');
    return files;
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

/** Every object of the content, in file order. */
export function objectsOf(files: Record<string, string>): Array<Record<string, any>> {
  return Object.keys(files).sort().flatMap((f) => parseAllDocuments(files[f]).map((d) => d.toJSON())).filter(Boolean);
}

/** An object's Argo CD sync wave (0 when it has none). */
export function waveOf(obj: Record<string, any>): number {
  return Number(obj.metadata?.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
}
