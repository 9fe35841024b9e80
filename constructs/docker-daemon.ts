import { Construct } from 'constructs';
import { DockerDaemonOptions, PipelineSidecarSpec, SidecarPort, TlsBundle } from './api/spec';
import { defineKind } from './kind';
import { DEFAULT_TLS_MOUNT_PATH, PipelineSidecar, SidecarCommonProps, TLS_KEYS } from './pipeline-sidecar';
import { optBool, optionBlock, optQuantity, optString, optStringList } from './validate';

/** Defaults of the DockerDaemon kind, in one place. */
export const DOCKER_DAEMON_DEFAULTS = {
  image: 'docker:27-dind',
  storageDriver: 'overlay2',
  tlsPort: 2376,
  plainPort: 2375,
  graphPath: '/var/lib/docker',
} as const;

/** The daemon's probe: it answers its API on the unix socket (no certificates needed inside the pod). */
const DOCKER_PROBE = ['docker', '--host=unix:///var/run/docker.sock', 'version'];

/**
 * The start-up probe asks again every 50 ms inside one exec (up to 80 times) rather than once per
 * kubelet period: the shortest period is 1 s, and a daemon that came up just after a failed probe
 * waited for the next one (on the real node, its API serving → pod Ready took p50 522 ms, p99 1,158
 * ms with one `docker version` a second). Each failed exec takes at least 4 s, so 60 failures give
 * the daemon at least the 5 minutes that 300 one-second probes did.
 */
const DOCKER_STARTUP_PROBE = ['sh', '-c',
  `i=0; until ${DOCKER_PROBE.join(' ')} >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 80 ] || exit 1; sleep 0.05; done`];

/** Props of a DockerDaemon. */
export interface DockerDaemonProps extends SidecarCommonProps {
  /** The kind's options (spec.dockerDaemon). */
  readonly options?: DockerDaemonOptions;
  /** Server and client certificates; required unless options.tls is false. */
  readonly tls?: TlsBundle;
}

/**
 * docker:dind as a per-run daemon. Tasks talk to it over mutual TLS: the daemon verifies client
 * certificates against the run's CA (`--tlsverify`), and tasks get the client certs in a Secret.
 *
 * The args start with `dockerd`, which makes the image's entrypoint skip its defaults: no
 * in-container key generation (DOCKER_TLS_CERTDIR is empty too) and no extra plaintext 2375 listener.
 * With --tlsverify dockerd also skips the start-up delay it imposes on unauthenticated TCP listeners.
 */
export class DockerDaemon extends PipelineSidecar {
  constructor(scope: Construct, id: string, props: DockerDaemonProps) {
    const o = props.options ?? {};
    const tlsOn = o.tls !== false;
    if (tlsOn && !props.tls) {
      throw new Error(`DockerDaemon ${props.sidecarName}: tls is on but no TlsBundle was given; mint one with mintRunTls()`);
    }
    const ports: SidecarPort[] = props.ports ?? dockerPorts(o);
    const port = ports[0].port;
    const certDir = DEFAULT_TLS_MOUNT_PATH;
    const args = ['dockerd', '--host=unix:///var/run/docker.sock', `--host=tcp://0.0.0.0:${port}`];
    if (tlsOn) {
      args.push('--tlsverify', `--tlscacert=${certDir}/${TLS_KEYS.ca}`, `--tlscert=${certDir}/${TLS_KEYS.cert}`, `--tlskey=${certDir}/${TLS_KEYS.key}`);
    } else {
      // dockerd 27/28 accept a plain TCP listener, but sleep 1 s plus 15 s before serving it unless
      // --tls=false is said explicitly (moby cmd/dockerd; measured: 17.7 s without, 2.5-3.0 s with).
      args.push('--tls=false');
    }
    args.push(`--storage-driver=${o.storageDriver ?? DOCKER_DAEMON_DEFAULTS.storageDriver}`);
    for (const m of o.registryMirrors ?? []) args.push(`--registry-mirror=${m}`);
    for (const r of o.insecureRegistries ?? []) args.push(`--insecure-registry=${r}`);

    super(scope, id, {
      ...props,
      ports,
      tls: tlsOn ? props.tls : undefined,
      tlsMountPath: certDir,
      containers: [{
        name: 'dockerd',
        image: o.image ?? DOCKER_DAEMON_DEFAULTS.image,
        args,
        env: [{ name: 'DOCKER_TLS_CERTDIR', value: '' }],
        // dind needs privilege for overlay mounts, cgroups and iptables; nothing less works.
        securityContext: { privileged: true },
        // `docker version` over the unix socket, not tcpSocket: dockerd binds its TCP port before it
        // initialises containerd and the storage driver, so a TCP probe passes for a daemon that is
        // about to die. The socket needs no client certificate, and the dind image ships the CLI.
        startupProbe: { exec: { command: DOCKER_STARTUP_PROBE }, periodSeconds: 1, timeoutSeconds: 10, failureThreshold: 60 },
        readinessProbe: { exec: { command: DOCKER_PROBE }, periodSeconds: 5, timeoutSeconds: 5, failureThreshold: 3 },
        volumeMounts: [{ name: 'docker-graph', mountPath: DOCKER_DAEMON_DEFAULTS.graphPath }],
        // No resources on purpose: cdk8s-plus-style small limits OOM-kill image builds; set them with a LimitRange.
      }],
      volumes: [{ name: 'docker-graph', emptyDir: o.storageSize ? { sizeLimit: o.storageSize } : {} }],
    });
  }
}

function dockerPorts(o: DockerDaemonOptions): SidecarPort[] {
  return o.tls === false
    ? [{ name: 'docker', port: DOCKER_DAEMON_DEFAULTS.plainPort }]
    : [{ name: 'docker', port: DOCKER_DAEMON_DEFAULTS.tlsPort }];
}

const MIRROR = /^https?:\/\/[^\s]+$/;

/** Validates spec.dockerDaemon. */
export function parseDockerDaemonOptions(spec: PipelineSidecarSpec, sidecar: string): DockerDaemonOptions {
  const b = optionBlock(spec, 'dockerDaemon', sidecar, ['tls', 'storageDriver', 'registryMirrors', 'insecureRegistries', 'image', 'storageSize']);
  const f = 'spec.dockerDaemon';
  return {
    tls: optBool(b, 'tls', f, sidecar),
    storageDriver: optString(b, 'storageDriver', f, sidecar, /^[a-z0-9][a-z0-9-]*$/),
    registryMirrors: optStringList(b, 'registryMirrors', f, sidecar, MIRROR),
    insecureRegistries: optStringList(b, 'insecureRegistries', f, sidecar, /^[^\s/]+(\/[0-9]+)?$/),
    image: optString(b, 'image', f, sidecar, /^\S+$/),
    storageSize: optQuantity(b, 'storageSize', f, sidecar),
  };
}

export const DockerDaemonKind = defineKind<DockerDaemonOptions>({
  name: 'DockerDaemon',
  privileged: true,
  needs: spec => ({ tls: (spec.dockerDaemon as DockerDaemonOptions | undefined)?.tls !== false, password: false }),
  defaultPorts: spec => dockerPorts((spec.dockerDaemon ?? {}) as DockerDaemonOptions),
  parse: parseDockerDaemonOptions,
  create: (scope, id, props, options) => new DockerDaemon(scope, id, { ...props, options, tls: props.material.tls }),
});
