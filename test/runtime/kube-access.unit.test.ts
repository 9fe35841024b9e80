import * as fs from 'node:fs';
import type * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import * as YAML from 'yaml';
import { operatorOptionsFromArgs } from '../../src/cli-run';
import { KubeAccess, TOKEN_FILE_MAX_AGE_MS, loadKubeAccess } from '../../src/k8s/kube-access';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-kube-access-')); });
afterEach(() => { jest.useRealTimers(); fs.rmSync(dir, { recursive: true, force: true }); });

const b64 = (s: string) => Buffer.from(s).toString('base64');
function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, text);
  return f;
}
function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown> | undefined, name = 'config'): string {
  return write(name, YAML.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'ctx',
    clusters: [{ name: 'other', cluster: { server: 'https://wrong:1' } }, { name: 'c', cluster }],
    users: user ? [{ name: 'u', user }] : [],
    contexts: [{ name: 'ctx', context: { cluster: 'c', ...(user ? { user: 'u' } : {}) } }],
  }));
}
/** What reaches a request: the TLS fields and the headers. */
async function applied(a: KubeAccess): Promise<Record<string, unknown>> {
  const o: https.RequestOptions = { headers: { Accept: 'application/json' } };
  await a.applyToHTTPSOptions(o);
  return { server: a.getCurrentCluster()?.server, ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.rejectUnauthorized, servername: o.servername, auth: o.auth, headers: o.headers };
}
function clientNode(file: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

describe('a kubeconfig file: the same requests as client-node, without it', () => {
  beforeEach(() => {
    write('pki/ca.crt', 'CA FILE');
    write('pki/client.crt', 'CERT FILE');
    write('pki/client.key', 'KEY FILE');
    write('token', 'file-token');
  });
  test.each([
    ['certificate data and CA data', { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64('CA DATA') }, { 'client-certificate-data': b64('CERT DATA'), 'client-key-data': b64('KEY DATA') }],
    ['certificate files and a CA file, relative to the kubeconfig', { server: 'https://10.0.0.1:6443', 'certificate-authority': 'pki/ca.crt' }, { 'client-certificate': 'pki/client.crt', 'client-key': 'pki/client.key' }],
    ['a token and an absolute CA file', { server: 'https://api.example:443/', 'certificate-authority': '@DIR/pki/ca.crt' }, { token: 'abc.def' }],
    ['client-node\'s token-file (absolute)', { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64('CA DATA') }, { 'token-file': '@DIR/token' }],
    ['insecure-skip-tls-verify', { server: 'https://10.0.0.1:6443', 'insecure-skip-tls-verify': true }, { token: 't' }],
    ['a file beats data, a token beats a token file', { server: 'https://127.0.0.1:8443', 'certificate-authority': 'pki/ca.crt', 'certificate-authority-data': b64('CA DATA') }, { token: 'wins', 'token-file': '@DIR/token', 'client-key': 'pki/client.key', 'client-key-data': b64('KEY DATA') }],
    ['a user with nothing but its name', { server: 'https://10.0.0.1:6443' }, { extensions: [] }],
  ])('%s', async (_what, cluster, user) => {
    const fix = (o: Record<string, unknown>) => JSON.parse(JSON.stringify(o).replace(/@DIR/g, dir));
    const file = kubeconfig(fix(cluster), fix(user));
    const ours = loadKubeAccess({ kubeconfig: file });
    expect(ours.source).toEqual({ kind: 'kubeconfig', file });
    expect(await applied(ours.access)).toEqual(await applied(clientNode(file)));
  });

  test('kubectl\'s tokenFile, relative to the kubeconfig, is read (client-node ignores the field and sends no token)', async () => {
    const file = kubeconfig({ server: 'https://10.0.0.1:6443' }, { tokenFile: 'token' });
    expect((await applied(loadKubeAccess({ kubeconfig: file }).access)).headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer file-token' });
    expect((await applied(clientNode(file))).headers).toEqual({ Accept: 'application/json' });
  });

  test('a JSON kubeconfig (kubectl config view -o json) needs no YAML parser', async () => {
    const file = write('config.json', JSON.stringify(YAML.parse(fs.readFileSync(kubeconfig({ server: 'https://10.0.0.1:6443' }, { token: 'j' }), 'utf8'))));
    expect(await applied(loadKubeAccess({ kubeconfig: file }).access)).toEqual(await applied(clientNode(file)));
  });
});

describe('what only client-node implements goes to client-node, loaded then, and still works', () => {
  const execCredential = `console.log(JSON.stringify({apiVersion:'client.authentication.k8s.io/v1',kind:'ExecCredential',status:{token:'from-exec'}}))`;
  test.each([
    ['an exec plugin', {}, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', execCredential], interactiveMode: 'Never' } }, /user field exec/, 'Bearer from-exec'],
    ['username and password', {}, { username: 'me', password: 'pw' }, /user field username, user field password/, undefined],
    ['impersonation', {}, { token: 't', as: 'someone' }, /user field as/, 'Bearer t'],
    ['an auth provider', {}, { 'auth-provider': { name: 'oidc', config: { 'id-token': 'x' } } }, /user field auth-provider/, undefined],
    ['tls-server-name', { 'tls-server-name': 'kubernetes.default' }, { token: 't' }, /cluster field tls-server-name/, 'Bearer t'],
    ['proxy-url', { 'proxy-url': 'http://proxy:3128' }, { token: 't' }, /cluster field proxy-url/, 'Bearer t'],
    ['a context without a user', {}, undefined, /has no user/, undefined],
  ])('%s', async (_what, clusterExtra, user, reason, authorization) => {
    const file = kubeconfig({ server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64('CA'), ...clusterExtra }, user);
    const got = loadKubeAccess({ kubeconfig: file });
    expect(got.source.kind).toBe('client-node');
    expect(got.source.kind === 'client-node' && got.source.reason).toMatch(reason);
    expect(got.access).toBeInstanceOf(KubeConfig);
    const opts = await applied(got.access);
    expect(opts).toEqual(await applied(clientNode(file)));
    expect((opts.headers as Record<string, string>).Authorization).toBe(authorization);
  });

  test('KUBECONFIG with two files: client-node merges them', () => {
    const a = kubeconfig({ server: 'https://a:1' }, { token: 'a' }, 'a');
    const b = write('b', YAML.stringify({ clusters: [{ name: 'b', cluster: { server: 'https://b:1' } }], users: [], contexts: [] }));
    const before = process.env.KUBECONFIG;
    process.env.KUBECONFIG = `${a}${path.delimiter}${b}`; // client-node reads it from the process
    try {
      const got = loadKubeAccess();
      expect(got.source).toEqual({ kind: 'client-node', reason: 'KUBECONFIG lists 2 files, which client-node merges' });
      expect(got.access.getCurrentCluster()?.server).toBe('https://a:1');
    } finally {
      if (before === undefined) delete process.env.KUBECONFIG; else process.env.KUBECONFIG = before;
    }
  });
});

describe('where the configuration comes from: --kubeconfig, KUBECONFIG, ~/.kube/config, the ServiceAccount', () => {
  const sa = () => {
    write('sa/var/run/secrets/kubernetes.io/serviceaccount/ca.crt', 'SA CA');
    write('sa/var/run/secrets/kubernetes.io/serviceaccount/token', 'token-1');
    return path.join(dir, 'sa');
  };
  test.each([
    ['--kubeconfig wins over everything', { flag: true, env: true, home: true, sa: true }, 'flag'],
    ['then KUBECONFIG (one path)', { flag: false, env: true, home: true, sa: true }, 'env'],
    ['then ~/.kube/config', { flag: false, env: false, home: true, sa: true }, 'home/.kube/config'],
    ['then the ServiceAccount', { flag: false, env: false, home: false, sa: true }, 'sa'],
  ])('%s', (_what, has, want) => {
    const flag = kubeconfig({ server: 'https://flag:1' }, { token: 'f' }, 'flag');
    const env = kubeconfig({ server: 'https://env:1' }, { token: 'e' }, 'env');
    fs.mkdirSync(path.join(dir, 'home'));
    if (has.home) kubeconfig({ server: 'https://home:1' }, { token: 'h' }, 'home/.kube/config');
    const prefix = has.sa ? sa() : path.join(dir, 'none');
    const got = loadKubeAccess({
      kubeconfig: has.flag ? flag : undefined, serviceAccountPrefix: prefix,
      env: { HOME: path.join(dir, 'home'), KUBECONFIG: has.env ? env : '', KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' },
    });
    if (want === 'sa') expect(got.source).toEqual({ kind: 'service-account', dir: `${prefix}/var/run/secrets/kubernetes.io/serviceaccount` });
    else expect(got.source).toEqual({ kind: 'kubeconfig', file: path.join(dir, want) });
    expect(got.access.getCurrentCluster()?.server).toBe(want === 'sa' ? 'https://[fd00::1]:443' : `https://${want.split('/')[0]}:1`);
  });

  test('in a pod: the same requests as client-node\'s loadFromCluster, and a rotated token is sent within a minute', async () => {
    jest.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z'), doNotFake: ['nextTick', 'setImmediate'] });
    const prefix = sa();
    const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
    const ours = loadKubeAccess({ serviceAccountPrefix: prefix, env }).access;
    const saved = { ...process.env };
    Object.assign(process.env, env);
    const theirs = new KubeConfig();
    try { theirs.loadFromCluster(prefix); } finally { process.env = saved; }
    expect(await applied(ours)).toEqual(await applied(theirs));
    expect((await applied(ours)).headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer token-1' });

    // The kubelet writes a fresh bound token into the same file: sent once the old one is a minute old.
    write('sa/var/run/secrets/kubernetes.io/serviceaccount/token', 'token-2\n');
    jest.advanceTimersByTime(TOKEN_FILE_MAX_AGE_MS - 1000);
    expect((await applied(ours)).headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer token-1' });
    jest.advanceTimersByTime(1000);
    expect((await applied(ours)).headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer token-2' });
    // A moment without the file (being swapped): the token we have, not a failed request.
    fs.rmSync(path.join(prefix, 'var/run/secrets/kubernetes.io/serviceaccount/token'));
    jest.advanceTimersByTime(TOKEN_FILE_MAX_AGE_MS);
    expect((await applied(ours)).headers).toEqual({ Accept: 'application/json', Authorization: 'Bearer token-2' });
  });
});

describe('a configuration that cannot work is an error naming the fix', () => {
  const config = (o: Record<string, unknown>) => write('bad', YAML.stringify({
    apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: 'https://c:1' } }], users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }, { name: 'lost', context: { cluster: 'gone', user: 'u' } }], ...o,
  }));
  test.each([
    ['a missing file', () => path.join(dir, 'nope'), /nope does not exist: give --kubeconfig \(or KUBECONFIG\) a file that does/],
    ['no current-context', () => config({}), /bad sets no current-context: run `kubectl --kubeconfig .*bad config use-context NAME`/],
    ['a current-context that is not there', () => config({ 'current-context': 'typo' }), /current-context "typo" is not among its contexts \("ctx", "lost"\)/],
    ['a context naming a missing cluster', () => config({ 'current-context': 'lost' }), /context "lost" names cluster "gone", which the file does not define \(clusters: "c"\): add it/],
    ['a cluster without a server', () => config({ 'current-context': 'ctx', clusters: [{ name: 'c', cluster: {} }] }), /cluster "c" has no server: add its URL/],
    ['a CA file that is not there', () => config({ 'current-context': 'ctx', clusters: [{ name: 'c', cluster: { server: 'https://c:1', 'certificate-authority': 'missing.crt' } }] }), /cannot read the CA of cluster "c" from .*missing.crt .*: fix the path in/],
    ['not a kubeconfig', () => write('bad', 'just a string\n'), /is not a kubeconfig/],
    ['not YAML', () => write('bad', 'a: [\n'), /is not valid YAML/],
  ])('%s', (_what, file, message) => {
    const f = file();
    expect(() => loadKubeAccess({ kubeconfig: f })).toThrow(message);
    // The CLI says which configuration it was loading.
    expect(() => operatorOptionsFromArgs(['--kubeconfig', f])).toThrow(`cannot load the kubeconfig ${f}: `);
  });
});
