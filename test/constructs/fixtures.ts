import { PipelineSidecarSpec, RunIdentity, SidecarMaterial, TlsBundle } from '../../constructs';
import { defaultKinds } from '../../constructs/kinds';
import { serviceDnsNames } from '../../constructs/names';
import { mintRunTls, randomPassword } from '../../src/tls';

export const RUN: RunIdentity = { name: 'build-42', namespace: 'ci', uid: '6f1c2a7e-0d5b-4c7e-9a51-1d2b3c4d5e6f', runId: 'k3x9q2ab', naming: 'runId' };

let tls: Promise<TlsBundle> | undefined;
/** One bundle for the whole file: constructs only copy PEMs, they never look inside. */
export function sharedTls(): Promise<TlsBundle> {
  return (tls ??= mintRunTls({ hosts: serviceDnsNames('docker-k3x9q2ab', 'ci') }));
}

/** A spec of every built-in kind, named after the kind. */
export const SPECS: Record<string, PipelineSidecarSpec> = {
  'docker': { kind: 'DockerDaemon', dockerDaemon: { registryMirrors: ['https://mirror.gcr.io'], storageSize: '20Gi' } },
  'buildkit': { kind: 'BuildKitDaemon' },
  'db': { kind: 'Postgres', postgres: { database: 'orders', user: 'tester' } },
  'registry': { kind: 'Registry' },
  'generic': {
    kind: 'Container',
    template: {
      containers: [{
        name: 'echo',
        image: 'hashicorp/http-echo:1.0',
        args: ['-listen=:5678', '-text=hi'],
        ports: [{ name: 'http', containerPort: 5678 }],
        readinessProbe: { httpGet: { path: '/', port: 5678 } },
      }],
    },
  },
};

/** Material for a sidecar the way the operator would mint it (one shared TLS bundle for speed). */
export async function materialFor(name: string, spec: PipelineSidecarSpec): Promise<SidecarMaterial> {
  const needs = defaultKinds().get(spec.kind, name).needs(spec);
  return { tls: needs.tls ? await sharedTls() : undefined, password: needs.password ? randomPassword() : undefined };
}

export function byKind(objs: Array<Record<string, any>>, kind: string): Array<Record<string, any>> {
  return objs.filter(o => o.kind === kind);
}

export function one(objs: Array<Record<string, any>>, kind: string, name?: string): Record<string, any> {
  const found = objs.filter(o => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}: ${objs.map(o => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found[0];
}

export function decode(secret: Record<string, any>, key: string): string {
  const v = secret.data?.[key];
  if (v === undefined) throw new Error(`Secret ${secret.metadata.name} has no key ${key}`);
  return Buffer.from(v, 'base64').toString('utf8');
}

/** A valid Container spec whose compact JSON is exactly `bytes` long, padded by one env value. */
export function specOfSize(bytes: number): Record<string, any> {
  const spec = (v: string) => ({
    kind: 'Container',
    template: { containers: [{ name: 'app', image: 'redis:7', env: [{ name: 'PAD', value: v }] }] },
    ports: [{ name: 'redis', port: 6379 }],
  });
  const base = JSON.stringify(spec('')).length;
  if (bytes < base) throw new Error(`no spec of ${bytes} bytes: the smallest is ${base}`);
  return spec('x'.repeat(bytes - base));
}
