import { PipelineSidecarResource } from '../../constructs';
import { selectSidecars, selectorMatches } from '../../src/selection';

function cr(name: string, selector?: PipelineSidecarResource['spec']['selector'], namespace = 'ci'): PipelineSidecarResource {
  return { apiVersion: 'pipeline-sidecars.dev/v1alpha1', kind: 'PipelineSidecar', metadata: { name, namespace }, spec: { kind: 'Registry', selector } };
}
const ANN = 'pipeline-sidecars.dev/sidecars';

describe('selectSidecars', () => {
  const crs = [cr('docker'), cr('db', { pipelineRef: 'build' }), cr('cache', { matchLabels: { team: 'web' } }), cr('both', { pipelineRef: 'build', matchLabels: { team: 'web' } }), cr('elsewhere', { pipelineRef: 'build' }, 'other')];

  test('by the run\'s annotation, trimmed and deduplicated', () => {
    const run = { metadata: { namespace: 'ci', annotations: { [ANN]: ' docker , docker,' } } };
    expect(selectSidecars(run, undefined, crs)).toEqual({ names: ['docker'], unknown: [] });
  });

  test('by the Pipeline\'s annotation', () => {
    const run = { metadata: { namespace: 'ci' } };
    expect(selectSidecars(run, { metadata: { annotations: { [ANN]: 'docker' } } }, crs).names).toEqual(['docker']);
  });

  test('by selector: pipelineRef, labels, and both must match when both are set; other namespaces never', () => {
    const run = { metadata: { namespace: 'ci', labels: { team: 'web' } }, spec: { pipelineRef: { name: 'build' } } };
    expect(selectSidecars(run, undefined, crs).names).toEqual(['both', 'cache', 'db']);
    const noLabels = { metadata: { namespace: 'ci' }, spec: { pipelineRef: { name: 'build' } } };
    expect(selectSidecars(noLabels, undefined, crs).names).toEqual(['db']);
    const otherPipeline = { metadata: { namespace: 'ci', labels: { team: 'web' } }, spec: { pipelineRef: { name: 'deploy' } } };
    expect(selectSidecars(otherPipeline, undefined, crs).names).toEqual(['cache']);
  });

  test('an empty selector matches no run', () => {
    expect(selectorMatches(cr('x', {}), { metadata: { labels: { a: 'b' } }, spec: { pipelineRef: { name: 'p' } } })).toBe(false);
    expect(selectorMatches(cr('x'), { metadata: {} })).toBe(false);
  });

  test('names asked for without a PipelineSidecar are reported, not selected', () => {
    const run = { metadata: { namespace: 'ci', annotations: { [ANN]: 'docker,postgres,elsewhere' } } };
    expect(selectSidecars(run, undefined, crs)).toEqual({ names: ['docker'], unknown: ['elsewhere', 'postgres'] });
  });
});
