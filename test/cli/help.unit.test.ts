import * as fs from 'node:fs';
import * as path from 'node:path';
import { COMMANDS } from '../../src/cli';
import { RUN_OPTIONS } from '../../src/cli-run';
import { capture } from './capture';

const PKG = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));


describe('pipeline-sidecars --help and --version', () => {
  test.each(Object.keys(COMMANDS).flatMap(c => [[c, '--help'], [c, '-h']]))('%s %s prints its usage on stdout and exits 0', async (cmd, flag) => {
    const r = await capture([cmd, flag]);
    expect(r).toEqual({ code: 0, out: COMMANDS[cmd].help, err: '' });
    expect(r.out).toMatch(new RegExp(`^usage: pipeline-sidecars ${cmd} `));
  });

  test('help wins over the other arguments, but not after --', async () => {
    expect((await capture(['render', '-f', 'x.yaml', '--help'])).code).toBe(0);
    const operand = await capture(['render', '--', '--help']);
    expect(operand.code).toBe(2); // `--help` is a positional there, which render does not take
    expect(operand.out).toBe('');
  });

  test('a misspelled flag is still a usage error with the command\'s help (the control)', async () => {
    const r = await capture(['render', '--hepl']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^render: Unknown option '--hepl'/);
    expect(r.err).toContain(COMMANDS.render.help);
  });

  test('every flag of run is in its help', () => {
    for (const flag of Object.keys(RUN_OPTIONS)) expect(COMMANDS.run.help).toMatch(new RegExp(`^  --${flag}[ \\n]`, 'm'));
  });

  test('the top-level help lists the commands and exits 0; no arguments is a usage error', async () => {
    const r = await capture(['--help']);
    expect(r.code).toBe(0);
    for (const c of Object.keys(COMMANDS)) expect(r.out).toContain(`  ${c.padEnd(8)} ${COMMANDS[c].summary}`);
    expect((await capture([])).code).toBe(2);
  });

  test('--version prints the version of package.json', async () => {
    expect(PKG.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(await capture(['--version'])).toEqual({ code: 0, out: `${PKG.version}\n`, err: '' });
  });
});
