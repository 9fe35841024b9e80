/**
 * Conversion webhook calls the API server makes, read from its own /metrics, per bench phase.
 *
 * Tekton's CRDs store v1 and also serve v1beta1 through a conversion webhook, and the API server
 * converts a written object to the other served versions (kubernetes/kubernetes issue 129979), so
 * every PipelineRun or TaskRun write costs a webhook round trip whoever makes it. Kubernetes v1.36
 * exposes two counters (k8s.io/apiextensions-apiserver pkg/apiserver/conversion/metrics.go):
 *
 * - `apiserver_crd_conversion_webhook_duration_seconds` (histogram; `_count` by crd_name,
 *   from_version, to_version, succeeded): observed only when the versions differ, which is when a
 *   request to the webhook is sent. These are the calls.
 * - `apiserver_conversion_webhook_request_total` (counter by result, failure_type): every time a
 *   webhook converter is asked, also when no object needs converting and nothing is sent, so it
 *   runs well above the calls (a read in the storage version counts too). Shown as "invocations".
 *
 * Tekton's webhook logs no line per conversion at its default level, so its log cannot count them.
 */
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { ControlPlane } from '../platform/control-plane';

export const CALLS_METRIC = 'apiserver_crd_conversion_webhook_duration_seconds_count';
export const INVOCATIONS_METRIC = 'apiserver_conversion_webhook_request_total';

export interface ConversionCounts {
  /** Requests sent to conversion webhooks (all CRDs). */
  calls: number;
  /** The same, by `crd from→to` (a failed call is suffixed ` (failed)`). */
  byCrd: Record<string, number>;
  /** Converter invocations, with or without a request (see above). */
  invocations: number;
}

/** One Prometheus text sample: name, labels, value; undefined for comments and blank lines. */
function sample(line: string): { name: string; labels: Record<string, string>; value: number } | undefined {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line.trim());
  if (!m) return undefined;
  const labels: Record<string, string> = {};
  for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
  return { name: m[1], labels, value: Number(m[4]) };
}

/** The conversion counters in a kube-apiserver /metrics text (zeros when none was ever observed). */
export function parseConversionCounts(text: string): ConversionCounts {
  const out: ConversionCounts = { calls: 0, byCrd: {}, invocations: 0 };
  for (const line of text.split('\n')) {
    const s = sample(line);
    if (!s || !Number.isFinite(s.value)) continue;
    if (s.name === CALLS_METRIC) {
      const key = `${s.labels.crd_name ?? '?'} ${s.labels.from_version ?? '?'}→${s.labels.to_version ?? '?'}${s.labels.succeeded === 'false' ? ' (failed)' : ''}`;
      out.byCrd[key] = (out.byCrd[key] ?? 0) + s.value;
      out.calls += s.value;
    } else if (s.name === INVOCATIONS_METRIC) {
      out.invocations += s.value;
    }
  }
  return out;
}

/** What happened between two readings (counters only grow while the API server lives). */
export function conversionDelta(before: ConversionCounts, after: ConversionCounts): ConversionCounts {
  const byCrd: Record<string, number> = {};
  for (const k of Object.keys(after.byCrd)) {
    const d = after.byCrd[k] - (before.byCrd[k] ?? 0);
    if (d !== 0) byCrd[k] = d;
  }
  return { calls: after.calls - before.calls, byCrd, invocations: after.invocations - before.invocations };
}

/** kube-apiserver's /metrics text, as the harness's admin (RawClient parses JSON only). */
export function apiserverMetrics(cp: ControlPlane, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(`${cp.state.server}/metrics`, {
      ca: fs.readFileSync(cp.state.caFile), headers: { Authorization: `Bearer ${cp.state.adminToken}` }, timeout: timeoutMs,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`GET /metrics: ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('GET /metrics: timed out')));
    req.on('error', reject);
  });
}

export interface PhaseConversions extends ConversionCounts {
  /** Runs the phase created (finished runs for their creation), when calls per run make sense. */
  runs?: number;
  callsPerRun?: number;
  ms: number;
}

/** Conversion calls per named phase: begin(name) ... end(name, runs), in order. */
export class ConversionLedger {
  readonly phases: Record<string, PhaseConversions> = {};
  private readonly open = new Map<string, { at: number; counts: ConversionCounts }>();

  constructor(private readonly cp: ControlPlane, private readonly warn: (s: string) => void) {}

  private async read(): Promise<ConversionCounts | undefined> {
    try { return parseConversionCounts(await apiserverMetrics(this.cp)); } catch (e) {
      this.warn(`reading kube-apiserver /metrics failed: ${(e as Error).message} (that phase's conversion calls are not counted)`);
      return undefined;
    }
  }

  async begin(phase: string): Promise<void> {
    const counts = await this.read();
    if (counts) this.open.set(phase, { at: Date.now(), counts });
  }

  async end(phase: string, runs?: number): Promise<PhaseConversions | undefined> {
    const start = this.open.get(phase);
    this.open.delete(phase);
    const counts = await this.read();
    if (!start || !counts) return undefined;
    const d = conversionDelta(start.counts, counts);
    const p: PhaseConversions = { ...d, ms: Date.now() - start.at, ...(runs ? { runs, callsPerRun: d.calls / runs } : {}) };
    this.phases[phase] = p;
    return p;
  }

  /** One line per phase: calls, per run, invocations, and the calls by CRD. */
  report(): string {
    const rows = Object.entries(this.phases);
    if (rows.length === 0) return '  (none counted)\n';
    const w = Math.max(...rows.map(([k]) => k.length));
    return rows.map(([k, p]) => `  ${k.padEnd(w)}  ${String(p.calls).padStart(7)} calls` +
      `${p.callsPerRun !== undefined ? `  ${p.callsPerRun.toFixed(2).padStart(6)} / run` : '            '}` +
      `  ${String(p.invocations).padStart(7)} invocations  ${(p.ms / 1000).toFixed(0).padStart(4)} s  ` +
      Object.entries(p.byCrd).map(([c, n]) => `${c}: ${n}`).join(', ')).join('\n') + '\n';
  }
}
