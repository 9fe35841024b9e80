import { ANNOTATIONS, LABELS, PipelineSidecarResource } from '../../constructs/api/spec';
import { defaultKinds } from '../../constructs/kinds';
import { admissionPatch, admitPipelineRun, withoutReservedKeys } from '../../src/admission';
import { tepPipeline } from './helpers';

const kinds = defaultKinds();
const cr = (name: string, spec: Record<string, unknown>): PipelineSidecarResource => ({ apiVersion: 'pipeline-sidecars.dev/v1alpha1', kind: 'PipelineSidecar', metadata: { name, namespace: 'ci' }, spec: spec as any });
const docker = cr('docker-daemon', { kind: 'DockerDaemon', expose: { params: [{ name: 'docker-host', value: 'tcp://$(host):$(port)' }, { name: 'not-declared', value: 'x' }], workspace: 'docker-tls-certs' } });

test('TEP-0130 as written: a Pipeline param default using $(sidecars.docker-daemon.host) becomes a resolved run param', () => {
  const pipeline = tepPipeline();
  pipeline.spec.params = [{ name: 'image' }, { name: 'docker-host', default: '$(sidecars.docker-daemon.host):2376' }];
  const d = admitPipelineRun({
    run: { metadata: { generateName: 'x-' }, spec: { pipelineRef: { name: 'ci-with-docker-build' }, params: [{ name: 'image', value: 'a' }] } },
    namespace: 'ci', pipeline: { metadata: { name: 'ci-with-docker-build' }, ...pipeline }, sidecars: [cr('docker-daemon', { kind: 'DockerDaemon' })], kinds, runId: 'abcd1234',
  });
  if (!d.allowed) throw new Error(d.message);
  // Referenced, so asked for, though nothing names it in an annotation.
  expect(d.sidecars).toEqual(['docker-daemon']);
  expect(d.mutated!.spec.params).toEqual([{ name: 'image', value: 'a' }, { name: 'docker-host', value: 'docker-daemon-abcd1234.ci.svc:2376' }]);
});

test('expose: only declared params, never over a value the user set; workspace bound only if declared and unbound', () => {
  const run = {
    metadata: { name: 'r', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon' } },
    spec: { pipelineSpec: { params: [{ name: 'docker-host' }], workspaces: [{ name: 'docker-tls-certs' }], tasks: [] } },
  };
  const d = admitPipelineRun({ run, namespace: 'ci', sidecars: [docker], kinds, runId: 'abcd1234' });
  if (!d.allowed) throw new Error(d.message);
  expect(d.mutated!.spec.params).toEqual([{ name: 'docker-host', value: 'tcp://docker-daemon-abcd1234.ci.svc:2376' }]);
  expect(d.mutated!.spec.workspaces).toEqual([{ name: 'docker-tls-certs', secret: { secretName: 'docker-daemon-abcd1234-client' } }]);
  expect(d.mutated!.spec.status).toBe('PipelineRunPending');
  expect(d.mutated!.metadata.annotations[ANNOTATIONS.gated]).toBe('true');

  const own = admitPipelineRun({ run: { ...run, spec: { ...run.spec, params: [{ name: 'docker-host', value: 'tcp://mine:2376' }], workspaces: [{ name: 'docker-tls-certs', emptyDir: {} }] } }, namespace: 'ci', sidecars: [docker], kinds, runId: 'abcd1234' });
  if (!own.allowed) throw new Error(own.message);
  expect(own.mutated!.spec.params).toEqual([{ name: 'docker-host', value: 'tcp://mine:2376' }]);
  expect(own.mutated!.spec.workspaces).toEqual([{ name: 'docker-tls-certs', emptyDir: {} }]);
});

test('a run that asks for nothing is not touched; a run asking for a missing sidecar is refused by name', () => {
  const plain = admitPipelineRun({ run: { metadata: { name: 'r' }, spec: { pipelineRef: { name: 'p' } } }, namespace: 'ci', sidecars: [docker], kinds });
  expect(plain).toEqual({ allowed: true, sidecars: [], warnings: [] });
  const missing = admitPipelineRun({ run: { metadata: { name: 'r', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon, buildkit' } }, spec: {} }, namespace: 'ci', sidecars: [docker], kinds });
  expect(missing.allowed).toBe(false);
  if (!missing.allowed) expect(missing.message).toContain('"buildkit"');
});

test('the patch only replaces annotations and spec', () => {
  const before = { metadata: { name: 'r', labels: { a: 'b' } }, spec: { params: [] } };
  const after = { metadata: { name: 'r', labels: { a: 'b' }, annotations: { x: 'y' } }, spec: { params: [], status: 'PipelineRunPending' } };
  expect(admissionPatch(before, after)).toEqual([
    { op: 'add', path: '/metadata/annotations', value: { x: 'y' } },
    { op: 'replace', path: '/spec', value: after.spec },
  ]);
});

test.each([
  ['nothing of ours', { a: 'b' }, { app: 'x' }, [], { a: 'b' }, { app: 'x' }],
  ['the sidecars annotation is the user\'s', { [ANNOTATIONS.sidecars]: 'x' }, undefined, [], { [ANNOTATIONS.sidecars]: 'x' }, undefined],
  ['bookkeeping annotations go', { [ANNOTATIONS.runId]: 'v', [ANNOTATIONS.started]: 't', [ANNOTATIONS.gated]: 'true', 'pipeline-sidecars.dev/cancelled': 't', keep: '1' }, undefined,
    ['annotation pipeline-sidecars.dev/run-id', 'annotation pipeline-sidecars.dev/started', 'annotation pipeline-sidecars.dev/gated', 'annotation pipeline-sidecars.dev/cancelled'], { keep: '1' }, undefined],
  ['every label of ours goes, sidecars included', undefined, { [LABELS.admitted]: 'v', [LABELS.runId]: 'v', 'pipeline-sidecars.dev/sidecars': 'x', app: 'x' },
    ['label pipeline-sidecars.dev/admitted', 'label pipeline-sidecars.dev/run-id', 'label pipeline-sidecars.dev/sidecars'], undefined, { app: 'x' }],
  ['a look-alike prefix stays', { 'pipeline-sidecars.dev.evil/run-id': 'v', 'x.pipeline-sidecars.dev/run-id': 'v' }, undefined, [], { 'pipeline-sidecars.dev.evil/run-id': 'v', 'x.pipeline-sidecars.dev/run-id': 'v' }, undefined],
])('withoutReservedKeys: %s', (_name, annotations, labels, removed, keptAnnotations, keptLabels) => {
  const r = withoutReservedKeys({ name: 'r', ...(annotations ? { annotations } : {}), ...(labels ? { labels } : {}) });
  expect(r.removed).toEqual(removed);
  expect(r.metadata.annotations).toEqual(keptAnnotations);
  expect(r.metadata.labels).toEqual(keptLabels);
  expect(r.metadata.name).toBe('r');
});

test('the patch replaces labels too, and empties a map that lost every key', () => {
  const before = { metadata: { name: 'r', labels: { [LABELS.runId]: 'v' }, annotations: { [ANNOTATIONS.runId]: 'v' } }, spec: {} };
  const after = { metadata: { name: 'r', labels: {}, annotations: {} }, spec: {} };
  expect(admissionPatch(before, after)).toEqual([
    { op: 'add', path: '/metadata/annotations', value: {} },
    { op: 'add', path: '/metadata/labels', value: {} },
  ]);
  // Negative control: nothing changed, nothing patched (absent and empty are the same).
  expect(admissionPatch({ metadata: { name: 'r' }, spec: {} }, { metadata: { name: 'r', labels: {} }, spec: {} })).toEqual([]);
});

test('a run that arrives already pending is not marked gated: its owner releases it', () => {
  const run = {
    metadata: { name: 'r', annotations: { [ANNOTATIONS.sidecars]: 'docker-daemon' } },
    spec: { pipelineSpec: { tasks: [] }, status: 'PipelineRunPending' },
  };
  const d = admitPipelineRun({ run, namespace: 'ci', sidecars: [docker], kinds, runId: 'abcd1234' });
  if (!d.allowed) throw new Error(d.message);
  expect(d.mutated!.spec.status).toBe('PipelineRunPending');
  expect(d.mutated!.metadata.annotations[ANNOTATIONS.gated]).toBeUndefined();
  expect(d.mutated!.metadata.annotations[ANNOTATIONS.runId]).toBe('abcd1234');
  expect(d.warnings.join(' ')).toContain('whoever pended it releases it');
});
