import { MaterialStore } from '../src/material';
import { GateActions } from '../src/gate-actions';
import { SidecarApplier } from '../src/sidecar-apply';

/**
 * The reconcile steps the bench times, and the methods that carry them out today. The bench wraps
 * these methods in its own operator process; a refactor that renames or moves one must update this
 * table, and a unit test fails until it does (instead of the bench printing "-" for the step).
 */
export const STEP_METHODS: ReadonlyArray<{ readonly step: string; readonly proto: object; readonly method: string }> = [
  { step: 'material', proto: MaterialStore.prototype, method: 'resolve' },
  { step: 'synthesize', proto: SidecarApplier.prototype, method: 'manifests' },
  { step: 'apply', proto: SidecarApplier.prototype, method: 'apply' },
  { step: 'gate', proto: GateActions.prototype, method: 'gate' },
];

/** Steps of `table` whose method is not a function on its prototype. */
export function missingStepMethods(table: typeof STEP_METHODS = STEP_METHODS): string[] {
  return table.filter((t) => typeof (t.proto as any)[t.method] !== 'function').map((t) => `${t.step} (${t.proto.constructor.name}.${t.method})`);
}

/** The run a step's call is about: a RunIdentity's name, or a PipelineRun's. */
function runNameOf(args: unknown[]): string | undefined {
  for (const a of args as any[]) {
    if (a && typeof a === 'object' && typeof a.runId === 'string' && typeof a.name === 'string') return a.name;
  }
  for (const a of args as any[]) {
    if (typeof a?.metadata?.name === 'string') return a.metadata.name;
  }
  return undefined;
}

/**
 * Wraps each step's method so that the first call per run records its duration (ms) in
 * `into[step][runName]`. Throws when a method is missing: a bench that silently timed nothing
 * would print numbers for the other steps as if all were measured.
 */
export function hookSteps(into: Record<string, Record<string, number>>): void {
  const missing = missingStepMethods();
  if (missing.length) throw new Error(`bench step hooks: no method for ${missing.join(', ')}; update bench/step-hooks.ts`);
  for (const { step, proto, method } of STEP_METHODS) {
    const p = proto as any;
    const orig = p[method];
    p[method] = function timedStep(this: unknown, ...args: unknown[]) {
      const run = runNameOf(args);
      const t0 = performance.now();
      const done = () => {
        if (!run) return;
        const byRun = (into[step] ??= {});
        if (byRun[run] === undefined) byRun[run] = performance.now() - t0;
      };
      const r = orig.apply(this, args);
      if (r && typeof r.then === 'function') return r.finally(done);
      done();
      return r;
    };
  }
}
