import { createHash } from 'node:crypto';
import { PipelineSidecarSpec, RunIdentity, TlsBundle, serviceDnsNames, sidecarEndpoints, synthesizeRun } from '../constructs';
import { defaultKinds } from '../constructs/kinds';
import type { RawClient } from '../src/k8s/raw';
import { collectionPath } from '../src/k8s/resources';
import { mintRunTls, randomPassword } from '../src/tls';
import { REAL_NODE_TOLERATION, NodeState } from './node';

/**
 * One run's sidecar on the real node, exactly as the constructs synthesize it (the operator's code
 * path), without Tekton: the Deployment is only pointed at the dedicated node, and the objects carry
 * no ownerReference (there is no PipelineRun to own them, and the garbage collector would delete them).
 */
export interface DeployedSidecar {
  readonly run: RunIdentity;
  readonly host: string;
  readonly port: number;
  readonly tls?: TlsBundle;
  readonly clientSecretName?: string;
  readonly deploymentName: string;
  /** The NetworkPolicy's name (deleted by isolation negative controls). */
  readonly policyName?: string;
}

/**
 * The labels Tekton puts on the pods of a run's TaskRuns that the sidecar's NetworkPolicy selects
 * by: the run's name and uid. Without a real PipelineRun, the uid is derived from the name, so a
 * test can label "its own" task pods and another run's pods differently.
 */
export function taskPodLabels(runName: string, namespace: string): Record<string, string> {
  return { 'tekton.dev/pipelineRun': runName, 'tekton.dev/pipelineRunUID': runUidOf(runName, namespace) };
}

function runUidOf(runName: string, namespace: string): string {
  const h = createHash('sha256').update(`${namespace}/${runName}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export async function deploySidecar(client: RawClient, node: NodeState, ns: string, runName: string, sidecar: string, spec: PipelineSidecarSpec): Promise<DeployedSidecar> {
  const run: RunIdentity = { name: runName, namespace: ns, uid: runUidOf(runName, ns), runId: runName.replace(/[^a-z0-9]/g, '').slice(0, 8) || 'run', naming: 'runId' };
  const ep = sidecarEndpoints(run, sidecar, spec);
  const needs = defaultKinds().get(spec.kind, sidecar).needs(spec);
  const tls = needs.tls ? await mintRunTls({ hosts: serviceDnsNames(ep.serviceName, ns) }) : undefined;
  const manifests = synthesizeRun({ run, sidecars: [{ name: sidecar, spec, material: { tls, password: needs.password ? randomPassword() : undefined } }], allowPrivileged: true });
  let deploymentName = '';
  let policyName: string | undefined;
  for (const m of manifests) {
    const obj: any = JSON.parse(JSON.stringify(m));
    delete obj.metadata.ownerReferences;
    if (obj.kind === 'Deployment') {
      deploymentName = obj.metadata.name;
      const pod = obj.spec.template.spec;
      pod.nodeSelector = { ...(pod.nodeSelector ?? {}), 'kubernetes.io/hostname': node.name };
      pod.tolerations = [...(pod.tolerations ?? []), REAL_NODE_TOLERATION];
    }
    if (obj.kind === 'NetworkPolicy') policyName = obj.metadata.name;
    await client.create(collectionPath(obj.apiVersion, obj.kind, ns), obj);
  }
  return { run, host: ep.host, port: ep.port, tls, clientSecretName: ep.clientSecretName, deploymentName, policyName };
}

/** The pod of a sidecar's Deployment (the newest, if a crash made more). */
export async function sidecarPod(client: RawClient, ns: string, d: DeployedSidecar): Promise<any | undefined> {
  const list = await client.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `pipeline-sidecars.dev/run-id=${d.run.runId}` });
  return (list.items ?? []).sort((a: any, b: any) => (a.metadata.creationTimestamp < b.metadata.creationTimestamp ? 1 : -1))[0];
}
