/**
 * `npm run chaos -- [--runs M] [--kills K] [--cuts C] [--tekton-kills T] [--outage-seconds S]
 *   [--startup-timeout D] [--sidecar-edits E] [--sidecar-deletions X] [--rate R] [--json out.json]`
 *
 * On a fresh local control plane: M runs (default 100) that ask for a DockerDaemon are created at
 * R/s (default 10) while the operator child process is SIGKILLed K times (default 5) at random
 * moments and restarted, its watch connections are cut C times (default K; SIGUSR2) and the
 * kube-apiserver is restarted once (SIGKILL + start), and Tekton's controller is SIGKILLed and
 * restarted T times (default 2). The operator's Lease is taken away for S seconds (default 15, longer
 * than the startupTimeout D, default 10s), the PipelineSidecar is edited E times (default 4) and
 * deleted and re-created X times (default 2), and the operator's open connections to the API server
 * are frozen once for F seconds (default 8; half-open, behind a local proxy; the operator runs with
 * a 5 s watch idle timeout and must notice). Then it verifies (bench/chaos-core.ts),
 * prints the counts and exits non-zero on any violation.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { ControlPlane } from '../platform/control-plane';
import { runChaos } from './chaos-core';
import { connectWithTekton } from './lib';

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '100' },
    kills: { type: 'string', default: '5' },
    cuts: { type: 'string' },
    'tekton-kills': { type: 'string', default: '2' },
    'outage-seconds': { type: 'string', default: '15' },
    'startup-timeout': { type: 'string', default: '10s' },
    'sidecar-edits': { type: 'string', default: '4' },
    'sidecar-deletions': { type: 'string', default: '2' },
    'freeze-seconds': { type: 'string', default: '8' },
    rate: { type: 'string', default: '10' },
    json: { type: 'string' },
    'no-apiserver-restart': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
const say = (s: string) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

/**
 * The harness's restart, retried: the API server listens on a port from the ephemeral range, and
 * while it is down the clients reconnecting to it can take that port (a TCP self-connect on
 * loopback), so the new process may fail with "address already in use" until they let go.
 */
async function restartApiServer(cp: ControlPlane): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try { await cp.restart('kube-apiserver'); return; } catch (e) {
      if (attempt >= 15) throw e;
      say(`kube-apiserver restart attempt ${attempt} failed (${(e as Error).message.split('\n')[0]}); retrying in 1 s`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function main(): Promise<number> {
  const runs = Number(flags.runs);
  const kills = Number(flags.kills);
  const cuts = flags.cuts === undefined ? kills : Number(flags.cuts);
  const rate = Number(flags.rate);
  const tektonKills = Number(flags['tekton-kills']);
  const [outageSeconds, sidecarEdits, sidecarDeletions, freezeSeconds] = [Number(flags['outage-seconds']), Number(flags['sidecar-edits']), Number(flags['sidecar-deletions']), Number(flags['freeze-seconds'])];
  const usage = 'usage: npm run chaos -- [--runs M (100)] [--kills K (5)] [--cuts C (=K)] [--tekton-kills T (2)] [--outage-seconds S (15)] [--startup-timeout D (10s)] ' +
    '[--sidecar-edits E (4)] [--sidecar-deletions X (2)] [--freeze-seconds F (8)] [--rate R (10/s)] [--no-apiserver-restart] [--json out.json]\n';
  if (flags.help) {
    process.stdout.write(usage);
    return 0;
  }
  if (![runs, kills, cuts, tektonKills, outageSeconds, sidecarEdits, sidecarDeletions, freezeSeconds].every((n) => Number.isInteger(n) && n >= 0) || runs < 1 || !(rate > 0)) {
    process.stderr.write(usage);
    return 2;
  }
  const cp = await ControlPlane.start();
  process.on('SIGINT', () => { void cp.stop().then(() => process.exit(130)); });
  try {
    say(`control plane up in ${cp.state.startedMs} ms`);
    const { client } = await connectWithTekton(cp);
    client.close();
    say(`${runs} runs at ${rate}/s; ${kills} operator SIGKILLs, ${cuts} watch cuts, ${tektonKills} Tekton controller SIGKILLs, ` +
      `a ${outageSeconds} s operator outage (startupTimeout ${flags['startup-timeout']}), ${sidecarEdits} PipelineSidecar edits, ${sidecarDeletions} deletions${flags['no-apiserver-restart'] ? '' : ', 1 kube-apiserver restart'}`);
    const result = await runChaos({
      kubeconfig: cp.state.kubeconfig, namespace: 'chaos', runs, kills, watchCuts: cuts, rate,
      restartApiServer: flags['no-apiserver-restart'] ? undefined : () => restartApiServer(cp),
      tektonKills, restartTektonController: tektonKills > 0 ? () => cp.restart('tekton-controller') : undefined,
      outageSeconds: outageSeconds || undefined, startupTimeout: flags['startup-timeout'], sidecarEdits, sidecarDeletions,
      freezeSeconds: freezeSeconds || undefined,
      log: (l) => say(l),
    });
    process.stdout.write(`\npipeline-sidecars chaos: ${new Date().toISOString()}, ${require('node:os').cpus().length} cores\n\n`);
    const w = Math.max(...Object.keys(result.counts).map((k) => k.length));
    for (const [k, v] of Object.entries(result.counts)) process.stdout.write(`  ${k.padEnd(w)}  ${v}\n`);
    process.stdout.write(result.violations.length ? `\n${result.violations.length} VIOLATIONS:\n  ${result.violations.slice(0, 50).join('\n  ')}\n` : '\nviolations: 0\n');
    if (flags.json) fs.writeFileSync(flags.json, JSON.stringify({ date: new Date().toISOString(), runs, kills, cuts, rate, ...result }, null, 1));
    await cp.stop();
    return result.violations.length ? 1 : 0;
  } catch (e) {
    say(`failed: ${(e as Error).stack ?? e}`);
    await cp.stop({ keepLogs: true });
    say(`control plane logs kept in ${cp.state.workDir}/logs`);
    return 1;
  }
}

main().then((code) => process.exit(code));
