import { sidecarProvenance } from '../../src/provenance';

const sc = (name: string, kind = 'DockerDaemon') => ({ name, spec: { kind } as any });
const pod = (name: string, sidecar: string, o: { ready?: boolean; deleting?: boolean; imageID?: string } = {}) => ({
  metadata: { name, labels: { sidecar }, ...(o.deleting ? { deletionTimestamp: 'x' } : {}) },
  status: {
    conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
    containerStatuses: [{ name: 'dind', image: 'docker:27-dind', ...(o.imageID ? { imageID: o.imageID } : {}) }],
  },
});
const sidecarOf = (p: any) => p.metadata.labels.sidecar;
const D1 = 'docker.io/library/docker@sha256:' + '1'.repeat(64);

describe('sidecarProvenance: which images served a run', () => {
  test.each<[string, any[], any[], any[]]>([
    ['the Ready pod, by digest', [sc('docker')], [pod('d-1', 'docker', { imageID: D1 })],
      [{ sidecar: 'docker', kind: 'DockerDaemon', pod: 'd-1', containers: [{ name: 'dind', image: 'docker:27-dind', imageID: D1 }] }]],
    ['a pod not Ready, or being deleted, did not serve', [sc('docker')], [pod('d-old', 'docker', { deleting: true, imageID: D1 }), pod('d-new', 'docker', { ready: false })],
      [{ sidecar: 'docker', kind: 'DockerDaemon', pod: '', containers: [] }]],
    ['each sidecar its own pod; another sidecar\'s pod is not taken', [sc('docker'), sc('db', 'Postgres')], [pod('db-1', 'db'), pod('d-1', 'docker', { imageID: D1 })],
      [{ sidecar: 'docker', kind: 'DockerDaemon', pod: 'd-1', containers: [{ name: 'dind', image: 'docker:27-dind', imageID: D1 }] },
        { sidecar: 'db', kind: 'Postgres', pod: 'db-1', containers: [{ name: 'dind', image: 'docker:27-dind' }] }]],
  ])('%s', (_why, sidecars, pods, want) => expect(sidecarProvenance(sidecars, pods as any, sidecarOf)).toEqual(want));
});
