import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildOperatorJs } from '../../platform/work-dir';

/**
 * What `pipeline-sidecars run` loads, in a plain node on the compiled tree as the image runs it:
 * client-node costs ~70 MiB of RSS and cdk8s-plus and the YAML library more, so none of them may
 * come back through an import (k8s/kube-access.ts loads client-node only for what needs it).
 */
const HEAVY = ['@kubernetes/client-node', 'cdk8s-plus-27'];

let dir: string;
beforeAll(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-operator-modules-')); });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function loadedBy(user: string): string[] {
  const root = buildOperatorJs(['src', 'constructs']);
  const kubeconfig = path.join(dir, `config-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(kubeconfig, ['apiVersion: v1', 'kind: Config', 'current-context: x',
    'clusters:', '- name: c', '  cluster:', '    server: https://127.0.0.1:9',
    'users:', '- name: u', '  user:', ...user.split('\n').map((l) => `    ${l}`),
    'contexts:', '- name: x', '  context:', '    cluster: c', '    user: u', ''].join('\n'));
  const script = `
    require(${JSON.stringify(path.join(root, 'src/cli.js'))}); // the CLI's whole import graph
    const { operatorOptionsFromArgs } = require(${JSON.stringify(path.join(root, 'src/cli-run.js'))});
    operatorOptionsFromArgs(['--kubeconfig', process.argv[1]]);
    const pkgs = new Set(Object.keys(require.cache).map((k) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(k)?.[1]).filter(Boolean));
    process.stdout.write(JSON.stringify([...pkgs]));`;
  const r = spawnSync(process.execPath, ['-e', script, kubeconfig], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node exited ${r.status}: ${r.stderr}`);
  return (JSON.parse(r.stdout) as string[]).filter((p) => HEAVY.includes(p));
}

test.each([
  ['a token kubeconfig: neither client-node nor cdk8s-plus is loaded', 'token: abc', []],
  // The negative control: the check sees client-node when it is loaded.
  ['an exec plugin: client-node is loaded, and only it', 'exec:\n  apiVersion: client.authentication.k8s.io/v1\n  command: /bin/true', ['@kubernetes/client-node']],
])('%s', (_what, user, want) => {
  expect(loadedBy(user)).toEqual(want);
});
