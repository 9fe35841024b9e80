import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { MAX_SIDECAR_NAME_LENGTH } from './api/crd';
import { API_VERSION, KIND, PipelineSidecarSpec } from './api/spec';
import { KindRegistry } from './kinds';
import { SYNC_WAVES, syncWave } from './bundle/sync-wave';
import { validateSidecarSpec } from './synthesize';

/** Props of PipelineSidecarObject. */
export interface PipelineSidecarObjectProps {
  /** metadata.name: what runs ask for, at most MAX_SIDECAR_NAME_LENGTH characters. */
  readonly name: string;
  /**
   * The namespace (a served namespace of the install).
   * @default the chart's namespace
   */
  readonly namespace?: string;
  /** The spec, checked here as the operator will check it. */
  readonly spec: PipelineSidecarSpec;
  /**
   * The kinds the operator knows: its built-ins plus your own (the same module the operator image
   * loads), so that a spec of your kind is checked too.
   * @default the built-in kinds
   */
  readonly kinds?: KindRegistry;
  /** Extra labels. */
  readonly labels?: Record<string, string>;
}

/**
 * A PipelineSidecar custom resource, for a GitOps repo's cdk8s app: the spec is validated at synth
 * time with the operator's own rules, so a mistake fails the synth with the field and the fix
 * instead of showing up later as `Valid=False` on a synced object. In Argo CD's workload wave, after
 * the CRD.
 */
export class PipelineSidecarObject extends ApiObject {
  constructor(scope: Construct, id: string, props: PipelineSidecarObjectProps) {
    if (props.name.length > MAX_SIDECAR_NAME_LENGTH) {
      throw new Error(`PipelineSidecarObject "${props.name}": the name is ${props.name.length} characters, over the CRD's ${MAX_SIDECAR_NAME_LENGTH} (object names derive from it); choose a shorter one`);
    }
    const problems = validateSidecarSpec(props.name, props.spec, props.kinds);
    if (problems.length > 0) {
      throw new Error(`PipelineSidecarObject "${props.name}" is not valid: ${problems.map((p) => p.message).join('; ')}`);
    }
    super(scope, id, {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: props.name, ...(props.namespace ? { namespace: props.namespace } : {}), ...(props.labels ? { labels: props.labels } : {}) },
      spec: props.spec,
    } as any);
    syncWave(this, SYNC_WAVES.workload);
  }
}
