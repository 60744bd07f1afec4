/**
 * `npm run bench`: figures as ratios against a baseline measured in the same run.
 *
 * 1. Throughput: a closed-loop load (undici, C connections, D seconds) straight at a backend (direct),
 *    then through `cohort balancer` over two backends. Prints req/s, p50, p99 and the ratio to direct.
 * 2. Uneven members: three backends, one of them slow; byrequests vs bylatency, same load;
 *    prints p50/p99 for each and the p99 ratio.
 *
 * Env: BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 32), SLOW_MS (default 40).
 * Backends and the balancer run as separate processes; the load runs here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Pool } from 'undici';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const slowMs = Number(process.env.SLOW_MS ?? 40);
const children: ChildProcess[] = [];

function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

async function firstLine(child: ChildProcess): Promise<string> {
  const rl = createInterface({ input: child.stdout! });
  const [line] = (await once(rl, 'line')) as [string];
  rl.close();
  return line;
}

async function backend(name: string, delayMs = 0): Promise<string> {
  const child = spawn(process.execPath, [join(root, 'dist/bench/backend.js')], { env: { ...process.env, NAME: name, DELAY_MS: String(delayMs) }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return `http://127.0.0.1:${await firstLine(child)}`;
}

async function balancer(members: string[], method: string): Promise<{ url: string; child: ChildProcess }> {
  const args = [join(root, 'bin/cohort.js'), 'balancer', '--listen', '127.0.0.1:0', '--no-access-log', '--log-level', 'warn', '--method', method];
  members.forEach((m, i) => args.push('--member', `n${i + 1}=${m}`));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  const rl = createInterface({ input: child.stderr! });
  for await (const line of rl) {
    const m = /listening on (\S+)/.exec(line);
    if (m) {
      rl.removeAllListeners();
      child.stderr!.resume();
      return { url: m[1]!, child };
    }
  }
  throw new Error('balancer did not start');
}

interface Result {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

/** Closed loop: `connections` workers each send a request after the previous answer, for `seconds`. */
async function load(url: string, secs = seconds): Promise<Result> {
  const pool = new Pool(url, { connections, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  const warmEnd = performance.now() + 1000;
  const end = warmEnd + secs * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const r = await pool.request({ path: '/', method: 'GET' });
        await r.body.dump();
        if (r.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      if (t0 >= warmEnd) latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  await pool.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rps: latencies.length / secs, p50: q(0.5), p99: q(0.99), errors };
}

const fmt = (r: Result) => `${r.rps.toFixed(0).padStart(8)} req/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(7)} ms  errors ${r.errors}`;

async function main(): Promise<void> {
  process.stdout.write(`cohort bench: ${seconds}s per run after 1s warm-up, ${connections} connections, node ${process.version}\n\n`);
  const [b1, b2] = [await backend('b1'), await backend('b2')];
  const direct = await load(b1!);
  const lb = await balancer([b1!, b2!], 'byrequests');
  const through = await load(lb.url);
  process.kill(lb.child.pid!, 'SIGTERM');
  process.stdout.write('1. throughput (two fast backends)\n');
  process.stdout.write(`   direct              ${fmt(direct)}\n`);
  process.stdout.write(`   cohort byrequests   ${fmt(through)}\n`);
  process.stdout.write(`   ratio to direct: req/s ${(through.rps / direct.rps).toFixed(3)}  p50 ×${(through.p50 / direct.p50).toFixed(2)}  p99 ×${(through.p99 / direct.p99).toFixed(2)}\n\n`);

  const fast1 = await backend('f1');
  const fast2 = await backend('f2');
  const slow = await backend('slow', slowMs);
  const results: Record<string, Result> = {};
  for (const method of ['byrequests', 'bylatency']) {
    const b = await balancer([fast1, fast2, slow], method);
    results[method] = await load(b.url);
    process.kill(b.child.pid!, 'SIGTERM');
  }
  process.stdout.write(`2. uneven members (2 fast, 1 answering after ${slowMs} ms)\n`);
  for (const [m, r] of Object.entries(results)) process.stdout.write(`   ${m.padEnd(19)} ${fmt(r)}\n`);
  const a = results.byrequests!;
  const b = results.bylatency!;
  process.stdout.write(`   bylatency ÷ byrequests: p99 ${(b.p99 / a.p99).toFixed(3)}  p50 ${(b.p50 / a.p50).toFixed(3)}  req/s ${(b.rps / a.rps).toFixed(2)}\n`);
  cleanup();
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  cleanup();
  process.exit(1);
});
