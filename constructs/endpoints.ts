import { PipelineSidecarSpec, RunIdentity } from './api/spec';
import { SidecarSpecError } from './errors';
import { defaultKinds, KindRegistry } from './kinds';
import { objectName } from './names';

// Apart from names.ts because it needs the kinds, and the kinds' constructs need names.ts: together
// they were an import cycle (names -> kinds -> constructs -> names).

/** Where tasks reach a sidecar and which Secrets they bind; computable at CREATE, before any material exists. */
export interface SidecarEndpoints {
  /** The Service name. */
  readonly serviceName: string;
  /** `<service>.<namespace>.svc`. */
  readonly host: string;
  /** The first port of the sidecar. */
  readonly port: number;
  /** `host:port`. */
  readonly address: string;
  /** Secret tasks bind as a workspace: TLS client certs (ca.pem, cert.pem, key.pem) or credentials. */
  readonly clientSecretName?: string;
  /** Secret mounted into the sidecar with its TLS server certificate. */
  readonly serverSecretName?: string;
}

/** The coordinates of `sidecarName` for `run`; `kinds` defaults to the built-in kinds. */
export function sidecarEndpoints(run: RunIdentity, sidecarName: string, spec: PipelineSidecarSpec, kinds?: KindRegistry): SidecarEndpoints {
  const registry = kinds ?? defaultKinds();
  const kind = registry.get(spec.kind, sidecarName);
  const ports = spec.ports ?? kind.defaultPorts(spec);
  if (ports.length === 0) {
    throw new SidecarSpecError('spec.ports', `kind ${kind.name} has no default port; list at least one port`, sidecarName);
  }
  const serviceName = objectName(run, sidecarName);
  const host = `${serviceName}.${run.namespace}.svc`;
  const needs = kind.needs(spec);
  return {
    serviceName,
    host,
    port: ports[0].port,
    address: `${host}:${ports[0].port}`,
    clientSecretName: needs.tls || needs.password ? objectName(run, sidecarName, 'client') : undefined,
    serverSecretName: needs.tls ? objectName(run, sidecarName, 'server') : undefined,
  };
}
