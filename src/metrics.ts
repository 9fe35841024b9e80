import * as http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ApiError } from './k8s/raw';

/** The `reason` label of a failed reconcile: the API's answer, a bad spec, or our own fault. */
export function errorReason(e: unknown): string {
  if (e instanceof ApiError) return e.statusCode === 0 ? 'api_unreachable' : `api_${e.statusCode}`;
  if (e instanceof Error && e.name === 'SidecarSpecError') return 'spec';
  return 'internal';
}

/**
 * The operator's Prometheus metrics. One Registry per Operator instance (not prom-client's global
 * one), so several operators in one process (tests, or an embedding app) do not collide on names.
 */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileDuration: Histogram<'result'>;
  readonly queueDepth: Gauge;
  readonly activeSidecars: Gauge;
  readonly errors: Counter<'reason'>;
  readonly unpendLatency: Histogram;
  readonly admissions: Counter<'result'>;
  readonly isLeader: Gauge;
  readonly cachedRuns: Gauge;
  readonly admissionReads: Counter;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.reconcileDuration = new Histogram({
      name: 'pipeline_sidecars_reconcile_duration_seconds', help: 'Duration of one reconcile of a PipelineRun',
      labelNames: ['result'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers,
    });
    this.queueDepth = new Gauge({ name: 'pipeline_sidecars_queue_depth', help: 'Keys waiting in the work queue', registers });
    this.activeSidecars = new Gauge({ name: 'pipeline_sidecars_active_sidecars', help: 'Sidecar Deployments that exist for runs not yet done', registers });
    this.errors = new Counter({ name: 'pipeline_sidecars_errors_total', help: 'Errors by reason', labelNames: ['reason'], registers });
    this.unpendLatency = new Histogram({
      name: 'pipeline_sidecars_unpend_latency_seconds', help: 'From PipelineRun creation to the operator starting it',
      buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300], registers,
    });
    this.admissions = new Counter({ name: 'pipeline_sidecars_admissions_total', help: 'Admission reviews by result', labelNames: ['result'], registers });
    this.cachedRuns = new Gauge({ name: 'pipeline_sidecars_cached_pipelineruns', help: 'PipelineRuns in the controller\'s cache (runs the webhook admitted, and un-admitted runs of namespaces holding PipelineSidecars)', registers });
    this.admissionReads = new Counter({ name: 'pipeline_sidecars_admission_api_reads_total', help: 'Reads the webhook sent to the API server (caches not synced yet, a cache miss, or a refusal confirmed)', registers });
    this.isLeader = new Gauge({ name: 'pipeline_sidecars_leader', help: '1 when this replica holds the leader Lease', registers });
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}

export interface HealthChecks {
  /** Liveness: the process is not wedged. */
  readonly healthy: () => boolean;
  /** Readiness: caches synced and webhook serving (leadership is not required: followers serve the webhook). */
  readonly ready: () => boolean;
}

/** /healthz, /readyz and /metrics on one plain-HTTP port. */
export function startHealthServer(port: number, host: string, metrics: OperatorMetrics, checks: HealthChecks): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (ok: boolean) => { res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }); res.end(ok ? 'ok' : 'not ready'); };
    if (path === '/healthz' || path === '/livez') return answer(checks.healthy());
    if (path === '/readyz') return answer(checks.ready());
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => { res.writeHead(200, { 'Content-Type': metrics.registry.contentType }); res.end(text); },
        (e) => { res.writeHead(500); res.end(String(e)); },
      );
      return;
    }
    res.writeHead(404); res.end('not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(server); });
  });
}
