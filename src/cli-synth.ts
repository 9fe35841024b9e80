import { parseArgs } from 'node:util';

/** Usage line of `pipeline-sidecars synth`. */
export const SYNTH_SUMMARY = 'synth [--out dist] [--image REF] [--served-namespace NS]... [--privileged-namespace NS]... [--namespace NS] [--replicas N] [--cert-manager] ' +
  '[--guard-tekton-labels] [--tekton-controller-user USER]... [--pod-controller-user USER]...: write the install bundle';

/** `pipeline-sidecars synth`: writes the install bundle (the same app as `npm run synth`) to --out. */
export async function synthBundle(argv: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      'out': { type: 'string', short: 'o' },
      'image': { type: 'string' },
      'namespace': { type: 'string' },
      'served-namespace': { type: 'string', multiple: true },
      'replicas': { type: 'string' },
      'cert-manager': { type: 'boolean' },
      'privileged-namespace': { type: 'string', multiple: true },
      'guard-tekton-labels': { type: 'boolean' },
      'tekton-controller-user': { type: 'string', multiple: true },
      'pod-controller-user': { type: 'string', multiple: true },
    },
    strict: true,
  });
  let replicas: number | undefined;
  if (v.replicas !== undefined) {
    replicas = Number(v.replicas);
    if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`--replicas must be a positive integer, not "${v.replicas}"`);
  }
  // Required here, not imported: the install bundle's constructs (and cdk8s-plus) stay out of the
  // operator's memory, since the CLI that runs it imports this module for `synth`'s summary.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { writeInstallBundle } = require('../constructs/bundle/main') as typeof import('../constructs/bundle/main');
  const files = writeInstallBundle(v.out ?? 'dist', {
    image: v.image, namespace: v.namespace, servedNamespaces: v['served-namespace'], replicas, certManager: v['cert-manager'],
    privilegedNamespaces: v['privileged-namespace'], guardTektonLabels: v['guard-tekton-labels'],
    tektonControllerUsers: v['tekton-controller-user'], podControllerUsers: v['pod-controller-user'],
  });
  process.stdout.write(`wrote ${files.join(', ')}\n`);
  return 0;
}
