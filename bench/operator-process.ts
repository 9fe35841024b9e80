/**
 * The operator as a child process for `npm run bench` and `npm run chaos`: exactly what
 * `pipeline-sidecars run` builds from its flags (operatorFromArgs, src/cli-run.ts), plus three
 * measurement hooks that live here, not in the operator:
 *
 * - the webhook's own time per AdmissionReview (request received → response finished), by wrapping
 *   WebhookServer's request handler; nothing else about the handler changes;
 * - an IPC `stats` answer: the operator's RawClient request counter, reconciles, informer
 *   relists/watch restarts and the admission times, so the parent can report API requests per run;
 * - per reconcile of a run key: when the key was queued, when a worker took it and when it ended
 *   (wrapping WorkQueue.add and Controller's handler), for the bench's breakdown of where time goes;
 * - SIGUSR2 cuts every informer watch connection at once (the chaos test's "watch cut" without
 *   restarting the API server); the informers must reconnect from their last resourceVersion.
 *
 * It stands in for `pipeline-sidecars run` and takes the same command line (`run` and its flags):
 * MeasuredOperator (bench/measured-operator.ts) starts it through the platform's OperatorProcess,
 * compiled to JavaScript and run with plain `node` like the CLI, and knows it is up from the
 * operator's own "operator started" log line.
 */
import { operatorFromArgs } from '../src/cli-run';
import { Controller } from '../src/controller';
import { RawClient } from '../src/k8s/raw';
import { WorkQueue } from '../src/queue';
import { WebhookServer } from '../src/webhook';
import { hookSteps } from './step-hooks';

const admissionMs: number[] = [];
const proto = WebhookServer.prototype as any;
const handle = proto.handle;
proto.handle = function timedHandle(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) {
  const t0 = process.hrtime.bigint();
  res.once('finish', () => {
    if (req.method === 'POST') admissionMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  });
  return handle.call(this, req, res);
};

/** Requests by method and resource (`POST events`, `PATCH deployments`...), for the per-run request mix. */
const requestsByKind: Record<string, number> = {};
const rproto = RawClient.prototype as any;
const request = rproto.request;
rproto.request = function countedRequest(method: string, path: string, opts?: any) {
  const parts = path.split('?')[0].split('/').filter(Boolean);
  const ns = parts.indexOf('namespaces');
  const resource = ns >= 0 && parts.length > ns + 2 ? parts[ns + 2] : parts[parts.length - 1];
  const sub = ns >= 0 && parts.length > ns + 4 ? `/${parts[ns + 4]}` : '';
  const ct = opts?.contentType === 'application/apply-patch+yaml' ? ' (apply)' : opts?.contentType === 'application/json-patch+json' ? ' (json-patch)' : '';
  const k = `${method} ${resource}${sub}${ct}`;
  requestsByKind[k] = (requestsByKind[k] ?? 0) + 1;
  return request.call(this, method, path, opts);
};

/** Run key → [queued, started, ended] per reconcile (local ms clock, comparable with the parent's). */
const spans = new Map<string, Array<[number, number, number]>>();
const queuedAt = new Map<string, number>();
const qproto = WorkQueue.prototype as any;
const add = qproto.add;
qproto.add = function timedAdd(key: string, ...rest: unknown[]) {
  if (key.startsWith('run:') && !queuedAt.has(key)) queuedAt.set(key, Date.now());
  return add.call(this, key, ...rest); // the options too (priority): a hook must not change behaviour
};
const cproto = Controller.prototype as any;
const handleKey = cproto.handle;
cproto.handle = async function timedHandleKey(key: string) {
  const start = Date.now();
  const q = queuedAt.get(key) ?? start;
  queuedAt.delete(key);
  try { return await handleKey.call(this, key); } finally {
    if (key.startsWith('run:')) { let l = spans.get(key); if (!l) spans.set(key, (l = [])); l.push([q, start, Date.now()]); }
  }
};

/** Per reconcile step (material, synthesize, apply, gate): ms of its first call per run, for the breakdown. */
const stepMs: Record<string, Record<string, number>> = {};
hookSteps(stepMs);

async function main(): Promise<void> {
  const [command, ...argv] = process.argv.slice(2);
  if (command !== 'run') throw new Error(`only \`run\` is measured, not "${command}"`);
  const op = operatorFromArgs(argv);
  // Leaf informers (a MultiNamespaceInformer holds one per served namespace in `byNs`).
  // Leaf informers behind a UnionCache (`parts`), a MultiNamespaceInformer (`byNs`) or a
  // GrowingNamespaceInformer (`informers`); the shared caches live outside the controller.
  const leaves = (x: any): any[] => {
    if (Array.isArray(x.parts)) return x.parts.flatMap(leaves);
    if (x.byNs instanceof Map) return [...x.byNs.values()];
    if (Array.isArray(x.informers)) return x.informers;
    return [x];
  };
  const informers = (): any[] => {
    const c = op.controller?.caches;
    const caches: any[] = c ? [c.runs, c.namespaces, c.pods, ...c.owned.values()] : [];
    return [...new Set([...caches, op.shared.sidecars, op.shared.pipelines].flatMap(leaves))];
  };
  process.on('SIGUSR2', () => {
    let cut = 0;
    for (const inf of informers()) { const w = inf.watch; if (w) { w.abort(); cut++; } }
    op.log.warn('SIGUSR2: cut every informer watch connection', { cut });
  });
  process.on('message', (m: any) => {
    if (m?.type !== 'stats') return;
    const infs = informers();
    process.send?.({
      type: 'stats', id: m.id,
      requests: op.client.requests,
      reconciles: op.controller?.reconciles ?? 0,
      lists: infs.reduce((n, i) => n + (i.lists ?? 0), 0),
      watches: infs.reduce((n, i) => n + (i.watches ?? 0), 0),
      admissionMs: m.drain ? admissionMs.splice(0) : admissionMs.slice(),
      spans: m.spans ? Object.fromEntries(spans) : undefined,
      requestsByKind: { ...requestsByKind },
      stepMs: m.spans ? stepMs : undefined,
      memory: process.memoryUsage(),
      syncMs: op.controller?.syncMs,
      runsCached: op.controller?.caches.runs.size ?? 0,
      listPages: infs.reduce((n, i) => n + (i.pages ?? 0), 0),
      cpu: process.cpuUsage(),
      leader: op.isLeader,
    });
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    op.log.info('shutting down', { signal });
    op.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('disconnect', () => stop('parent gone'));
  await op.start();
}

main().catch((e) => {
  process.stderr.write(`operator process failed: ${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
});
