/**
 * Warm synthesis cost per run and heap growth, for one DockerDaemon sidecar with pre-minted TLS
 * (minting is measured separately: it is once per run, and async).
 *   npm run bench:synth            (node --expose-gc, so heap numbers are after a full GC)
 * Prints numbers; it asserts nothing.
 */
import { RunIdentity, synthesizeRun, TlsBundle } from '../constructs';
import { serviceDnsNames } from '../constructs/names';
import { mintRunTls } from '../src/tls';

const TIMED = Number(process.env.BENCH_RUNS ?? 1000);
const HEAP_RUNS = Number(process.env.BENCH_HEAP_RUNS ?? 10_000);
const WARMUP = 500;

function run(i: number): RunIdentity {
  return { name: `build-${i}`, namespace: 'ci', uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, runId: `r${i.toString(36).padStart(7, '0')}`, naming: 'runId' };
}

function once(i: number, tls: TlsBundle): number {
  return synthesizeRun({ run: run(i), sidecars: [{ name: 'docker', spec: { kind: 'DockerDaemon' }, material: { tls } }], allowPrivileged: true }).length;
}

function gc(): void {
  const g = (globalThis as any).gc as (() => void) | undefined;
  if (g) { g(); g(); }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

async function main(): Promise<void> {
  let t = process.hrtime.bigint();
  const tls = await mintRunTls({ hosts: serviceDnsNames('docker-r0000000', 'ci') });
  const firstMint = Number(process.hrtime.bigint() - t) / 1e6;
  const mints: number[] = [];
  for (let i = 0; i < 20; i++) {
    t = process.hrtime.bigint();
    await mintRunTls({ hosts: serviceDnsNames(`docker-${i}`, 'ci') });
    mints.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  mints.sort((a, b) => a - b);

  t = process.hrtime.bigint();
  const objects = once(0, tls);
  const cold = Number(process.hrtime.bigint() - t) / 1e6;
  for (let i = 1; i <= WARMUP; i++) once(i, tls);

  const times: number[] = [];
  for (let i = 0; i < TIMED; i++) {
    const s = process.hrtime.bigint();
    once(WARMUP + i, tls);
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  times.sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;

  gc();
  const heapWarm = process.memoryUsage().heapUsed;
  const checkpoints: string[] = [];
  for (let i = 0; i < HEAP_RUNS; i++) {
    once(100_000 + i, tls);
    if ((i + 1) % (HEAP_RUNS / 4) === 0) {
      gc();
      checkpoints.push(mb(process.memoryUsage().heapUsed));
    }
  }
  gc();
  const heapAfter = process.memoryUsage().heapUsed;

  const gcNote = (globalThis as any).gc ? 'after full GC' : 'WITHOUT --expose-gc: heap numbers include garbage';
  console.log(`synthesizeRun, 1 DockerDaemon sidecar (${objects} objects), node ${process.version}`);
  console.log(`  cold first run        ${cold.toFixed(2)} ms`);
  console.log(`  warm, ${TIMED} runs      p50 ${pct(times, 50).toFixed(3)} ms   p99 ${pct(times, 99).toFixed(3)} ms   mean ${mean.toFixed(3)} ms   max ${times[times.length - 1].toFixed(3)} ms`);
  console.log(`mintRunTls (ECDSA P-256, CA + server + client)`);
  console.log(`  first ${firstMint.toFixed(1)} ms, then p50 ${pct(mints, 50).toFixed(1)} ms   max ${mints[mints.length - 1].toFixed(1)} ms (20 runs)`);
  console.log(`heap used (${gcNote})`);
  console.log(`  after warm-up         ${mb(heapWarm)}`);
  console.log(`  during ${HEAP_RUNS} runs    ${checkpoints.join(' → ')}`);
  console.log(`  after ${HEAP_RUNS} runs     ${mb(heapAfter)}   (delta ${((heapAfter - heapWarm) / 1024).toFixed(0)} KiB)`);
}

main().catch(e => { console.error(e); process.exitCode = 1; });
