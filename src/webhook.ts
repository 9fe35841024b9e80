import * as https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ANNOTATIONS, FIELD_MANAGER } from '../constructs/api/spec';
import { OPERATOR_PORTS, WEBHOOK_SERVICE_NAME } from '../constructs/bundle/defaults';
import { mutatingWebhookConfiguration, WEBHOOK_PATH } from '../constructs/api/webhook-config';
import { KindRegistry } from '../constructs/kinds';
import { admissionPatch, admitPipelineRun, runShapeProblem } from './admission';
import { isObject, isPipelineRunCreate, MAX_REVIEW_BYTES, parseAdmissionReview, readBody } from './admission-review';
import { RawClient } from './k8s/raw';
import { objectPath } from './k8s/resources';
import { AdmissionSources } from './admission-sources';
import type { SharedCaches } from './shared-caches';
import type { Logger } from './log';
import type { OperatorMetrics } from './metrics';
import { ensureServingTls, readExternalTls, StoredTls } from './webhook-cert-secret';

export interface WebhookOptions {
  /** Port to serve HTTPS on (0: any free port; read `port` after start). */
  readonly port: number;
  /** Address to bind (default 0.0.0.0). */
  readonly bindAddress?: string;
  /** MutatingWebhookConfiguration name (default pipeline-sidecars). */
  readonly configName?: string;
  /** The API server calls this URL (out-of-cluster); `{port}` is replaced with the bound port. */
  readonly url?: string;
  /**
   * The API server calls this Service (in-cluster).
   * @default without `url`: Service WEBHOOK_SERVICE_NAME (`pipeline-sidecars`, the install bundle's) in the operator's namespace, port 443
   */
  readonly service?: { readonly namespace: string; readonly name: string; readonly port?: number };
  /**
   * Apply the whole webhook configuration at start (development, tests). Without it the operator only
   * fills in caBundle of a configuration the install bundle created.
   */
  readonly register?: boolean;
  /** DNS names / IPs of the serving certificate (default: webhookCertHosts, from service or url). */
  readonly certHosts?: string[];
  /** Secret (in the operator's namespace) holding the CA and serving cert that all replicas share. */
  readonly secretName?: string;
  /** Only runs in namespaces matching this selector go to the webhook (register mode). */
  readonly namespaceSelector?: Record<string, unknown>;
  /** Do not touch caBundle at all (cert-manager injects it). */
  readonly externalCa?: boolean;
  /** How often to look again for a webhook configuration that did not exist at start, to fill in its caBundle (default 2 s). */
  readonly publishRetryMs?: number;
  /** How often to re-read the shared certificate Secret and renew it when due (default 1 h). */
  readonly refreshIntervalMs?: number;
  /** Lifetime of a serving certificate (default 365 days). */
  readonly leafValidityMs?: number;
  /** Renew the serving certificate when less than this is left (default 30 days). */
  readonly renewBeforeMs?: number;
  /** Lifetime of a CA (default 10 years): it outlives many serving certificates, so renewals keep the caBundle. */
  readonly caValidityMs?: number;
}


/** The Service the API server calls: the one given, or without a url the install bundle's in `namespace`. */
export function webhookService(opts: WebhookOptions, namespace: string): WebhookOptions['service'] {
  if (opts.service) return opts.service;
  return opts.url ? undefined : { namespace, name: WEBHOOK_SERVICE_NAME, port: OPERATOR_PORTS.webhookService };
}

/** DNS names and IPs the serving certificate covers for these options (`namespace`: the operator's). */
export function webhookCertHosts(opts: WebhookOptions, namespace: string): string[] {
  if (opts.certHosts?.length) return opts.certHosts;
  const service = webhookService(opts, namespace);
  if (service) {
    const { name, namespace: ns } = service;
    return [`${name}.${ns}.svc`, `${name}.${ns}.svc.cluster.local`, name, `${name}.${ns}`];
  }
  return [new URL(opts.url!.replace('{port}', '1')).hostname];
}

/**
 * The mutating admission webhook for PipelineRun CREATE. Every replica serves it (leadership is only
 * for reconciling); replicas share one CA and serving certificate through a Secret, so the caBundle
 * in the configuration is valid for all of them.
 */
export class WebhookServer {
  private server?: https.Server;
  private boundPort?: number;
  private tls?: StoredTls;
  private renewTimer?: NodeJS.Timeout;
  private publishTimer?: NodeJS.Timeout;
  serving = false;

  constructor(
    private readonly client: RawClient,
    private readonly namespace: string,
    private readonly opts: WebhookOptions,
    private readonly kinds: KindRegistry,
    private readonly log: Logger,
    private readonly metrics?: OperatorMetrics,
    /** Namespaces the controller serves (undefined: all). Runs elsewhere are never gated: nobody would start them. */
    private readonly servedNamespaces?: string[],
    /** PipelineSidecar and Pipeline caches (the operator's, shared with its controller): admissions read them, not the server. */
    caches?: SharedCaches,
  ) {
    this.sources = new AdmissionSources(client, caches, metrics);
  }

  /** What admissions read: the shared caches, or the server (admission-sources.ts). */
  private readonly sources: AdmissionSources;
  /** Reads sent to the API server by admissions (cache not synced, a miss, or a refusal confirmed); tests read it. */
  get liveReads(): number { return this.sources.liveReads; }

  get port(): number { return this.boundPort ?? this.opts.port; }
  get configName(): string { return this.opts.configName ?? 'pipeline-sidecars'; }
  /** The CA of the serving certificate. */
  get caCert(): string | undefined { return this.tls?.caCert; }
  /** The PEM bundle published as caBundle (the CA, plus the previous CA during a rotation). */
  get caBundle(): string | undefined { return this.tls?.bundle; }

  private certHosts(): string[] {
    return webhookCertHosts(this.opts, this.namespace);
  }

  /** The shared serving certificate: read, renewed or waited for (webhook-cert-secret.ts). */
  private ensureTls(): Promise<StoredTls> {
    const secretName = this.opts.secretName ?? `${this.configName}-webhook-tls`;
    if (this.opts.externalCa) return readExternalTls(this.client, this.namespace, secretName, this.log);
    return ensureServingTls(this.client, {
      namespace: this.namespace, secretName, hosts: this.certHosts(), current: this.tls,
      leafValidityMs: this.opts.leafValidityMs, renewBeforeMs: this.opts.renewBeforeMs, caValidityMs: this.opts.caValidityMs,
    }, this.log);
  }

  async start(): Promise<void> {
    this.tls = await this.ensureTls();
    this.server = https.createServer({ key: this.tls.key, cert: this.tls.cert, requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
      // A bug in handle() must cost one request (a 400), not the process (an unhandled rejection).
      this.handle(req, res).catch((e) => {
        this.log.warn('webhook request failed', { error: e });
        if (!res.headersSent && !res.destroyed) { res.writeHead(400, { 'Content-Type': 'application/json' }); res.end(JSON.stringify({ message: 'malformed request' })); }
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.opts.port, this.opts.bindAddress ?? '0.0.0.0', () => { this.server!.off('error', reject); resolve(); });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
    if (!(await this.publishCa())) {
      // The install may create the configuration after the operator is up (Argo CD applies the
      // webhook in the last sync wave, once the Deployment is healthy): fill its caBundle when it comes.
      this.publishTimer = setInterval(() => {
        this.publishCa().then((done) => { if (done) { clearInterval(this.publishTimer); this.publishTimer = undefined; } },
          (e) => this.log.warn('could not fill in the webhook configuration\'s caBundle; retrying', { error: e, config: this.configName }));
      }, this.opts.publishRetryMs ?? 2000);
      this.publishTimer.unref?.();
    }
    this.serving = true;
    // Long-lived replicas pick up a renewed certificate (theirs or another replica's) without a restart.
    this.renewTimer = setInterval(() => { void this.refreshTls(); }, this.opts.refreshIntervalMs ?? 3_600_000);
    this.renewTimer.unref?.();
    this.log.info('webhook serving', { port: this.boundPort, path: WEBHOOK_PATH, config: this.configName });
  }

  /** Apply the configuration (register mode) or just fill in its caBundle; false when the configuration does not exist yet. */
  private async publishCa(): Promise<boolean> {
    if (this.opts.externalCa) return true;
    const url = this.opts.url?.replace('{port}', String(this.boundPort));
    const desired = mutatingWebhookConfiguration({ name: this.configName, url, service: url ? undefined : webhookService(this.opts, this.namespace), caBundle: this.tls!.bundle, namespaceSelector: this.opts.namespaceSelector });
    const path = objectPath(desired as any);
    if (this.opts.register) {
      await this.client.apply(path, desired, FIELD_MANAGER, { force: true });
      return true;
    }
    const current = await this.client.getOrUndefined(path);
    if (!current) {
      if (!this.publishTimer) this.log.warn('webhook configuration not found: runs are not gated until it exists (install the bundle); its caBundle is filled in when it comes', { config: this.configName });
      return false;
    }
    const bundle = Buffer.from(this.tls!.bundle).toString('base64');
    const ops: unknown[] = [];
    (current.webhooks ?? []).forEach((w: any, i: number) => {
      if (w.clientConfig?.caBundle === bundle) return;
      ops.push({ op: 'test', path: `/webhooks/${i}/name`, value: w.name }, { op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle });
    });
    if (ops.length) await this.client.jsonPatch(path, ops);
    if (this.publishTimer) this.log.info('filled in the webhook configuration\'s caBundle', { config: this.configName });
    return true;
  }

  /** Re-reads (or renews) the shared certificate; swaps it into the server and caBundle when it changed. */
  async refreshTls(): Promise<boolean> {
    try {
      const next = await this.ensureTls();
      if (!this.server || (next.cert === this.tls?.cert && next.key === this.tls?.key && next.bundle === this.tls?.bundle)) return false;
      const reload = next.cert !== this.tls?.cert || next.key !== this.tls?.key;
      this.tls = next;
      if (reload) this.server.setSecureContext({ key: next.key, cert: next.cert });
      await this.publishCa();
      this.log.info('webhook certificate reloaded');
      return true;
    } catch (e) {
      this.log.warn('could not refresh the webhook certificate; keeping the current one', { error: e });
      return false;
    }
  }

  /**
   * Stops serving. `drainMs`: keep answering that long first (readiness already says no), for the
   * API server still sends reviews to a terminating pod until it sees the Service's endpoints change;
   * a refused or cut connection would fail a CREATE (failurePolicy Fail). Reviews in flight then get
   * up to 5 s to finish.
   */
  async stop(drainMs = 0): Promise<void> {
    if (this.renewTimer) clearInterval(this.renewTimer);
    if (this.publishTimer) clearInterval(this.publishTimer);
    this.serving = false;
    const s = this.server;
    if (!s) return;
    if (drainMs > 0) await new Promise((r) => setTimeout(r, drainMs));
    this.server = undefined;
    const force = setTimeout(() => s.closeAllConnections?.(), 5000);
    await new Promise<void>((resolve) => { s.close(() => resolve()); s.closeIdleConnections?.(); });
    clearTimeout(force);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reply = (code: number, body: unknown, headers: Record<string, string> = {}) => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(code, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== WEBHOOK_PATH) {
      req.resume();
      return reply(404, { message: `POST ${WEBHOOK_PATH} only` });
    }
    const body = await readBody(req, MAX_REVIEW_BYTES);
    if (body === 'too-large') {
      // Connection: close, so a client streaming more is cut off once the answer is out.
      return reply(413, { message: `AdmissionReview larger than ${MAX_REVIEW_BYTES} bytes (the API server's own request limit)` }, { Connection: 'close' });
    }
    if (body === 'aborted') return;
    const parsed = parseAdmissionReview(body);
    if ('problem' in parsed) return reply(400, { message: parsed.problem });
    const request = parsed.request;
    const respond = (response: Record<string, unknown>) => reply(200, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: request.uid, ...response } });
    // Only PipelineRun CREATE is ours; anything else the API server (or a stray client) sends is let through untouched.
    if (!isPipelineRunCreate(request)) return respond({ allowed: true });
    const run = request.object;
    if (!isObject(run)) return reply(400, { message: 'AdmissionReview for a PipelineRun CREATE without request.object' });
    const shape = runShapeProblem(run);
    if (shape) {
      this.metrics?.admissions.inc({ result: 'rejected' });
      return respond({ allowed: false, status: { code: 400, reason: 'BadRequest', message: `pipeline-sidecars cannot read this PipelineRun: ${shape}` } });
    }
    const namespace = typeof request.namespace === 'string' && request.namespace ? request.namespace : run.metadata?.namespace;
    if (typeof namespace !== 'string' || !namespace) return reply(400, { message: 'AdmissionReview for a PipelineRun CREATE without request.namespace' });
    const log = this.log.child({ namespace, run: run.metadata?.name ?? `${run.metadata?.generateName ?? ''}*` });
    if (this.servedNamespaces?.length && !this.servedNamespaces.includes(namespace)) {
      this.metrics?.admissions.inc({ result: 'untouched' });
      const asks = !!run.metadata?.annotations?.[ANNOTATIONS.sidecars];
      return respond({ allowed: true, ...(asks ? { warnings: [`pipeline-sidecars: namespace ${namespace} is not served by this installation; no sidecars`] } : {}) });
    }
    try {
      const decide = async (live: boolean) => {
        const [pipelineResult, sidecars] = await Promise.all([this.sources.pipeline(run, namespace, live), this.sources.sidecars(namespace, live)]);
        return admitPipelineRun({ run, namespace, pipeline: pipelineResult.pipeline, pipelineProblem: pipelineResult.problem, sidecars, kinds: this.kinds });
      };
      let decision = await decide(false);
      // The caches may be a moment behind (a PipelineSidecar applied just before the run): a refusal
      // is only given after the server itself agrees. Refusals are rare; admissions stay read-free.
      if (!decision.allowed && this.sources.fromCache) decision = await decide(true);
      if (!decision.allowed) {
        this.metrics?.admissions.inc({ result: 'rejected' });
        log.info('rejected PipelineRun', { reason: decision.message });
        return respond({ allowed: false, status: { code: 422, reason: 'Invalid', message: decision.message } });
      }
      if (!decision.mutated) { this.metrics?.admissions.inc({ result: 'untouched' }); return respond({ allowed: true }); }
      const patch = admissionPatch(run, decision.mutated);
      if (patch.length === 0) { this.metrics?.admissions.inc({ result: 'untouched' }); return respond({ allowed: true }); }
      this.metrics?.admissions.inc({ result: 'mutated' });
      log.info('admitted PipelineRun', { runId: decision.runId, sidecars: decision.sidecars, warnings: decision.warnings });
      return respond({
        allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
        ...(decision.warnings.length ? { warnings: decision.warnings } : {}),
      });
    } catch (e) {
      this.metrics?.admissions.inc({ result: 'error' });
      if (e instanceof RangeError) {
        // Input so deeply nested that walking it overflows the stack: the run's fault, not ours.
        return respond({ allowed: false, status: { code: 400, reason: 'BadRequest', message: 'pipeline-sidecars cannot read this PipelineRun: it is nested too deeply' } });
      }
      // The API server could not be read: 503 lets failurePolicy decide (Fail for runs that ask by annotation, Ignore for the rest).
      this.metrics?.errors.inc({ reason: 'admission' });
      log.warn('admission could not decide', { error: e });
      return reply(503, { message: `pipeline-sidecars webhook could not decide: ${(e as Error).message}` });
    }
  }
}
