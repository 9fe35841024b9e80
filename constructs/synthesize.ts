import { App, Chart } from 'cdk8s';
import { LABELS, PipelineSidecarSpec, RunIdentity, SidecarMaterial, SidecarPort } from './api/spec';
import { durationProblem, STARTUP_TIMEOUT_BOUNDS } from './duration';
import { SidecarSpecError } from './errors';
import { defaultKinds, KindRegistry, optionsKeyOf, SidecarKind } from './kinds';
import { isDns1035Label } from './names';
import { assertBaseline, podTemplateOf } from './pod-security';
import { exposeProblems, portProblems, specSizeProblems, unknownFieldProblems } from './validate';

/** A synthesized object: plain JSON, with the fields that locate it typed. */
export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace: string; readonly labels: Record<string, string>; readonly [key: string]: any };
  readonly [key: string]: any;
}

/** One sidecar of a run, with the material the operator minted for it. */
export interface RunSidecar {
  /** The PipelineSidecar name. */
  readonly name: string;
  /** Its spec. */
  readonly spec: PipelineSidecarSpec;
  /** TLS PEMs and/or password, as the kind's needs() asked for. */
  readonly material: SidecarMaterial;
}

/** Input of synthesizeRun. */
export interface SynthesizeInput {
  /** The PipelineRun. */
  readonly run: RunIdentity;
  /** The sidecars that apply to it. */
  readonly sidecars: RunSidecar[];
  /**
   * Whether the run's namespace allows pods beyond the Pod Security baseline profile (DockerDaemon,
   * BuildKitDaemon, or any container asking for more). Without it every synthesized pod must meet
   * baseline, or synthesis throws PodSecurityError naming the fields.
   */
  readonly allowPrivileged: boolean;
  /** Kinds to use (default: the built-in ones). */
  readonly kinds?: KindRegistry;
}

let builtins: KindRegistry | undefined;
function kindsOrDefault(kinds?: KindRegistry): KindRegistry {
  return kinds ?? (builtins ??= defaultKinds());
}

const RUN_ID = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

interface Checked { readonly kind?: SidecarKind<any>; readonly options?: unknown; readonly problems: SidecarSpecError[] }

function check(name: string, spec: PipelineSidecarSpec, kinds: KindRegistry): Checked {
  const problems: SidecarSpecError[] = [];
  if (!isDns1035Label(name)) {
    problems.push(new SidecarSpecError('metadata.name',
      `"${name}" must be a DNS-1035 label (lowercase letters, digits and "-", starting with a letter, at most 63 characters): object names and hosts derive from it`, name));
  }
  if (!spec || typeof spec !== 'object') return { problems: [...problems, new SidecarSpecError('spec', 'is missing', name)] };
  if (typeof spec.kind !== 'string' || !kinds.has(spec.kind)) {
    problems.push(new SidecarSpecError('spec.kind', `unknown kind "${spec.kind}"; known kinds are ${kinds.names().join(', ')}`, name));
    return { problems };
  }
  const kind = kinds.get(spec.kind, name);
  if (spec.ports !== undefined) problems.push(...portProblems(spec.ports, name));

  const iso = spec.isolation;
  if (iso !== undefined) {
    if (iso.from !== undefined && iso.from !== 'SameRun' && iso.from !== 'Namespace') {
      problems.push(new SidecarSpecError('spec.isolation.from', `"${iso.from}" must be SameRun or Namespace`, name));
    }
    if (iso.matchRunUid !== undefined && typeof iso.matchRunUid !== 'boolean') {
      problems.push(new SidecarSpecError('spec.isolation.matchRunUid', 'must be true or false', name));
    }
    if (iso.egress !== undefined && (!Array.isArray(iso.egress) || iso.egress.some(r => !r || typeof r !== 'object'))) {
      problems.push(new SidecarSpecError('spec.isolation.egress', 'must be a list of NetworkPolicy egress rules', name));
    }
  }
  problems.push(...exposeProblems(spec.expose, name));
  problems.push(...specSizeProblems(spec, name));
  const lc = spec.lifecycle;
  const timeoutProblem = lc?.startupTimeout === undefined ? undefined : durationProblem(lc.startupTimeout, STARTUP_TIMEOUT_BOUNDS);
  if (timeoutProblem) problems.push(new SidecarSpecError('spec.lifecycle.startupTimeout', timeoutProblem, name));
  if (lc?.onSidecarFailure !== undefined && lc.onSidecarFailure !== 'Cancel' && lc.onSidecarFailure !== 'Ignore') {
    problems.push(new SidecarSpecError('spec.lifecycle.onSidecarFailure', `"${lc.onSidecarFailure}" must be Cancel or Ignore`, name));
  }

  problems.push(...unknownFieldProblems(spec, name, optionsKeyOf(kind)));

  let options: unknown;
  try {
    options = kind.parse(spec, name);
  } catch (e) {
    if (!(e instanceof SidecarSpecError)) throw e;
    // An option block's parser names its unknown fields too: say it once.
    if (!problems.some(p => p.field === e.field)) problems.push(e);
  }
  if (spec.ports === undefined && problems.length === 0 && kind.defaultPorts(spec).length === 0) {
    problems.push(new SidecarSpecError('spec.ports', `kind ${kind.name} has no default port; list the ports the sidecar serves`, name));
  }
  return { kind, options, problems };
}

/**
 * Everything wrong with a PipelineSidecar, field by field (empty when it is valid). The operator
 * puts these in the CR's status conditions; synthesizeRun throws the first one.
 */
export function validateSidecarSpec(name: string, spec: PipelineSidecarSpec, kinds?: KindRegistry): SidecarSpecError[] {
  return check(name, spec, kindsOrDefault(kinds)).problems;
}

function checkRun(run: RunIdentity): void {
  const problems: string[] = [];
  if (!run.name) problems.push('name is empty');
  if (!run.namespace) problems.push('namespace is empty');
  if (!run.uid) problems.push('uid is empty');
  if (!run.runId || !RUN_ID.test(run.runId) || run.runId.length > 40) problems.push(`runId "${run.runId}" must be a short lowercase alphanumeric id`);
  if (run.naming !== 'runId' && run.naming !== 'runName') problems.push(`naming "${run.naming}" must be runId or runName`);
  if (problems.length) throw new SidecarSpecError('PipelineRun', `run identity is invalid: ${problems.join('; ')}`);
}

/**
 * The manifests for one run: for each sidecar (sorted by name) its ServiceAccount, Secrets, Service,
 * NetworkPolicy and Deployment, as plain JSON ready for server-side apply through the raw client.
 * A fresh App per call: cdk8s Apps keep every construct alive, so reusing one leaks.
 */
export function synthesizeRun(input: SynthesizeInput): Manifest[] {
  const kinds = kindsOrDefault(input.kinds);
  checkRun(input.run);
  const sidecars = [...input.sidecars].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < sidecars.length; i++) {
    if (sidecars[i].name === sidecars[i - 1].name) throw new SidecarSpecError('metadata.name', 'the run lists this sidecar twice', sidecars[i].name);
  }

  const app = new App();
  const chart = new Chart(app, 'run', { disableResourceNameHashes: true });
  for (const sc of sidecars) {
    const { kind, options, problems } = check(sc.name, sc.spec, kinds);
    if (problems.length > 0) throw problems[0];
    const k = kind!;
    const needs = k.needs(sc.spec);
    if (needs.tls && !sc.material?.tls) throw new Error(`sidecar ${sc.name} (kind ${k.name}) needs TLS material: mint it with mintRunTls() before synthesizing`);
    if (needs.password && !sc.material?.password) throw new Error(`sidecar ${sc.name} (kind ${k.name}) needs a password: mint it with randomPassword() before synthesizing`);
    const ports: SidecarPort[] = sc.spec.ports ?? k.defaultPorts(sc.spec);
    k.create(chart, sc.name, {
      run: input.run,
      sidecarName: sc.name,
      ports,
      isolation: sc.spec.isolation,
      allowPrivileged: input.allowPrivileged,
      spec: sc.spec,
      material: sc.material ?? {},
    }, options);
  }
  const manifests: Manifest[] = chart.toJson();
  if (!input.allowPrivileged) {
    // Again on the final JSON: a kind may patch the base construct's Deployment after building it,
    // or add a workload of its own; what is checked must be what will be applied.
    for (const m of manifests) {
      const pod = podTemplateOf(m);
      if (pod) assertBaseline(pod, input.run.namespace, m.metadata.labels?.[LABELS.sidecar]);
    }
  }
  return manifests;
}
