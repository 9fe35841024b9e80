import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { RUN_HELP, RUN_SUMMARY, runOperator } from './cli-run';
import { SYNTH_SUMMARY, synthBundle } from './cli-synth';
import { KINDS_ENV, kindModulePaths, loadKindModules } from './kind-modules';

/** A `pipeline-sidecars <name>` subcommand. */
export interface Subcommand {
  /** One line for the usage text. */
  readonly summary: string;
  /** What `pipeline-sidecars <name> --help` prints. */
  readonly help: string;
  /** Runs it with the arguments after the subcommand name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

const RENDER_SUMMARY = 'render -f pipelinerun.yaml -f sidecars.yaml [--kinds MODULE]... [--naming runId|runName] [--no-privileged] [--show-secrets]: ' +
  'print what a run would get (no cluster)';

const RENDER_HELP = `usage: pipeline-sidecars render -f FILE... [options]

Prints, with no cluster, each PipelineRun as the webhook admits it and the objects the operator
applies for its sidecars. Run ids and names are stable between calls; TLS material is minted anew.

  -f, --filename FILE         a PipelineRun, and the PipelineSidecars and Pipeline it uses; repeatable; "-" reads stdin
  --kinds MODULE              a kinds module adding sidecar kinds (docs/custom-kind.md); repeatable; also ${KINDS_ENV}
  --naming runId|runName      object names of webhook mode (runId, default) or fallback mode (runName, no webhook)
  --no-privileged             refuse pods beyond the Pod Security baseline, as a namespace without allow-privileged does
  --show-secrets              print private keys (redacted otherwise)
  -h, --help                  this text
`;

/** The text of each -f FILE ("-" is stdin), or an error naming the file that cannot be read. */
function readInput(f: string): string {
  if (f === '-') return fs.readFileSync(0, 'utf8');
  if (!fs.existsSync(f)) throw new Error(`no such file: ${f}`);
  if (fs.statSync(f).isDirectory()) throw new Error(`${f} is a directory: pass its YAML files with -f each`);
  return fs.readFileSync(f, 'utf8');
}

const render: Subcommand = {
  summary: RENDER_SUMMARY,
  help: RENDER_HELP,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        'filename': { type: 'string', short: 'f', multiple: true },
        'kinds': { type: 'string', multiple: true },
        'naming': { type: 'string' },
        'no-privileged': { type: 'boolean' },
        'show-secrets': { type: 'boolean' },
      },
      strict: true,
    });
    const files = values.filename ?? [];
    if (files.length === 0) throw new UsageError('render needs at least one -f FILE (a PipelineRun, and the PipelineSidecars it uses; "-" reads stdin)');
    const naming = values.naming ?? 'runId';
    if (naming !== 'runId' && naming !== 'runName') throw new UsageError(`--naming must be runId or runName, not "${naming}"`);
    const kinds = loadKindModules(kindModulePaths(values.kinds));
    // Required here, not imported: `run` (the operator) never renders, and render.ts brings the YAML library.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { parseDocs, renderRuns, toYaml } = require('./render') as typeof import('./render');
    const docs = files.flatMap(f => parseDocs(readInput(f), f === '-' ? 'stdin' : f));
    const rendered = await renderRuns(docs, { naming, allowPrivileged: !values['no-privileged'], kinds });
    process.stdout.write(toYaml(rendered, { showSecrets: values['show-secrets'] }));
    return 0;
  },
};

/** Subcommands by name. */
export const COMMANDS: Record<string, Subcommand> = {
  render,
  run: { summary: RUN_SUMMARY, help: RUN_HELP, run: (argv) => runOperator(argv) },
  synth: { summary: SYNTH_SUMMARY, help: `usage: pipeline-sidecars ${SYNTH_SUMMARY}\n`, run: (argv) => synthBundle(argv) },
};

/** A mistake in the command line: print it with the usage. */
export class UsageError extends Error {}

function usage(): string {
  return ['usage: pipeline-sidecars <command> [options]', '', 'commands:',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(8)} ${c.summary}`),
    '', '`pipeline-sidecars <command> --help` explains a command; `pipeline-sidecars --version` prints the version.'].join('\n') + '\n';
}

/** This package's version, from the package.json above this file (src/ in a checkout, lib/src/ when installed). */
export function packageVersion(): string {
  for (let dir = __dirname; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')).version;
  }
  throw new Error(`no package.json above ${__dirname}`);
}

/** Whether the arguments ask for help (anything after `--` is an operand, not a flag). */
function asksForHelp(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some(a => a === '--help' || a === '-h');
}

/** Entry point; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`unknown command "${name}"\n${usage()}`);
    return 2;
  }
  if (asksForHelp(rest)) {
    process.stdout.write(cmd.help);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError || String((e as any)?.code).startsWith('ERR_PARSE_ARGS_')) {
      process.stderr.write(`${name}: ${(e as Error).message}\n\n${cmd.help}`);
      return 2;
    }
    // Anything else is a problem with the input (bad spec, missing file, no run): say it plainly.
    if (process.env.PIPELINE_SIDECARS_DEBUG) throw e;
    process.stderr.write(`${name}: ${(e as Error)?.message ?? e}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(code => { process.exitCode = code; }, e => { process.stderr.write(`${e?.stack ?? e}\n`); process.exitCode = 1; });
}
