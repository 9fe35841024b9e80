import * as fs from 'node:fs';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import * as YAML from 'yaml';
import { main } from '../../src/cli';
import { parseDocs, renderRuns, toYaml } from '../../src/render';
import { decode, one } from './fixtures';

const EX = path.join(__dirname, '..', '..', 'examples', 'docker-daemon');
const FILES = ['pipelinerun.yaml', 'pipeline.yaml', 'docker-daemon.yaml'].map(f => path.join(EX, f));

function docs() {
  return FILES.flatMap(f => parseDocs(fs.readFileSync(f, 'utf8'), f));
}

async function captureStdout(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s: any) => { out += s; return true; });
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s: any) => { err += s; return true; });
  try {
    return { code: await fn(), out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

describe('render', () => {
  test('the README example: the docker-daemon sidecar of build-42, with certs for its Service name', async () => {
    const [r] = await renderRuns(docs());
    expect(r.run.name).toBe('build-42');
    expect(r.sidecars.map(s => s.name)).toEqual(['docker-daemon']);
    const d = one(r.manifests, 'Deployment');
    expect(d.metadata.name).toBe(`docker-daemon-${r.run.runId}`);
    expect(d.spec.template.spec.volumes.find((v: any) => v.name === 'docker-graph').emptyDir).toEqual({ sizeLimit: '20Gi' });
    const cert = new X509Certificate(decode(one(r.manifests, 'Secret', `docker-daemon-${r.run.runId}-server`), 'cert.pem'));
    expect(cert.checkHost(r.sidecars[0].host)).toBe(r.sidecars[0].host);
  });

  test('run ids are stable between previews, and the annotation wins when present', async () => {
    const [a] = await renderRuns(docs());
    const [b] = await renderRuns(docs());
    expect(a.run.runId).toBe(b.run.runId);
    const withId = docs().map(d => d.kind === 'PipelineRun' ? { ...d, metadata: { ...d.metadata, annotations: { 'pipeline-sidecars.dev/run-id': 'abcd1234' } } } : d);
    const [c] = await renderRuns(withId);
    expect(c.run.runId).toBe('abcd1234');
    // Selected by the PipelineSidecar's selector even without the annotation.
    expect(c.sidecars.map(s => s.name)).toEqual(['docker-daemon']);
  });

  test('the CLI prints valid multi-doc YAML of exactly those manifests', async () => {
    const { code, out } = await captureStdout(() => main(['render', ...FILES.flatMap(f => ['-f', f])]));
    expect(code).toBe(0);
    const parsed = YAML.parseAllDocuments(out).map(d => d.toJS());
    expect(parsed.map(o => o.kind)).toEqual(['ServiceAccount', 'Secret', 'Secret', 'Service', 'NetworkPolicy', 'Deployment']);
    expect(out).toMatch(/^# PipelineRun ci\/build-42/);
  });

  test('fallback naming and privilege refusal are flags', async () => {
    const [r] = await renderRuns(docs(), { naming: 'runName' });
    expect(one(r.manifests, 'Service').metadata.name).toBe('build-42-docker-daemon');
    const { code, err } = await captureStdout(() => main(['render', '--no-privileged', ...FILES.flatMap(f => ['-f', f])]));
    expect(code).toBe(1);
    expect(err).toMatch(/allow-privileged/);
  });

  test('usage errors: no files, no run, a sidecar that is not given', async () => {
    expect((await captureStdout(() => main(['render']))).code).toBe(2);
    expect((await captureStdout(() => main(['nope']))).code).toBe(2);
    const noRun = await captureStdout(() => main(['render', '-f', FILES[2]]));
    expect(noRun.code).toBe(1);
    expect(noRun.err).toMatch(/no PipelineRun/);
    await expect(renderRuns(docs().filter(d => d.kind !== 'PipelineSidecar'))).rejects.toThrow(/docker-daemon; pass them with -f/);
    expect(toYaml([])).toBe('');
  });
});
