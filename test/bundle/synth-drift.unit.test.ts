import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeInstallBundle } from '../../constructs/bundle/main';

const DIST = path.join(__dirname, '..', '..', 'dist');

/** Every file under `dir` (relative paths, sorted) with its bytes. */
function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else out.set(path.relative(dir, p), fs.readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** Files that differ between two snapshots (missing on either side, or different bytes). */
function differences(a: Map<string, Buffer>, b: Map<string, Buffer>): string[] {
  const names = [...new Set([...a.keys(), ...b.keys()])].sort();
  return names.filter((n) => !a.has(n) || !b.has(n) || !a.get(n)!.equals(b.get(n)!));
}

/** The committed install bundle is exactly what the code synthesizes, and synthesis is deterministic. */
describe('install bundle drift (dist/)', () => {
  const tmp: string[] = [];
  const freshSynth = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-bundle-'));
    tmp.push(dir);
    writeInstallBundle(dir);
    return dir;
  };
  afterAll(() => { for (const d of tmp) fs.rmSync(d, { recursive: true, force: true }); });

  test('committed dist/ is byte-identical to a fresh synth (run `npm run synth` if this fails)', () => {
    const fresh = snapshot(freshSynth());
    const committed = snapshot(DIST);
    expect(fresh.size).toBeGreaterThan(0);
    expect([...committed.keys()]).toEqual([...fresh.keys()]);
    expect(differences(committed, fresh)).toEqual([]);
  });

  test('two synths give byte-identical files', () => {
    const a = snapshot(freshSynth());
    const b = snapshot(freshSynth());
    expect([...a.keys()]).toEqual(['pipeline-sidecars.k8s.yaml']);
    expect(differences(a, b)).toEqual([]);
  });

  test('the comparison notices a one-byte change', () => {
    const dir = freshSynth();
    const a = snapshot(dir);
    const file = path.join(dir, 'pipeline-sidecars.k8s.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('replicas: 2', 'replicas: 3'));
    expect(differences(a, snapshot(dir))).toEqual(['pipeline-sidecars.k8s.yaml']);
  });

  test('a stale file left in the output directory is removed by the next synth', () => {
    const dir = freshSynth();
    fs.writeFileSync(path.join(dir, 'old-name.k8s.yaml'), 'kind: Stale\n');
    writeInstallBundle(dir);
    expect(fs.readdirSync(dir).sort()).toEqual(['pipeline-sidecars.k8s.yaml']);
  });
});
