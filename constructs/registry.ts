import { Construct } from 'constructs';
import { PipelineSidecarSpec, RegistryOptions, SidecarPort } from './api/spec';
import { defineKind } from './kind';
import { PipelineSidecar, SidecarCommonProps } from './pipeline-sidecar';
import { optionBlock, optString } from './validate';

/** Defaults of the Registry kind, in one place. */
export const REGISTRY_DEFAULTS = {
  image: 'registry:2',
  port: 5000,
  dataPath: '/var/lib/registry',
} as const;

/** Props of a Registry sidecar. */
export interface RegistryProps extends SidecarCommonProps {
  /** The kind's options (spec.registry). */
  readonly options?: RegistryOptions;
}

/**
 * A per-run OCI registry (distribution) on plain HTTP: tasks push and pull without leaving the run,
 * and only the run's pods (and its other sidecars, e.g. a DockerDaemon) can reach it. Clients must
 * treat it as an insecure registry (`--insecure-registry`, `--tls-verify=false`).
 */
export class Registry extends PipelineSidecar {
  constructor(scope: Construct, id: string, props: RegistryProps) {
    const o = props.options ?? {};
    const ports: SidecarPort[] = props.ports ?? [{ name: 'registry', port: REGISTRY_DEFAULTS.port }];
    const port = ports[0].port;
    super(scope, id, {
      ...props,
      ports,
      containers: [{
        name: 'registry',
        image: o.image ?? REGISTRY_DEFAULTS.image,
        env: [
          { name: 'REGISTRY_HTTP_ADDR', value: `0.0.0.0:${port}` },
          { name: 'REGISTRY_STORAGE_DELETE_ENABLED', value: 'true' },
        ],
        startupProbe: { tcpSocket: { port }, periodSeconds: 1, failureThreshold: 300 },
        readinessProbe: { httpGet: { path: '/v2/', port }, periodSeconds: 5, failureThreshold: 3 },
        volumeMounts: [{ name: 'data', mountPath: REGISTRY_DEFAULTS.dataPath }],
      }],
      volumes: [{ name: 'data', emptyDir: {} }],
    });
  }
}

/** Validates spec.registry. */
export function parseRegistryOptions(spec: PipelineSidecarSpec, sidecar: string): RegistryOptions {
  const b = optionBlock(spec, 'registry', sidecar, ['image']);
  return { image: optString(b, 'image', 'spec.registry', sidecar, /^\S+$/) };
}

export const RegistryKind = defineKind<RegistryOptions>({
  name: 'Registry',
  defaultPorts: [{ name: 'registry', port: REGISTRY_DEFAULTS.port }],
  parse: parseRegistryOptions,
  create: (scope, id, props, options) => new Registry(scope, id, { ...props, options }),
});
