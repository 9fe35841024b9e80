import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { RUN_SUMMARY, runOperator } from './cli-run';
import { SYNTH_SUMMARY, synthBundle } from './cli-synth';
import { parseDocs, renderRuns, toYaml } from './render';

/** A `pipeline-sidecars <name>` subcommand. */
export interface Subcommand {
  /** One line for the usage text. */
  readonly summary: string;
  /** Runs it with the arguments after the subcommand name; resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

const render: Subcommand = {
  summary: 'render -f pipelinerun.yaml -f sidecars.yaml [--naming runId|runName] [--no-privileged]: print the manifests a run would get (no cluster)',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        'filename': { type: 'string', short: 'f', multiple: true },
        'naming': { type: 'string' },
        'no-privileged': { type: 'boolean' },
      },
      strict: true,
    });
    const files = values.filename ?? [];
    if (files.length === 0) throw new UsageError('render needs at least one -f FILE (a PipelineRun, and the PipelineSidecars it uses; "-" reads stdin)');
    const naming = values.naming ?? 'runId';
    if (naming !== 'runId' && naming !== 'runName') throw new UsageError(`--naming must be runId or runName, not "${naming}"`);
    const docs = files.flatMap(f => parseDocs(fs.readFileSync(f === '-' ? 0 : f, 'utf8'), f));
    const rendered = await renderRuns(docs, { naming, allowPrivileged: !values['no-privileged'] });
    process.stdout.write(toYaml(rendered));
    return 0;
  },
};

/** Subcommands by name; the operator adds `run` here. */
export const COMMANDS: Record<string, Subcommand> = {
  render,
  run: { summary: RUN_SUMMARY, run: (argv) => runOperator(argv) },
  synth: { summary: SYNTH_SUMMARY, run: (argv) => synthBundle(argv) },
};

/** A mistake in the command line: print it with the usage. */
export class UsageError extends Error {}

function usage(): string {
  return ['usage: pipeline-sidecars <command> [options]', '', 'commands:',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(8)} ${c.summary}`)].join('\n') + '\n';
}

/** Entry point; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`unknown command "${name}"\n${usage()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof UsageError || (e as any)?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as any)?.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      process.stderr.write(`${(e as Error).message}\n${usage()}`);
      return 2;
    }
    // Anything else is a problem with the input (bad spec, missing file, no run): say it plainly.
    if (process.env.PIPELINE_SIDECARS_DEBUG) throw e;
    process.stderr.write(`error: ${(e as Error)?.message ?? e}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(code => { process.exitCode = code; }, e => { process.stderr.write(`${e?.stack ?? e}\n`); process.exitCode = 1; });
}
