import { Construct } from 'constructs';
import { defineKind, PipelineSidecar, SidecarCommonProps, SidecarMaterial, SidecarSpecError } from '../../constructs';

/** Options of the Redis kind, read from spec.redis. */
export interface RedisOptions {
  /** Image (default redis:7-alpine). */
  readonly image: string;
  /** Redis maxmemory, e.g. 256mb (default: no limit). */
  readonly maxMemory?: string;
}

/** Props of a Redis sidecar. */
export interface RedisProps extends SidecarCommonProps {
  /** Parsed spec.redis. */
  readonly options: RedisOptions;
  /** What the operator minted for this run: nothing for Redis; certificates for a kind with needs.tls. */
  readonly material: SidecarMaterial;
}

/** A throwaway Redis per PipelineRun. */
export class Redis extends PipelineSidecar {
  constructor(scope: Construct, id: string, props: RedisProps) {
    const ports = props.ports ?? [{ name: 'redis', port: 6379 }];
    const port = String(ports[0].port);
    const maxMemory = props.options.maxMemory ? ['--maxmemory', props.options.maxMemory] : [];
    super(scope, id, {
      ...props,
      ports,
      containers: [{
        name: 'redis',
        image: props.options.image,
        args: ['--port', port, ...maxMemory],
        readinessProbe: { exec: { command: ['redis-cli', '-p', port, 'ping'] }, periodSeconds: 2 },
        securityContext: { runAsNonRoot: true, runAsUser: 999, allowPrivilegeEscalation: false },
      }],
    });
  }
}

/** spec.kind: Redis, with options under spec.redis. */
export const RedisKind = defineKind<RedisOptions>({
  name: 'Redis',
  defaultPorts: [{ name: 'redis', port: 6379 }],
  parse: (spec, sidecar) => {
    const o = (spec.redis ?? {}) as Partial<RedisOptions>;
    if (o.maxMemory !== undefined && !/^[0-9]+(kb|mb|gb)$/.test(o.maxMemory)) {
      throw new SidecarSpecError('spec.redis.maxMemory', `"${o.maxMemory}" is not a size such as 256mb`, sidecar);
    }
    return { image: o.image ?? 'redis:7-alpine', maxMemory: o.maxMemory };
  },
  create: (scope, id, props, options) => new Redis(scope, id, { ...props, options }),
});

/** What `render --kinds` and the operator load from this module: the kinds it adds. */
export const kinds = [RedisKind];
