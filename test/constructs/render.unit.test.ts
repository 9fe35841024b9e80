import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { X509Certificate } from 'node:crypto';
import * as YAML from 'yaml';
import { MAX_SIDECAR_NAME_LENGTH } from '../../constructs/api/crd';
import { main } from '../../src/cli';
import { parseDocs, REDACTED, renderRuns, toYaml } from '../../src/render';
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

  test('the CLI prints valid multi-doc YAML: the run as admitted, then exactly those manifests', async () => {
    const { code, out } = await captureStdout(() => main(['render', ...FILES.flatMap(f => ['-f', f])]));
    expect(code).toBe(0);
    const parsed = YAML.parseAllDocuments(out).map(d => d.toJS());
    expect(parsed.map(o => o.kind)).toEqual(['PipelineRun', 'ServiceAccount', 'Secret', 'Secret', 'Service', 'NetworkPolicy', 'Deployment']);
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

const tmpDirs: string[] = [];
afterAll(() => { for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true }); });

/** The example's documents as YAML files in a temp dir, with `edit` applied to the PipelineSidecar. */
function withSidecar(edit: (cr: Record<string, any>) => Record<string, any>, runEdit: (run: Record<string, any>) => Record<string, any> = r => r): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-render-'));
  tmpDirs.push(dir);
  const byKind = Object.fromEntries(docs().map(d => [d.kind, d]));
  const files: Record<string, Record<string, any>> = {
    'run.yaml': runEdit(byKind.PipelineRun), 'pipeline.yaml': byKind.Pipeline, 'sidecars.yaml': edit(byKind.PipelineSidecar),
  };
  return Object.entries(files).map(([f, d]) => { fs.writeFileSync(path.join(dir, f), YAML.stringify(d)); return path.join(dir, f); });
}
const asks = (name: string) => (run: Record<string, any>) => ({ ...run, metadata: { ...run.metadata, annotations: { 'pipeline-sidecars.dev/sidecars': name } } });
const args = (files: string[]) => ['render', ...files.flatMap(f => ['-f', f])];

describe('render checks its input as the cluster would', () => {
  test(`a PipelineSidecar name over the CRD's ${MAX_SIDECAR_NAME_LENGTH} characters is refused, naming the file; at the limit it renders`, async () => {
    const at = 'd'.repeat(MAX_SIDECAR_NAME_LENGTH);
    const ok = await captureStdout(() => main(args(withSidecar(cr => ({ ...cr, metadata: { ...cr.metadata, name: at } }), asks(at)))));
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    const over = `${at}d`;
    const files = withSidecar(cr => ({ ...cr, metadata: { ...cr.metadata, name: over } }), asks(over));
    const bad = await captureStdout(() => main(args(files)));
    expect(bad.code).toBe(1);
    expect(bad.err).toBe(`render: ${files[2]}: PipelineSidecar "${over}" is ${over.length} characters long; the CRD allows at most ${MAX_SIDECAR_NAME_LENGTH} ` +
      '(object names are <name>-<run id>-client and must fit in 63): shorten it\n');
  });

  test('a document of a kind render does not read is an error naming the file and the kind', async () => {
    const typo = withSidecar(cr => ({ ...cr, kind: 'PipelineSidecars' }));
    const r = await captureStdout(() => main(args(typo)));
    expect(r.code).toBe(1);
    expect(r.err).toBe(`render: ${typo[2]}: unknown kind "PipelineSidecars" (did you mean PipelineSidecar?); ` +
      'render reads PipelineRun, Pipeline, PipelineSidecar: fix the kind or leave the document out\n');
    const noKind = withSidecar(({ kind: _k, ...cr }) => cr);
    expect((await captureStdout(() => main(args(noKind)))).err).toMatch(/sidecars\.yaml: a document without a kind; render reads/);
    // The same files without the mistake render (negative control).
    expect((await captureStdout(() => main(args(withSidecar(cr => cr))))).code).toBe(0);
  });

  test('a PipelineSidecar of a kind render does not know points to --kinds', async () => {
    const files = withSidecar(cr => ({ ...cr, spec: { ...cr.spec, kind: 'Redis', dockerDaemon: undefined } }));
    const r = await captureStdout(() => main(args(files)));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/sidecars\.yaml: PipelineSidecar docker-daemon has kind "Redis", which render does not know .*: load the module that adds it with --kinds MODULE/);
  });

  test('a missing file is one line naming it', async () => {
    const r = await captureStdout(() => main(['render', '-f', FILES[0], '-f', '/nonexistent/run.yaml']));
    expect(r).toEqual({ code: 1, out: '', err: 'render: no such file: /nonexistent/run.yaml\n' });
  });
});

describe('render shows the run as the webhook admits it', () => {
  test('gated, with its run id, the sidecar\'s param and the client certificate workspace', async () => {
    const input = docs();
    const [r] = await renderRuns(input);
    const run = r.admitted!;
    expect(run.spec.status).toBe('PipelineRunPending');
    expect(run.metadata.annotations['pipeline-sidecars.dev/run-id']).toBe(r.run.runId);
    expect(run.metadata.labels['pipeline-sidecars.dev/admitted']).toBe(r.run.runId);
    expect(run.spec.params).toContainEqual({ name: 'docker-host', value: `tcp://${r.sidecars[0].host}:2376` });
    expect(run.spec.workspaces).toContainEqual({ name: 'docker-tls-certs', secret: { secretName: r.sidecars[0].clientSecretName } });
    // The input run said none of it: the webhook's decision did.
    const given = input.find(d => d.kind === 'PipelineRun')!;
    expect(given.spec.status).toBeUndefined();
    expect(given.spec.params.map((p: any) => p.name)).toEqual(['image']);
  });

  test('a run the webhook would refuse is refused with the webhook\'s reason', async () => {
    const input = docs().map(d => d.kind === 'PipelineRun' ? { ...d, spec: { ...d.spec, params: [{ name: 'x', value: '$(sidecars.docker-daemon.hots)' }] } } : d);
    await expect(renderRuns(input)).rejects.toThrow(/PipelineRun build-42: the webhook would refuse it: .*sidecars\.docker-daemon\.hots/);
  });

  test('fallback mode has no webhook, so no admitted run', async () => {
    const [r] = await renderRuns(docs(), { naming: 'runName' });
    expect(r.admitted).toBeUndefined();
    expect(YAML.parseAllDocuments(toYaml([r])).map(d => d.toJS().kind)).not.toContain('PipelineRun');
  });
});

describe('render redacts private keys', () => {
  /** The client and the server Secret of the output. */
  const secrets = (out: string) => {
    const all = YAML.parseAllDocuments(out).map(d => d.toJS()).filter(o => o.kind === 'Secret');
    return ['-client', '-server'].map(suffix => all.find(o => o.metadata.name.endsWith(suffix)));
  };
  const pem = (v: string) => Buffer.from(v, 'base64').toString('utf8');

  test('by default every private key reads as redacted, certificates do not', async () => {
    const { code, out } = await captureStdout(() => main(args(FILES)));
    expect(code).toBe(0);
    const [client, server] = secrets(out);
    expect(client.data['key.pem']).toBe(REDACTED);
    expect(server.data['key.pem']).toBe(REDACTED);
    expect(server.data['client-key.pem']).toBe(REDACTED);
    expect(pem(server.data['cert.pem'])).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(out).toMatch(/# private keys are redacted; --show-secrets prints them/);
  });

  test('--show-secrets prints them (the control: the check above sees real keys)', async () => {
    const { code, out } = await captureStdout(() => main([...args(FILES), '--show-secrets']));
    expect(code).toBe(0);
    const [client, server] = secrets(out);
    for (const v of [client.data['key.pem'], server.data['key.pem'], server.data['client-key.pem']]) expect(pem(v)).toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    expect(out).not.toMatch(/redacted/);
  });
});
