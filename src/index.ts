/**
 * pipeline-sidecars as a library: the Operator (embed it in your own image with your own kinds),
 * the constructs (the install bundle's included), and the pieces a platform team may want on their own.
 *
 *     import { Operator, defaultKinds } from 'pipeline-sidecars';
 *     const op = new Operator({ kubeConfig, namespace: 'pipeline-sidecars', kinds: defaultKinds().register(myKind) });
 */
export * from '../constructs';
export { pipelineSidecarCrd, PipelineSidecarCrd, MAX_SIDECAR_NAME_LENGTH } from '../constructs/api/crd';
export { mutatingWebhookConfiguration, PipelineRunWebhookConfiguration, WEBHOOK_PATH } from '../constructs/api/webhook-config';
export type { WebhookConfigProps } from '../constructs/api/webhook-config';
export { Operator } from './operator';
export { KINDS_ENV, KindModuleError, kindModulePaths, loadKindModules } from './kind-modules';
export type { OperatorOptions } from './operator';
export type { WebhookOptions } from './webhook';
export type { LeaderElectionOptions } from './leader';
export { admitPipelineRun } from './admission';
export type { AdmissionDecision, AdmissionInput } from './admission';
export { Reconciler } from './reconcile';
export { isDone, runIdentity } from './pipelinerun';
export { OWNED_KINDS } from './cleanup';
export { selectSidecars, selectorMatches, annotatedSidecars } from './selection';
export { mintRunTls, randomPassword } from './tls';
export { mintWebhookTls } from './webhook-tls';
export { createLogger } from './log';
export type { Logger, LogLevel } from './log';
export { RawClient, ApiError, isNotFound, isConflict } from './k8s/raw';
export { loadKubeAccess } from './k8s/kube-access';
export type { KubeAccess, KubeAccessSource, LoadedKubeAccess, LoadKubeAccessOptions } from './k8s/kube-access';
export { Informer } from './k8s/informer';
export { WorkQueue } from './queue';
