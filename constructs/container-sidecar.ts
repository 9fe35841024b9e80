import { Construct } from 'constructs';
import { PipelineSidecarSpec, SidecarContainer, SidecarPort } from './api/spec';
import { defineKind, SidecarCreateProps } from './kind';
import { PipelineSidecar, SidecarCommonProps } from './pipeline-sidecar';
import { containerProblems, throwFirst } from './validate';

/** Props of a generic sidecar. */
export interface ContainerSidecarProps extends SidecarCommonProps {
  /** The containers, as written in spec.template.containers. */
  readonly containers: SidecarContainer[];
}

/**
 * The generic kind: containers exactly as the user wrote them (a Tekton Sidecar, run once per
 * PipelineRun). Privileged only if a container asks for it.
 */
export class ContainerSidecar extends PipelineSidecar {
  constructor(scope: Construct, id: string, props: ContainerSidecarProps) {
    super(scope, id, {
      ...props,
      ports: props.ports ?? containerPorts(props.containers),
      privileged: props.containers.some(isPrivileged),
    });
  }
}

function isPrivileged(c: SidecarContainer): boolean {
  return c.securityContext?.privileged === true;
}

/** Service ports derived from the containers' named or numbered ports. */
function containerPorts(containers: SidecarContainer[]): SidecarPort[] {
  const out: SidecarPort[] = [];
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      out.push({ name: p.name ?? `port-${p.containerPort}`, port: p.containerPort, protocol: p.protocol === 'UDP' ? 'UDP' : 'TCP' });
    }
  }
  return out;
}

function templateContainers(spec: PipelineSidecarSpec): SidecarContainer[] {
  return spec.template?.containers ?? [];
}

export const ContainerKind = defineKind<SidecarContainer[]>({
  name: 'Container',
  defaultPorts: spec => containerPorts(templateContainers(spec)),
  privileged: spec => templateContainers(spec).some(isPrivileged),
  parse: (spec, sidecar) => {
    throwFirst(containerProblems(spec.template?.containers, sidecar));
    return templateContainers(spec);
  },
  create: (scope, id, props: SidecarCreateProps, containers) => new ContainerSidecar(scope, id, { ...props, containers }),
});
