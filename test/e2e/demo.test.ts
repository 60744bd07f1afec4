/**
 * `cohort demo` as a user runs it: starts, serves, and Ctrl-C stops every
 * process it started and removes its temp dir — also after a node was killed
 * (a child killed by a signal has exitCode null: it must not be signalled again).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { BIN } from '../helpers/cluster-procs.js';
import { request, until } from '../helpers/backends.js';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A balancer port whose whole demo layout (nodes +1..+3, manager +10, cluster ports) is free now. */
async function demoPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    // Below the kernel's ephemeral range (32768 by default), where other tests' outgoing connections take ports.
    const p = 20000 + Math.floor(Math.random() * 12000);
    const cluster = 4000 + (p - 8080);
    const all = [p, p + 1, p + 2, p + 3, p + 10, cluster, cluster + 1, cluster + 2, cluster + 3];
    if ((await Promise.all(all.map(portFree))).every(Boolean)) return p;
  }
  throw new Error('no free port layout for the demo');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('cohort demo: serves through the balancer; Ctrl-C after a node was SIGKILLed stops everything and cleans up', async () => {
  const port = await demoPort();
  const demo = spawn(process.execPath, [BIN, 'demo', '--port', String(port), '--restart-after', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
  demo.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => demo.once('exit', (code) => r(code)));
  let pids: number[] = [];
  try {
    await until(() => /Cohort demo is running \(3\/3 nodes ready/.test(out), 30_000, `the demo to start; output:\n${out}`);
    pids = [...out.matchAll(/tc\d: pid (\d+)/g)].map((m) => Number(m[1]));
    assert.equal(pids.length, 3);
    const dir = /saved in (\S+)\/manager-password/.exec(out)?.[1];
    assert.ok(dir && existsSync(dir), 'the demo keeps its secret and password in a temp dir');
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await request(`http://127.0.0.1:${port}/examples/instance.txt`)).body.trim());
    assert.equal(seen.size, 3, `instance.txt spread over the nodes: ${[...seen]}`);

    process.kill(pids[0]!, 'SIGKILL');
    await until(() => out.includes('exited (SIGKILL)'), 10_000, 'the demo to notice the kill');
    demo.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000).unref())]);
    assert.equal(code, 0, `demo exit; output:\n${out.slice(-1500)}`);
    assert.doesNotMatch(out, /ESRCH/);
    await until(() => pids.every((p) => !alive(p)), 5000, 'every node process to be gone');
    assert.equal(existsSync(dir), false, 'temp dir removed');
  } finally {
    for (const p of [demo.pid!, ...pids]) if (alive(p)) process.kill(p, 'SIGKILL');
  }
});
