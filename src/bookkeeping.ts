import { ANNOTATIONS, LABELS } from '../constructs/api/spec';

/** The parts of a PipelineRun's metadata that tell whether the webhook admitted it. */
export interface BookkeepingMetadata {
  readonly annotations?: Record<string, string>;
  readonly labels?: Record<string, string>;
}

/**
 * The run id the reconciler may name a run's objects by, or undefined (fallback mode: derive it
 * from the uid). Trusted only with the webhook's marker: the label pipeline-sidecars.dev/admitted
 * equal to the run-id annotation. Only the webhook sets that pair at CREATE (it strips what users
 * write; a run carrying either is refused while the webhook is down), and the bundle's
 * ValidatingAdmissionPolicy lets nobody but the operator change them afterwards. A run id without
 * the marker (written by hand where the webhook is not installed, or before this release) would let
 * a run claim another run's sidecars, Secrets and NetworkPolicy, so it is ignored.
 */
export function trustedRunId(metadata: BookkeepingMetadata | undefined): string | undefined {
  const id = metadata?.annotations?.[ANNOTATIONS.runId];
  if (!id) return undefined;
  return metadata?.labels?.[LABELS.admitted] === id ? id : undefined;
}
