/**
 * How the operator reaches the API server: the server's URL, and the TLS material and Authorization
 * header of each request. That is all the raw client and the watches need of a kubeconfig
 * (raw.ts, watch.ts), so the operator loads the two common sources itself, the in-cluster
 * ServiceAccount and a plain kubeconfig file, and loads client-node's KubeConfig only for what it
 * alone implements (exec plugins, auth providers, merged KUBECONFIG lists, proxies...). Loading
 * client-node costs about 70 MiB of RSS, more than a thousand live runs' worth of cache.
 *
 * client-node's KubeConfig satisfies KubeAccess as it is, so a caller can still pass one.
 */
import * as fs from 'node:fs';
import type * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';

/** The API server and the credentials of each request to it. */
export interface KubeAccess {
  /** The server to talk to (no trailing slash), or null when the configuration names none. */
  getCurrentCluster(): { readonly server: string } | null;
  /** Adds the CA, client certificate and key, TLS verification and the Authorization header. */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

/** Where the access came from: ours, or client-node's KubeConfig (and why). */
export type KubeAccessSource =
  | { readonly kind: 'service-account'; readonly dir: string }
  | { readonly kind: 'kubeconfig'; readonly file: string }
  | { readonly kind: 'client-node'; readonly reason: string };

export interface LoadedKubeAccess {
  readonly access: KubeAccess;
  readonly source: KubeAccessSource;
}

export interface LoadKubeAccessOptions {
  /** --kubeconfig: this file and nothing else. */
  readonly kubeconfig?: string;
  /** KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST/PORT. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Prefix of /var/run/secrets/kubernetes.io/serviceaccount (client-node's loadFromCluster pathPrefix; tests). @default '' */
  readonly serviceAccountPrefix?: string;
  /** @default process.platform */
  readonly platform?: NodeJS.Platform;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * How often a token file is read again. Bound ServiceAccount tokens (projected volumes) expire,
 * an hour by default, and the kubelet writes a fresh one into the same file well before: a token
 * read once at start stops working. client-go and client-node re-read it every minute.
 */
export const TOKEN_FILE_MAX_AGE_MS = 60_000;

/**
 * The operator's API access, in client-node's loadFromDefault order: --kubeconfig, else KUBECONFIG,
 * else ~/.kube/config, else the in-cluster ServiceAccount. What this module does not implement goes
 * to client-node's KubeConfig, loaded then and only then.
 */
export function loadKubeAccess(o: LoadKubeAccessOptions = {}): LoadedKubeAccess {
  const env = o.env ?? process.env;
  if (o.kubeconfig) return fromKubeconfigFile(o.kubeconfig, (kc) => kc.loadFromFile(o.kubeconfig!));
  const fallback = (reason: string) => viaClientNode(reason, (kc) => kc.loadFromDefault());
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(path.delimiter).filter(Boolean);
    if (files.length > 1) return fallback(`KUBECONFIG lists ${files.length} files, which client-node merges`);
    if (files.length === 1) return fromKubeconfigFile(files[0], (kc) => kc.loadFromDefault());
  }
  if ((o.platform ?? process.platform) === 'win32') return fallback('Windows: client-node finds the home directory and WSL configurations');
  const home = homeDir(env);
  const homeConfig = home ? path.join(home, '.kube', 'config') : undefined;
  if (homeConfig && exists(homeConfig)) return fromKubeconfigFile(homeConfig, (kc) => kc.loadFromDefault());
  const saDir = `${o.serviceAccountPrefix ?? ''}${SERVICE_ACCOUNT_DIR}`;
  if (exists(path.join(saDir, 'token'))) {
    const host = env.KUBERNETES_SERVICE_HOST, port = env.KUBERNETES_SERVICE_PORT;
    if (!host || !port) return viaClientNode('a ServiceAccount token but no KUBERNETES_SERVICE_HOST/PORT', (kc) => kc.loadFromCluster(o.serviceAccountPrefix));
    return { access: serviceAccountAccess(saDir, host, port), source: { kind: 'service-account', dir: saDir } };
  }
  return fallback('no kubeconfig and no ServiceAccount: client-node\'s default (http://localhost:8080)');
}

/** In a pod: the API server's Service from the environment, the mounted CA and token. */
function serviceAccountAccess(dir: string, host: string, port: string): KubeAccess {
  // As client-node: these ports are plain HTTP (a kubectl proxy, an insecure port).
  const scheme = ['80', '8080', '8001'].includes(port) ? 'http' : 'https';
  const server = `${scheme}://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
  const ca = readOrExplain(path.join(dir, 'ca.crt'), 'the ServiceAccount CA', 'mount the ServiceAccount (automountServiceAccountToken: true)');
  return new FileBackedAccess(server, { ca }, new TokenFile(path.join(dir, 'token')));
}

/** The kinds of kubeconfig entries this module reads itself; anything else goes to client-node. */
const CLUSTER_FIELDS = new Set(['server', 'certificate-authority', 'certificate-authority-data', 'insecure-skip-tls-verify', 'extensions']);
const USER_FIELDS = new Set(['client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'token', 'tokenFile', 'token-file', 'extensions']);

/**
 * A kubeconfig file's current context. Errors a user can fix are thrown here, naming the fix; a
 * configuration that needs more than a server, a CA and a certificate or token is handed, whole, to
 * client-node (`clientNodeLoad`, which reads the same file the way the operator always did).
 */
function fromKubeconfigFile(file: string, clientNodeLoad: (kc: ClientNodeKubeConfig) => void): LoadedKubeAccess {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(err.code === 'ENOENT'
      ? `${file} does not exist: give --kubeconfig (or KUBECONFIG) a file that does, or remove the setting to use ~/.kube/config or the in-cluster ServiceAccount`
      : `cannot read ${file} (${err.message}): check its permissions`);
  }
  const config = parseConfig(text, file);
  const fallback = (reason: string) => viaClientNode(`${file}: ${reason}`, clientNodeLoad);
  const currentName = config['current-context'];
  if (!currentName) throw new Error(`${file} sets no current-context: run \`kubectl --kubeconfig ${file} config use-context NAME\``);
  const context = named(config.contexts, currentName)?.context;
  if (!context) throw new Error(`${file}: current-context "${currentName}" is not among its contexts (${names(config.contexts)}): run \`kubectl --kubeconfig ${file} config use-context NAME\` with one of them`);
  const cluster = named(config.clusters, context.cluster)?.cluster;
  if (!cluster) throw new Error(`${file}: context "${currentName}" names cluster "${context.cluster}", which the file does not define (clusters: ${names(config.clusters)}): add it, or point the context at one of them`);
  if (typeof cluster.server !== 'string' || !cluster.server) throw new Error(`${file}: cluster "${context.cluster}" has no server: add its URL as clusters[].cluster.server`);
  const user = context.user ? named(config.users, context.user)?.user : undefined;
  // client-node applies no TLS settings at all to a context without a user; only it knows that quirk.
  if (!user) return fallback(`context "${currentName}" has no user`);
  const odd = [...Object.keys(cluster).filter((k) => !CLUSTER_FIELDS.has(k)).map((k) => `cluster field ${k}`),
    ...Object.keys(user).filter((k) => !USER_FIELDS.has(k)).map((k) => `user field ${k}`)];
  if (odd.length) return fallback(`${odd.join(', ')}`);

  // Paths relative to the file's directory, as kubectl and client-node resolve them.
  const rel = (p: string) => path.resolve(path.dirname(file), p);
  const material = (data: unknown, f: unknown, what: string) => {
    if (typeof f === 'string' && f) return readOrExplain(rel(f), what, `fix the path in ${file}`);
    if (typeof data === 'string' && data) return Buffer.from(data, 'base64');
    return undefined;
  };
  const tls: TlsMaterial = {
    ca: material(cluster['certificate-authority-data'], cluster['certificate-authority'], `the CA of cluster "${context.cluster}"`),
    cert: material(user['client-certificate-data'], user['client-certificate'], `the client certificate of user "${context.user}"`),
    key: material(user['client-key-data'], user['client-key'], `the client key of user "${context.user}"`),
    insecure: cluster['insecure-skip-tls-verify'] === true,
  };
  // A token wins over a token file (kubectl). `tokenFile` is kubectl's field, relative to the
  // file; `token-file` is client-node's, which it reads relative to the working directory.
  const tokenFile = user.tokenFile ? rel(user.tokenFile) : user['token-file'] ? path.resolve(user['token-file']) : undefined;
  const token = user.token ? new StaticToken(String(user.token)) : tokenFile ? new TokenFile(tokenFile) : undefined;
  return { access: new FileBackedAccess(cluster.server.replace(/\/$/, ''), tls, token), source: { kind: 'kubeconfig', file } };
}

/** JSON as it is; YAML through the `yaml` package, loaded only for a YAML kubeconfig. */
function parseConfig(text: string, file: string): Record<string, any> {
  let parsed: unknown;
  try {
    if (text.trimStart().startsWith('{')) parsed = JSON.parse(text);
    else {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      parsed = (require('yaml') as typeof import('yaml')).parse(text);
    }
  } catch (e) {
    throw new Error(`${file} is not valid YAML (${(e as Error).message}): \`kubectl --kubeconfig ${file} config view\` shows where`);
  }
  if (!parsed || typeof parsed !== 'object') throw new Error(`${file} is not a kubeconfig (no clusters, contexts or users): write one with \`kubectl config\``);
  return parsed as Record<string, any>;
}

function named(list: unknown, name: unknown): Record<string, any> | undefined {
  return Array.isArray(list) ? list.find((e) => e?.name === name) : undefined;
}
function names(list: unknown): string {
  return Array.isArray(list) && list.length ? list.map((e) => `"${e?.name}"`).join(', ') : 'none';
}

function homeDir(env: NodeJS.ProcessEnv): string | undefined {
  if (!env.HOME) return undefined;
  return exists(env.HOME) ? env.HOME : undefined;
}
function exists(p: string): boolean {
  try { fs.accessSync(p); return true; } catch { return false; }
}
function readOrExplain(file: string, what: string, fix: string): Buffer {
  try { return fs.readFileSync(file); } catch (e) {
    throw new Error(`cannot read ${what} from ${file} (${(e as Error).message}): ${fix}`);
  }
}

interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly insecure?: boolean;
}

interface BearerToken { current(): string }

class StaticToken implements BearerToken {
  constructor(private readonly token: string) {}
  current(): string { return this.token; }
}

/** A token file, read again once TOKEN_FILE_MAX_AGE_MS old (rotating bound tokens: see there). */
export class TokenFile implements BearerToken {
  private token?: string;
  private readAt = 0;

  constructor(private readonly file: string) {
    this.current(); // a token that cannot be read is a start-up error, not a request error
  }

  current(): string {
    if (this.token === undefined || Date.now() - this.readAt >= TOKEN_FILE_MAX_AGE_MS) {
      try {
        this.token = fs.readFileSync(this.file, 'utf8').trim();
      } catch (e) {
        // A kubelet swapping the file in between: keep the token we have, try again next time.
        if (this.token === undefined) throw new Error(`cannot read the token file ${this.file} (${(e as Error).message}): mount it, or fix the path`);
      }
      this.readAt = Date.now();
    }
    return this.token!;
  }
}

/**
 * The access itself. CA, certificate and key are read once: RawClient keeps one keep-alive agent
 * built from the first request's options, so reading them again would change nothing.
 */
class FileBackedAccess implements KubeAccess {
  private readonly cluster: { readonly server: string };

  constructor(server: string, private readonly tls: TlsMaterial, private readonly token?: BearerToken) {
    this.cluster = { server };
  }

  getCurrentCluster(): { readonly server: string } { return this.cluster; }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    if (this.tls.insecure) opts.rejectUnauthorized = false;
    if (this.tls.ca) opts.ca = this.tls.ca;
    if (this.tls.cert) opts.cert = this.tls.cert;
    if (this.tls.key) opts.key = this.tls.key;
    opts.headers ??= {};
    if (this.token) (opts.headers as Record<string, string>).Authorization = `Bearer ${this.token.current()}`;
  }
}

type ClientNodeKubeConfig = import('@kubernetes/client-node').KubeConfig;

/** client-node's KubeConfig, required only now: everything it implements stays available. */
function viaClientNode(reason: string, load: (kc: ClientNodeKubeConfig) => void): LoadedKubeAccess {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { KubeConfig } = require('@kubernetes/client-node') as typeof import('@kubernetes/client-node');
  const kc = new KubeConfig();
  load(kc);
  return { access: kc, source: { kind: 'client-node', reason } };
}
