import { BUNDLE_DEFAULTS, WEBHOOK_SERVICE_NAME } from '../../constructs/bundle';
import { installBundleObjects } from '../../constructs/bundle/main';
import { webhookCertHosts, webhookService } from '../../src/webhook';

/** The webhook Service's name: the bundle, its operator's flags and the library default must agree. */
describe('one webhook Service name', () => {
  const objs = installBundleObjects();
  const service = objs.find((o) => o.kind === 'Service')!;
  const svcHost = `${service.metadata.name}.${service.metadata.namespace}.svc`;
  const args: string[] = objs.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].args;

  test('the bundle has one Service, named WEBHOOK_SERVICE_NAME, in the operator namespace', () => {
    expect(objs.filter((o) => o.kind === 'Service')).toHaveLength(1);
    expect(service.metadata.name).toBe(WEBHOOK_SERVICE_NAME);
    expect(service.metadata.namespace).toBe(BUNDLE_DEFAULTS.namespace);
  });

  test('the webhook configuration calls that Service, and the operator is told its name', () => {
    const hooks = objs.find((o) => o.kind === 'MutatingWebhookConfiguration')!.webhooks;
    expect(hooks.length).toBeGreaterThan(0);
    for (const h of hooks) expect(h.clientConfig.service).toMatchObject({ name: service.metadata.name, namespace: service.metadata.namespace });
    expect(args[args.indexOf('--webhook-service') + 1]).toBe(service.metadata.name);
  });

  test('an operator told no Service assumes the bundle\'s: its default serving certificate names the bundle Service\'s host', () => {
    const ns = service.metadata.namespace;
    expect(webhookService({ port: 0 }, ns)).toEqual({ namespace: ns, name: service.metadata.name, port: 443 });
    expect(webhookCertHosts({ port: 0 }, ns)).toContain(svcHost);
  });

  test('the host check tells names apart (negative control): a certificate for another Service name lacks the host', () => {
    const other = webhookCertHosts({ port: 0, service: { namespace: service.metadata.namespace, name: 'pipeline-sidecars-webhook' } }, service.metadata.namespace);
    expect(other).toContain(`pipeline-sidecars-webhook.${service.metadata.namespace}.svc`);
    expect(other).not.toContain(svcHost);
  });

  test('with a url and no Service, the certificate names the url\'s host and no Service is assumed', () => {
    const opts = { port: 0, url: 'https://10.0.0.5:{port}/mutate-pipelinerun' };
    expect(webhookService(opts, 'x')).toBeUndefined();
    expect(webhookCertHosts(opts, 'x')).toEqual(['10.0.0.5']);
  });
});
