/**
 * Memory of the balancer holding idle keep-alive clients (issue 10's memory
 * target): starts two bench/backend.ts members and `cohort balancer` from
 * REPO (default: this checkout), opens CLIENTS (default 10,000) client
 * connections, sends one request on each and keeps them all open, and
 * reads the balancer's RSS (VmRSS): idle, holding the clients, and after
 * they closed. Bounded: every step has a deadline.
 *
 * Usage: node dist/bench/idle-clients.js [REPO] [CLIENTS]   (raises its own descriptor limit only as far as
 * `ulimit -n` allows: run it from a shell with `ulimit -n 65536`)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(fileURLToPath(import.meta.url), '../../..');
const repo = resolve(process.argv[2] ?? here);
const clients = Number(process.argv[3] ?? 10_000);
const children: ChildProcess[] = [];

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function startBackend(name: string): Promise<number> {
  const c = spawn(process.execPath, [join(here, 'dist/bench/backend.js')], { env: { ...process.env, NAME: name }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  return new Promise((res, rej) => {
    c.stdout!.once('data', (d: Buffer) => res(Number(d.toString().trim())));
    setTimeout(() => rej(new Error('backend did not start')), 5000).unref();
  });
}

function connectOne(port: number): Promise<net.Socket> {
  return new Promise((res, rej) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(20_000, () => s.destroy(new Error('timeout')));
    s.once('error', rej);
    s.once('connect', () => s.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n'));
    s.once('data', () => {
      s.setTimeout(0);
      res(s);
    });
  });
}

async function main(): Promise<void> {
  const [p1, p2] = await Promise.all([startBackend('b1'), startBackend('b2')]);
  const port = 18300 + (process.pid % 500);
  // --max-semi-space-size=64 given here, as the `cohort` command adds it (no re-exec: the RSS is this process's).
  const lb = spawn(process.execPath, ['--max-semi-space-size=64', join(repo, 'bin/cohort.js'), 'balancer', '--listen', `127.0.0.1:${port}`,
    '--member', `b1=http://127.0.0.1:${p1}`, '--member', `b2=http://127.0.0.1:${p2}`, '--no-access-log', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(lb);
  await new Promise<void>((res, rej) => {
    lb.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('listening')) res(); });
    setTimeout(() => rej(new Error('balancer did not start')), 10_000).unref();
  });
  await new Promise((r) => setTimeout(r, 500));
  const idle = rssMiB(lb.pid!);
  const sockets: net.Socket[] = [];
  const started = Date.now();
  for (let i = 0; i < clients; i += 200) {
    const batch = await Promise.all(Array.from({ length: Math.min(200, clients - i) }, () => connectOne(port)));
    sockets.push(...batch);
    if (Date.now() - started > 120_000) throw new Error(`only ${sockets.length} clients in 120 s`);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const held = rssMiB(lb.pid!);
  for (const s of sockets) s.destroy();
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssMiB(lb.pid!);
  console.log(`${repo}: ${sockets.length} idle keep-alive clients: balancer RSS ${idle.toFixed(1)} MiB idle, ${held.toFixed(1)} MiB holding them (${(((held - idle) * 1024 * 1024) / sockets.length / 1024).toFixed(1)} KiB per client), ${after.toFixed(1)} MiB after they closed`);
}

main()
  .catch((err: Error) => {
    console.error(err.message);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const c of children) c.kill('SIGTERM');
  });
