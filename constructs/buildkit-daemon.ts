import { Construct } from 'constructs';
import { BuildKitDaemonOptions, PipelineSidecarSpec, SidecarPort, TlsBundle } from './api/spec';
import { defineKind } from './kind';
import { DEFAULT_TLS_MOUNT_PATH, PipelineSidecar, SidecarCommonProps, TLS_KEYS } from './pipeline-sidecar';
import { optionBlock, optString } from './validate';

/** Defaults of the BuildKitDaemon kind, in one place. */
export const BUILDKIT_DEFAULTS = {
  image: 'moby/buildkit:rootless',
  port: 1234,
  uid: 1000,
  statePath: '/home/user/.local/share/buildkit',
  socket: 'unix:///run/user/1000/buildkit/buildkitd.sock',
} as const;

/** Props of a BuildKitDaemon. */
export interface BuildKitDaemonProps extends SidecarCommonProps {
  /** The kind's options (spec.buildKitDaemon). */
  readonly options?: BuildKitDaemonOptions;
  /** Server and client certificates (buildkitd always serves mutual TLS here). */
  readonly tls: TlsBundle;
}

/**
 * Rootless buildkitd, as upstream's Kubernetes examples run it: uid 1000, seccomp and AppArmor
 * Unconfined (rootlesskit needs to create user namespaces), `--oci-worker-no-process-sandbox`
 * (no privileged /proc mount), and no `privileged`. Unconfined seccomp and AppArmor are still beyond
 * the Pod Security baseline profile, so it needs pipeline-sidecars.dev/allow-privileged=true like
 * DockerDaemon does; what it saves is root on the node. Tasks run `buildctl --addr tcp://<host>:1234
 * --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem` with the client Secret.
 */
export class BuildKitDaemon extends PipelineSidecar {
  constructor(scope: Construct, id: string, props: BuildKitDaemonProps) {
    if (!props.tls) throw new Error(`BuildKitDaemon ${props.sidecarName}: no TlsBundle was given; mint one with mintRunTls()`);
    const o = props.options ?? {};
    const ports: SidecarPort[] = props.ports ?? [{ name: 'buildkit', port: BUILDKIT_DEFAULTS.port }];
    const port = ports[0].port;
    const d = DEFAULT_TLS_MOUNT_PATH;
    super(scope, id, {
      ...props,
      ports,
      tlsMountPath: d,
      // fsGroup makes the mounted server key (mode 0440) readable by uid 1000.
      podSecurityContext: { fsGroup: BUILDKIT_DEFAULTS.uid },
      containers: [{
        name: 'buildkitd',
        image: o.image ?? BUILDKIT_DEFAULTS.image,
        args: [
          '--addr', BUILDKIT_DEFAULTS.socket,
          '--addr', `tcp://0.0.0.0:${port}`,
          '--tlscacert', `${d}/${TLS_KEYS.ca}`,
          '--tlscert', `${d}/${TLS_KEYS.cert}`,
          '--tlskey', `${d}/${TLS_KEYS.key}`,
          '--oci-worker-no-process-sandbox',
        ],
        securityContext: {
          seccompProfile: { type: 'Unconfined' },
          appArmorProfile: { type: 'Unconfined' },
          runAsUser: BUILDKIT_DEFAULTS.uid,
          runAsGroup: BUILDKIT_DEFAULTS.uid,
        },
        startupProbe: { tcpSocket: { port }, periodSeconds: 2, failureThreshold: 150 },
        // Over the local unix socket, so the probe needs no client certificate.
        readinessProbe: { exec: { command: ['buildctl', 'debug', 'workers'] }, periodSeconds: 5, failureThreshold: 3 },
        volumeMounts: [{ name: 'buildkit-state', mountPath: BUILDKIT_DEFAULTS.statePath }],
      }],
      volumes: [{ name: 'buildkit-state', emptyDir: {} }],
    });
  }
}

/** Validates spec.buildKitDaemon. */
export function parseBuildKitDaemonOptions(spec: PipelineSidecarSpec, sidecar: string): BuildKitDaemonOptions {
  const b = optionBlock(spec, 'buildKitDaemon', sidecar, ['image']);
  return { image: optString(b, 'image', 'spec.buildKitDaemon', sidecar, /^\S+$/) };
}

export const BuildKitDaemonKind = defineKind<BuildKitDaemonOptions>({
  name: 'BuildKitDaemon',
  // Not privileged, but Unconfined seccomp and AppArmor are beyond the Pod Security baseline profile.
  privileged: true,
  needs: { tls: true },
  defaultPorts: [{ name: 'buildkit', port: BUILDKIT_DEFAULTS.port }],
  parse: parseBuildKitDaemonOptions,
  create: (scope, id, props, options) => new BuildKitDaemon(scope, id, { ...props, options, tls: props.material.tls! }),
});
