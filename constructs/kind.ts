import type { Construct } from 'constructs';
import type { PipelineSidecarSpec, SidecarMaterial, SidecarPort } from './api/spec';
import type { PipelineSidecar, SidecarCommonProps } from './pipeline-sidecar';

/** What a kind's `create` gets: the common props (ports already defaulted) plus the raw spec and material. */
export interface SidecarCreateProps extends SidecarCommonProps {
  /** The Service ports: spec.ports, or the kind's defaults. */
  readonly ports: SidecarPort[];
  /** The PipelineSidecar spec, as the user wrote it. */
  readonly spec: PipelineSidecarSpec;
  /** PEMs and passwords minted for this run outside the constructs. */
  readonly material: SidecarMaterial;
}

/** What material a kind needs the operator to mint before synthesis. */
export interface SidecarNeeds {
  /** A per-run CA with server and client certificates. */
  readonly tls: boolean;
  /** A random password. */
  readonly password: boolean;
}

/**
 * A sidecar kind: a name (spec.kind), a parser for its option block, and the construct it builds.
 * `O` is the parsed options type, so `create` never re-validates.
 */
export interface SidecarKind<O = unknown> {
  /** The value of spec.kind, e.g. DockerDaemon. */
  readonly name: string;
  /**
   * The spec key of the kind's option block, e.g. dockerDaemon; any other key outside the common
   * fields is reported as unknown. Absent (hand-written kinds of before): the name in lowerCamelCase.
   */
  readonly optionsKey?: string;
  /**
   * Whether a spec of this kind needs more than the Pod Security baseline profile, i.e. the namespace
   * label pipeline-sidecars.dev/allow-privileged=true. Informational only (previews, docs): what
   * decides is the check of the rendered pod in the base construct, which no kind can bypass.
   */
  privileged(spec: PipelineSidecarSpec): boolean;
  /** Which material the operator must mint for a spec of this kind. */
  needs(spec: PipelineSidecarSpec): SidecarNeeds;
  /** Ports used when spec.ports is absent. */
  defaultPorts(spec: PipelineSidecarSpec): SidecarPort[];
  /** Validates and defaults the kind's option block; throws SidecarSpecError naming the field. */
  parse(spec: PipelineSidecarSpec, sidecarName: string): O;
  /** Builds the construct. */
  create(scope: Construct, id: string, props: SidecarCreateProps, options: O): PipelineSidecar;
}

/** A kind definition where everything but name, parse and create has a sensible default. */
export interface KindDefinition<O> {
  /** The value of spec.kind. */
  readonly name: string;
  /** The spec key of the option block (default: the name in lowerCamelCase, e.g. Redis → redis). */
  readonly optionsKey?: string;
  /** Ports used when spec.ports is absent (default none: spec.ports is then required). */
  readonly defaultPorts?: SidecarPort[] | ((spec: PipelineSidecarSpec) => SidecarPort[]);
  /** Needs more than the Pod Security baseline profile; informational, see SidecarKind.privileged (default false). */
  readonly privileged?: boolean | ((spec: PipelineSidecarSpec) => boolean);
  /** Material to mint (default none). */
  readonly needs?: Partial<SidecarNeeds> | ((spec: PipelineSidecarSpec) => SidecarNeeds);
  /** Parses the option block (default: no options). */
  readonly parse?: (spec: PipelineSidecarSpec, sidecarName: string) => O;
  /** Builds the construct. */
  readonly create: (scope: Construct, id: string, props: SidecarCreateProps, options: O) => PipelineSidecar;
}

/** Turns a short definition into a SidecarKind: the few-lines way to add a kind. */
export function defineKind<O = undefined>(def: KindDefinition<O>): SidecarKind<O> {
  const { name, defaultPorts, privileged, needs, parse, create } = def;
  return {
    name,
    optionsKey: optionsKeyOf(def),
    privileged: spec => (typeof privileged === 'function' ? privileged(spec) : privileged ?? false),
    needs: spec => (typeof needs === 'function' ? needs(spec) : { tls: needs?.tls ?? false, password: needs?.password ?? false }),
    defaultPorts: spec => (typeof defaultPorts === 'function' ? defaultPorts(spec) : defaultPorts ?? []),
    parse: parse ?? (() => undefined as O),
    create,
  };
}

/** The spec key of a kind's option block: its own, or its name in lowerCamelCase. */
export function optionsKeyOf(kind: { readonly name: string; readonly optionsKey?: string }): string {
  return kind.optionsKey ?? kind.name.charAt(0).toLowerCase() + kind.name.slice(1);
}
