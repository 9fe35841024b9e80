/**
 * A sidecar spec (or the run it applies to) cannot be turned into manifests.
 * `field` is the path in the PipelineSidecar (e.g. `spec.ports[0].port`) so the operator can put it
 * in a status condition and the user knows exactly what to fix.
 */
export class SidecarSpecError extends Error {
  constructor(
    /** Path of the offending field, e.g. `spec.dockerDaemon` or `metadata.name`. */
    readonly field: string,
    /** What is wrong and what to do about it. */
    readonly problem: string,
    /** The PipelineSidecar the problem is in, when known. */
    readonly sidecar?: string,
  ) {
    super(`${sidecar ? `PipelineSidecar ${sidecar}: ` : ''}${field}: ${problem}`);
    this.name = 'SidecarSpecError';
  }
}
