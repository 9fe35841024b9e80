import { Construct } from 'constructs';
import { PipelineSidecarSpec, SidecarContainer, SidecarPort } from './api/spec';
import { defineKind, SidecarCreateProps } from './kind';
import { PipelineSidecar, SidecarCommonProps } from './pipeline-sidecar';
import { baselineViolations } from './pod-security';
import { containerProblems, throwFirst } from './validate';

/** Props of a generic sidecar. */
export interface ContainerSidecarProps extends SidecarCommonProps {
  /** The containers, as written in spec.template.containers. */
  readonly containers: SidecarContainer[];
}

/**
 * The generic kind: containers exactly as the user wrote them (a Tekton Sidecar, run once per
 * PipelineRun). Beyond the Pod Security baseline profile only if a container asks for it.
 */
export class ContainerSidecar extends PipelineSidecar {
  constructor(scope: Construct, id: string, props: ContainerSidecarProps) {
    super(scope, id, {
      ...props,
      ports: props.ports ?? containerPorts(props.containers),
    });
  }
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
  optionsKey: 'template',
  defaultPorts: spec => containerPorts(templateContainers(spec)),
  // Informational (the base construct checks the rendered pod): the same check on the containers alone.
  privileged: spec => baselineViolations({ spec: { containers: templateContainers(spec) } }).length > 0,
  parse: (spec, sidecar) => {
    throwFirst(containerProblems(spec.template?.containers, sidecar));
    return templateContainers(spec);
  },
  create: (scope, id, props: SidecarCreateProps, containers) => new ContainerSidecar(scope, id, { ...props, containers }),
});
