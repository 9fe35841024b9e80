import { Construct } from 'constructs';
import { PipelineSidecarSpec, PostgresOptions, SidecarPort } from './api/spec';
import { defineKind } from './kind';
import { objectName } from './names';
import { PipelineSidecar, SidecarCommonProps } from './pipeline-sidecar';
import { optionBlock, optString } from './validate';

/** Defaults of the Postgres kind, in one place. */
export const POSTGRES_DEFAULTS = {
  image: 'postgres:15',
  database: 'app',
  user: 'app',
  port: 5432,
  dataPath: '/var/lib/postgresql/data',
} as const;

/** Props of a Postgres sidecar. */
export interface PostgresProps extends SidecarCommonProps {
  /** The kind's options (spec.postgres). */
  readonly options?: PostgresOptions;
  /** The database password, minted per run outside the constructs. */
  readonly password: string;
}

/**
 * A throwaway Postgres per run. The credentials live in the client Secret (keys username, password,
 * database, host, port, uri), which the server reads its password from and tasks bind as a workspace.
 */
export class Postgres extends PipelineSidecar {
  constructor(scope: Construct, id: string, props: PostgresProps) {
    if (!props.password) throw new Error(`Postgres ${props.sidecarName}: no password was given; mint one with randomPassword()`);
    const o = props.options ?? {};
    const user = o.user ?? POSTGRES_DEFAULTS.user;
    const database = o.database ?? POSTGRES_DEFAULTS.database;
    const ports: SidecarPort[] = props.ports ?? [{ name: 'postgres', port: POSTGRES_DEFAULTS.port }];
    const port = ports[0].port;
    const secretName = objectName(props.run, props.sidecarName, 'client');
    const host = `${objectName(props.run, props.sidecarName)}.${props.run.namespace}.svc`;
    super(scope, id, {
      ...props,
      ports,
      clientSecretData: {
        username: user,
        password: props.password,
        database,
        host,
        port: String(port),
        uri: `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(props.password)}@${host}:${port}/${encodeURIComponent(database)}`,
      },
      containers: [{
        name: 'postgres',
        image: o.image ?? POSTGRES_DEFAULTS.image,
        // The image starts as root and drops to the postgres user itself; forcing runAsNonRoot breaks initdb.
        args: port === POSTGRES_DEFAULTS.port ? undefined : ['-p', String(port)],
        env: [
          { name: 'POSTGRES_USER', value: user },
          { name: 'POSTGRES_DB', value: database },
          { name: 'POSTGRES_PASSWORD', valueFrom: { secretKeyRef: { name: secretName, key: 'password' } } },
          // A subdirectory: initdb refuses a non-empty mount root (lost+found on some volume types).
          { name: 'PGDATA', value: `${POSTGRES_DEFAULTS.dataPath}/pgdata` },
        ],
        startupProbe: { tcpSocket: { port }, periodSeconds: 2, failureThreshold: 150 },
        readinessProbe: {
          exec: { command: ['pg_isready', '-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', database] },
          periodSeconds: 5,
          failureThreshold: 3,
        },
        volumeMounts: [{ name: 'data', mountPath: POSTGRES_DEFAULTS.dataPath }],
      }],
      volumes: [{ name: 'data', emptyDir: {} }],
    });
  }
}

const PG_IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates spec.postgres. */
export function parsePostgresOptions(spec: PipelineSidecarSpec, sidecar: string): PostgresOptions {
  const b = optionBlock(spec, 'postgres', sidecar, ['image', 'database', 'user']);
  const f = 'spec.postgres';
  return {
    image: optString(b, 'image', f, sidecar, /^\S+$/),
    database: optString(b, 'database', f, sidecar, PG_IDENT),
    user: optString(b, 'user', f, sidecar, PG_IDENT),
  };
}

export const PostgresKind = defineKind<PostgresOptions>({
  name: 'Postgres',
  needs: { password: true },
  defaultPorts: [{ name: 'postgres', port: POSTGRES_DEFAULTS.port }],
  parse: parsePostgresOptions,
  create: (scope, id, props, options) => new Postgres(scope, id, { ...props, options, password: props.material.password! }),
});
