import { Condition, LABELS, PipelineSidecarResource, PipelineSidecarSpec, PipelineSidecarStatus, RunIdentity } from '../constructs/api/spec';
import { SidecarSpecError } from '../constructs/errors';
import { KindRegistry } from '../constructs/kinds';
import { PodSecurityError } from '../constructs/pod-security';
import { synthesizeRun, validateSidecarSpec } from '../constructs/synthesize';
import { SIDECAR_INDEX } from './cache-shapes';
import type { ObjectCache } from './k8s/object-store';
import { RawClient, isNotFound } from './k8s/raw';
import { objectPath } from './k8s/resources';

/**
 * The status of a PipelineSidecar: `Valid` (the spec passes the checks the webhook makes at CREATE),
 * `Ready` (runs of its namespace that ask for it get it), `activeRuns` and `observedGeneration`.
 * docs/operator.md, "PipelineSidecar status", says the same for users.
 */

/** What the operator found when it checked a PipelineSidecar against its namespace. */
export interface SidecarCheck {
  /** validateSidecarSpec's problems, as messages; empty when the spec is valid. */
  readonly problems: readonly string[];
  /**
   * Why a valid spec's objects would still be refused in this namespace (its pods break the Pod
   * Security baseline profile where privileged sidecars are not allowed, or the kind refuses the spec
   * when it builds them); undefined when they would not be.
   */
  readonly refusal?: { readonly reason: string; readonly message: string };
  /** The objects could not be built to check them (message); Ready is then Unknown. */
  readonly checkFailed?: string;
}

/** Stand-ins for what the operator mints per run: synthesis only checks they are present. */
const PLACEHOLDER_RUN: Omit<RunIdentity, 'namespace'> = { name: 'status-check', uid: '00000000-0000-4000-8000-000000000000', runId: 'status00', naming: 'runId' };
const PLACEHOLDER_PEM = 'placeholder';
const PLACEHOLDER_TLS = { caCert: PLACEHOLDER_PEM, serverCert: PLACEHOLDER_PEM, serverKey: PLACEHOLDER_PEM, clientCert: PLACEHOLDER_PEM, clientKey: PLACEHOLDER_PEM };

/**
 * Checks a PipelineSidecar as a run of `namespace` would meet it: its spec, then its objects, built
 * for a stand-in run (pure: placeholder material, no I/O). `privilegedAllowed`: whether pods beyond
 * the Pod Security baseline profile may run in the namespace.
 */
export function checkSidecar(name: string, namespace: string, spec: PipelineSidecarSpec, kinds: KindRegistry, privilegedAllowed: boolean): SidecarCheck {
  let problems: string[];
  try {
    problems = validateSidecarSpec(name, spec, kinds).map((p) => p.message);
  } catch (e) {
    problems = [`cannot be validated: ${(e as Error).message}`];
  }
  if (problems.length > 0) return { problems };
  try {
    const needs = kinds.get(spec.kind, name).needs(spec);
    const material = { tls: needs.tls ? PLACEHOLDER_TLS : undefined, password: needs.password ? PLACEHOLDER_PEM : undefined };
    synthesizeRun({ run: { ...PLACEHOLDER_RUN, namespace }, sidecars: [{ name, spec, material }], allowPrivileged: privilegedAllowed, kinds });
    return { problems };
  } catch (e) {
    if (e instanceof PodSecurityError) return { problems, refusal: { reason: 'PrivilegeNotAllowed', message: e.message } };
    if (e instanceof SidecarSpecError) return { problems, refusal: { reason: 'SpecRefused', message: e.message } };
    return { problems, checkFailed: (e as Error).message };
  }
}

/** Input of sidecarStatus. */
export interface SidecarStatusInput {
  /** metadata.generation of the PipelineSidecar. */
  readonly generation?: number;
  /** What checkSidecar found. */
  readonly check: SidecarCheck;
  /** Runs that have a Deployment of this sidecar. */
  readonly activeRuns: number;
  /** The status as it is now (keeps a condition's lastTransitionTime while its status holds). */
  readonly previous?: PipelineSidecarStatus;
  /** The time to stamp on a condition whose status changes (RFC 3339). */
  readonly now: string;
}

/** The status a PipelineSidecar should have: the one decision of what Valid and Ready say. */
export function sidecarStatus(input: SidecarStatusInput): PipelineSidecarStatus {
  const { check, generation } = input;
  const prev = new Map((input.previous?.conditions ?? []).map((c) => [c.type, c]));
  const cond = (type: string, status: Condition['status'], reason: string, message: string): Condition => {
    const p = prev.get(type);
    const lastTransitionTime = p && p.status === status && p.lastTransitionTime ? p.lastTransitionTime : input.now;
    return { type, status, reason, message, observedGeneration: generation, lastTransitionTime };
  };
  const valid = check.problems.length === 0;
  const ready: Condition = !valid
    ? cond('Ready', 'False', 'SpecInvalid', 'runs that ask for this sidecar are rejected at CREATE until the spec is fixed (see Valid)')
    : check.refusal
      ? cond('Ready', 'False', check.refusal.reason, `runs of this namespace that ask for this sidecar are refused: ${check.refusal.message}`)
      : check.checkFailed !== undefined
        ? cond('Ready', 'Unknown', 'CheckFailed', `the sidecar's objects could not be built to check them: ${check.checkFailed}`)
        : cond('Ready', 'True', 'Ready', 'runs of this namespace that ask for this sidecar get it');
  return {
    observedGeneration: generation,
    activeRuns: input.activeRuns,
    conditions: [
      cond('Valid', valid ? 'True' : 'False', valid ? 'SpecValid' : 'SpecInvalid', valid ? 'the spec is valid' : check.problems.join('; ')),
      ready,
    ],
  };
}

/** JSON with object keys sorted, so two statuses compare equal whatever order the API server wrote their keys in. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]])) : x));
}

/** Whether `desired` says anything `current` does not; a condition's lastTransitionTime alone is no change. */
export function statusChanged(current: PipelineSidecarStatus | undefined, desired: PipelineSidecarStatus): boolean {
  const comparable = (s: PipelineSidecarStatus | undefined) => ({
    ...s,
    conditions: [...(s?.conditions ?? [])]
      .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
      .map(({ lastTransitionTime: _t, ...rest }) => rest),
  });
  return canonical(comparable(current)) !== canonical(comparable(desired));
}

/** Props of SidecarStatusWriter. */
export interface SidecarStatusWriterOptions {
  readonly client: RawClient;
  readonly kinds: KindRegistry;
  /** PipelineSidecars. */
  readonly sidecars: ObjectCache;
  /** The sidecar Deployments, indexed by SIDECAR_INDEX. */
  readonly deployments: ObjectCache;
  /** Whether pods beyond the Pod Security baseline profile may run in a namespace. */
  readonly privilegedAllowed: (namespace: string) => boolean;
  /** Clock (default Date.now). */
  readonly now?: () => number;
}

/** Writes a PipelineSidecar's status subresource, only when it changed. */
export class SidecarStatusWriter {
  constructor(private readonly o: SidecarStatusWriterOptions) {}

  /** Brings the status of PipelineSidecar `<ns>/<name>` up to date (nothing for one no longer cached). */
  async write(key: string): Promise<void> {
    const [ns, name] = key.split('/');
    const cr = this.o.sidecars.get(ns, name) as unknown as PipelineSidecarResource | undefined;
    if (!cr) return;
    const deployments = this.o.deployments.byIndex(SIDECAR_INDEX, `${ns}/${name}`);
    const desired = sidecarStatus({
      generation: cr.metadata.generation,
      check: checkSidecar(name, ns, cr.spec, this.o.kinds, this.o.privilegedAllowed(ns)),
      activeRuns: new Set(deployments.map((d) => d.metadata.labels?.[LABELS.runId]).filter(Boolean)).size,
      previous: cr.status,
      now: new Date((this.o.now ?? Date.now)()).toISOString(),
    });
    if (!statusChanged(cr.status, desired)) return;
    try {
      await this.o.client.mergePatch(`${objectPath(cr as any)}/status`, { status: desired });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
