import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'cdk8s';
import { InstallBundle, InstallBundleProps } from './install-bundle';

/**
 * The cdk8s app `cdk8s.yaml` runs (and `npm run synth`, and `pipeline-sidecars synth`): writes the
 * install bundle to CDK8S_OUTDIR (default dist/) as one file, pipeline-sidecars.k8s.yaml.
 */

/** Props of the committed dist/ bundle: the defaults. */
export const DIST_PROPS: InstallBundleProps = {};

/** The app, not yet written (no I/O until `.synth()`). */
export function installBundleApp(outdir: string, props: InstallBundleProps = DIST_PROPS): App {
  const app = new App({ outdir });
  new InstallBundle(app, 'pipeline-sidecars', props);
  return app;
}

/** The bundle's objects in apply order, as plain JSON (no I/O). */
export function installBundleObjects(props: InstallBundleProps = DIST_PROPS): Array<Record<string, any>> {
  const app = installBundleApp('/nonexistent', props);
  return app.charts.flatMap((c) => c.toJson());
}

/** Writes the bundle to `outdir`, removing stale *.k8s.yaml files first; returns the files written. */
export function writeInstallBundle(outdir: string, props: InstallBundleProps = DIST_PROPS): string[] {
  if (fs.existsSync(outdir)) {
    for (const f of fs.readdirSync(outdir)) if (f.endsWith('.k8s.yaml')) fs.rmSync(path.join(outdir, f));
  }
  installBundleApp(outdir, props).synth();
  return fs.readdirSync(outdir).filter((f) => f.endsWith('.k8s.yaml')).sort().map((f) => path.join(outdir, f));
}

if (require.main === module) {
  const files = writeInstallBundle(process.env.CDK8S_OUTDIR ?? 'dist');
  process.stdout.write(`wrote ${files.join(', ')}\n`);
}
