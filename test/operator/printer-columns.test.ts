import * as https from 'node:https';
import { API_VERSION, KIND } from '../../constructs/api/spec';
import { collectionPath } from '../../src/k8s/resources';
import { createTestNamespace, rawClient, testKubeConfig } from '../../platform/cluster';
import { ensureCrd } from './helpers';

/** GET `path` as a meta.k8s.io Table: what `kubectl get` prints, computed by the API server from the CRD's printer columns. */
async function table(path: string): Promise<Record<string, any>> {
  const kc = testKubeConfig();
  const opts: https.RequestOptions = { headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' } };
  await kc.applyToHTTPSOptions(opts);
  const url = new URL(path, kc.getCurrentCluster()!.server);
  return new Promise((resolve, reject) => {
    https.get(url, opts, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`GET ${path} as Table: ${res.statusCode} ${body}`))));
    }).on('error', reject);
  });
}

test('kubectl get pipelinesidecars: the Selector column shows pipelineRef and matchLabels, whichever are set', async () => {
  await ensureCrd();
  const ns = await createTestNamespace('printer');
  const path = collectionPath(API_VERSION, KIND, ns);
  const create = (name: string, selector: Record<string, unknown>) =>
    rawClient().create(path, { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec: { kind: 'Registry', selector } });
  await create('both', { pipelineRef: 'build', matchLabels: { team: 'a' } });
  await create('labels', { matchLabels: { team: 'b' } });
  await create('ref', { pipelineRef: 'deploy' });

  const t = await table(path);
  const col = t.columnDefinitions.findIndex((c: any) => c.name === 'Selector');
  expect(col).toBeGreaterThan(0);
  const cells = Object.fromEntries(t.rows.map((r: any) => [r.object.metadata.name, String(r.cells[col])]));
  expect(cells.both).toContain('build');
  expect(cells.both).toContain('team');
  expect(cells.labels).toContain('team');
  expect(cells.labels).toContain('b');
  expect(cells.ref).toContain('deploy');
  expect(cells.ref).not.toContain('matchLabels');
});
