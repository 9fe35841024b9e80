import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../src/cli';

const DIST_FILE = path.join(__dirname, '..', '..', 'dist', 'pipeline-sidecars.k8s.yaml');

/** `pipeline-sidecars synth` writes the same bundle as `npm run synth`, with its options applied. */
describe('pipeline-sidecars synth', () => {
  const dirs: string[] = [];
  const tmp = () => { const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-cli-synth-')); dirs.push(d); return d; };
  let out: jest.SpyInstance;
  beforeEach(() => { out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true); });
  afterEach(() => out.mockRestore());
  afterAll(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

  test('with no options: byte-identical to the committed dist/', async () => {
    const d = tmp();
    expect(await main(['synth', '--out', d])).toBe(0);
    expect(fs.readFileSync(path.join(d, 'pipeline-sidecars.k8s.yaml'), 'utf8')).toBe(fs.readFileSync(DIST_FILE, 'utf8'));
  });

  test('--image, --served-namespace: the image changes in one place, the namespace is onboarded', async () => {
    const d = tmp();
    expect(await main(['synth', '--out', d, '--image', 'registry.example/ps:9.9.9', '--served-namespace', 'team-a'])).toBe(0);
    const yaml = fs.readFileSync(path.join(d, 'pipeline-sidecars.k8s.yaml'), 'utf8');
    expect(yaml.match(/registry\.example\/ps:9\.9\.9/g)).toHaveLength(1);
    expect(yaml).not.toMatch(/ghcr\.io\/pipeline-sidecars\/operator/);
    expect(yaml).toMatch(/kind: RoleBinding\nmetadata:\n(.*\n)*?  namespace: team-a/);
    expect(yaml).toMatch(/- --watch-namespace\n\s+- team-a/);
  });

  test('bad options exit non-zero without writing', async () => {
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const d = tmp();
      expect(await main(['synth', '--out', d, '--replicas', 'two'])).toBe(1);
      expect(await main(['synth', '--out', d, '--no-such-flag'])).toBe(2);
      expect(fs.readdirSync(d)).toEqual([]);
    } finally {
      err.mockRestore();
    }
  });
});
