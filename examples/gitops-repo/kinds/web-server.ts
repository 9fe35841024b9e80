import { Construct } from 'constructs';
import { defineKind, PipelineSidecar, SidecarCommonProps, SidecarSpecError } from 'pipeline-sidecars';

/** Options of the WebServer kind, read from spec.webServer. */
export interface WebServerOptions {
  /** The text of the page served at `/`. */
  readonly page: string;
  /** An image with busybox's httpd (default busybox:1.37). */
  readonly image: string;
}

/** Props of a WebServer sidecar. */
export interface WebServerProps extends SidecarCommonProps {
  /** Parsed spec.webServer. */
  readonly options: WebServerOptions;
}

const PAGE_LIMIT = 4096;
const FIELDS = ['page', 'image'];

/**
 * The container's script. httpd does not run as PID 1: PID 1 ignores the SIGTERM that stops the
 * pod unless it handles it, and httpd does not, so the pod would linger for the whole grace period
 * (30 s) after its run. The shell handles it and stops httpd.
 */
function serve(port: number): string {
  return [
    `printf '%s\\n' "$PAGE" > /www/index.html || exit 1`,
    `httpd -f -p ${port} -h /www &`,
    'pid=$!',
    'trap \'kill $pid\' TERM',
    'wait $pid',
  ].join('\n');
}

/**
 * A static HTTP server per PipelineRun: busybox httpd serving one page, e.g. a fixture the run's
 * tests fetch. The page arrives through an environment variable and is written to an emptyDir,
 * so the root file system stays read-only and no shell quoting of user text is involved.
 */
export class WebServer extends PipelineSidecar {
  constructor(scope: Construct, id: string, props: WebServerProps) {
    const ports = props.ports ?? [{ name: 'http', port: 8080 }];
    const port = ports[0].port;
    super(scope, id, {
      ...props,
      ports,
      volumes: [{ name: 'www', emptyDir: { sizeLimit: '1Mi' } }],
      containers: [{
        name: 'httpd',
        image: props.options.image,
        command: ['sh', '-c', serve(port)],
        env: [{ name: 'PAGE', value: props.options.page }],
        ports: [{ name: ports[0].name, containerPort: port }],
        readinessProbe: { httpGet: { path: '/', port }, periodSeconds: 1 },
        volumeMounts: [{ name: 'www', mountPath: '/www' }],
        resources: { requests: { cpu: '10m', memory: '8Mi' }, limits: { memory: '32Mi' } },
        securityContext: {
          runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
        },
      }],
    });
  }
}

/** spec.kind: WebServer, with options under spec.webServer. */
export const WebServerKind = defineKind<WebServerOptions>({
  name: 'WebServer',
  defaultPorts: [{ name: 'http', port: 8080 }],
  parse: (spec, sidecar) => {
    const o = (spec.webServer ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!FIELDS.includes(k)) throw new SidecarSpecError(`spec.webServer.${k}`, `unknown field; the WebServer kind reads ${FIELDS.join(' and ')}`, sidecar);
    }
    if (typeof o.page !== 'string' || o.page.length === 0 || o.page.length > PAGE_LIMIT) {
      throw new SidecarSpecError('spec.webServer.page', `set it to the page's text, 1 to ${PAGE_LIMIT} characters`, sidecar);
    }
    if (o.image !== undefined && (typeof o.image !== 'string' || !/^[^\s]+$/.test(o.image))) {
      throw new SidecarSpecError('spec.webServer.image', 'must be an image reference such as busybox:1.37', sidecar);
    }
    return { page: o.page, image: (o.image as string | undefined) ?? 'busybox:1.37' };
  },
  create: (scope, id, props, options) => new WebServer(scope, id, { ...props, options }),
});

/** What the operator image (PIPELINE_SIDECARS_KINDS) and `render --kinds` load from this module. */
export const kinds = [WebServerKind];
