/**
 * Minimal Tekton v1 CRDs (Pipeline, PipelineRun, TaskRun) and a ValidatingAdmissionPolicy that
 * mirrors Tekton's frozen-spec rule. Written by us: just enough schema for our needs, with the
 * status subresource, so that the operator meets the same API server behaviour as on a Tekton cluster.
 */

function crd(kind: string, plural: string, extraColumns: any[] = []): Record<string, any> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.tekton.dev` },
    spec: {
      group: 'tekton.dev', scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List`, categories: ['tekton', 'tekton-pipelines'] },
      versions: [{
        name: 'v1', served: true, storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          ...extraColumns,
          { name: 'Succeeded', type: 'string', jsonPath: ".status.conditions[?(@.type==\"Succeeded\")].status" },
          { name: 'Reason', type: 'string', jsonPath: ".status.conditions[?(@.type==\"Succeeded\")].reason" },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
            },
          },
        },
      }],
    },
  };
}

export const TEKTON_CRDS = [crd('Pipeline', 'pipelines'), crd('PipelineRun', 'pipelineruns'), crd('TaskRun', 'taskruns')];

/** Tekton's PipelineRun ValidateUpdate: spec is immutable except spec.status until the run is done. */
export const FROZEN_SPEC_POLICY = {
  apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy',
  metadata: { name: 'tekton-pipelinerun-frozen-spec' },
  spec: {
    failurePolicy: 'Fail',
    matchConstraints: {
      resourceRules: [{ apiGroups: ['tekton.dev'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['pipelineruns'] }],
    },
    variables: [
      { name: 'done', expression: "has(oldObject.status) && has(oldObject.status.conditions) && oldObject.status.conditions.exists(c, c.type == 'Succeeded' && c.status != 'Unknown')" },
      { name: 'oldSpec', expression: "has(oldObject.spec) ? oldObject.spec : {}" },
      { name: 'newSpec', expression: "has(object.spec) ? object.spec : {}" },
    ],
    validations: [{
      expression: "variables.done || (variables.newSpec.all(k, k == 'status' || (k in variables.oldSpec && variables.newSpec[k] == variables.oldSpec[k])) && variables.oldSpec.all(k, k == 'status' || k in variables.newSpec))",
      message: 'Once the PipelineRun has been created, only spec.status may change until it is done (Tekton ValidateUpdate)',
      reason: 'Forbidden',
    }],
  },
};

export const FROZEN_SPEC_BINDING = {
  apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding',
  metadata: { name: 'tekton-pipelinerun-frozen-spec' },
  spec: { policyName: 'tekton-pipelinerun-frozen-spec', validationActions: ['Deny'] },
};
