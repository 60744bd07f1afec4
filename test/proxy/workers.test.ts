/**
 * `cohort balancer --workers 2` as a user runs it: a real primary (the state
 * owner) and two worker engines against loopback backends. Each test would
 * fail if the workers kept their member state apart: per-worker `max` lets
 * twice the limit through, a failure seen by one worker would be repeated by
 * the other, health checks and manager changes would reach no worker.
 */
import test, { after, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { parseBalancerConfig } from '../../src/config/load.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { request, sleep, startBackend, until, type Backend } from '../helpers/backends.js';

const BIN = fileURLToPath(new URL('../../../bin/cohort.js', import.meta.url));

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-workers-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Cli {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  readonly manager: string | undefined;
  stderr(): string;
  readonly exit: Promise<{ code: number | null; signal: string | null }>;
}

function writeConfig(name: string, config: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, stringify({ listen: '127.0.0.1:0', accesslog: false, loglevel: 'warn', ...config }));
  return file;
}

async function startCli(config: Record<string, unknown>, name: string, workers = 2): Promise<Cli> {
  const file = writeConfig(name, config);
  const child = spawn(process.execPath, [BIN, 'balancer', '--config', file, '--workers', String(workers)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  await until(() => /listening on (http\S+)/.test(err) || child.exitCode !== null, 20_000, 'the balancer to listen');
  const m = new RegExp(`listening on (http\\S+) \\(${workers} workers\\)`).exec(err);
  if (!m) {
    if (child.exitCode === null) child.kill('SIGKILL');
    throw new Error(`balancer did not start: ${err}`);
  }
  const url = m[1]!;
  return { child, url, port: Number(new URL(url).port), manager: /manager on (http:\/\/\S+?)\/balancer-manager\//.exec(err)?.[1], stderr: () => err, exit };
}

async function stop(c: Cli): Promise<number | null> {
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
  const deadline = setTimeout(() => c.child.kill('SIGKILL'), 15_000);
  const { code } = await c.exit;
  clearTimeout(deadline);
  return code;
}

function members(...bs: Backend[]): Record<string, unknown>[] {
  return bs.map((b) => ({ url: b.url, route: b.name }));
}

test('--workers 2: max is global — 40 concurrent requests on a member with max 4 never put more than 4 at it', { timeout: 60_000 }, async () => {
  const tc1 = await startBackend('tc1');
  const cli = await startCli({ balancers: [{ name: 'b', slowstart: 0, timeout: 30, members: [{ url: tc1.url, route: 'tc1', max: 4 }] }] }, 'max.yaml');
  try {
    // Each on its own connection, so both workers get about half.
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => request(`${cli.url}/slow/150?i=${i}`, { timeoutMs: 30_000 })));
    assert.deepEqual(replies.map((r) => r.status), new Array(40).fill(200));
    assert.equal(tc1.seen.length, 40);
    // Per-worker limits would let 8 through; the leases keep the sum at 4.
    assert.ok(tc1.maxActive <= 4, `the member had ${tc1.maxActive} requests at once`);
    assert.equal(tc1.maxActive, 4, 'the limit was used, not undershot');
    assert.equal(await stop(cli), 0);
  } finally {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await tc1.close();
  }
});

test('--workers 2: a member that fails a request is avoided by both workers (one failure, shared), and byrequests weights hold globally', { timeout: 60_000 }, async () => {
  const tc1 = await startBackend('tc1');
  const tc2 = await startBackend('tc2');
  const tc3 = await startBackend('tc3');
  const cli = await startCli({
    balancers: [{ name: 'b', slowstart: 0, outlier: false, members: [{ url: tc1.url, route: 'tc1', retry: 60 }, { url: tc2.url, route: 'tc2', loadfactor: 3 }, { url: tc3.url, route: 'tc3', loadfactor: 1 }] }],
  }, 'fail.yaml');
  try {
    tc1.mode = { kind: 'reset' };
    // Requests until one reached tc1 (it resets: the request fails over), then let the owner broadcast.
    for (let i = 0; i < 20 && tc1.seen.length === 0; i++) assert.equal((await request(`${cli.url}/a${i}`)).status, 200);
    assert.equal(tc1.seen.length, 1);
    await sleep(300);
    const before = { tc2: tc2.seen.length, tc3: tc3.seen.length };
    for (let i = 0; i < 80; i++) {
      const r = await request(`${cli.url}/b${i}`);
      assert.equal(r.status, 200);
      assert.notEqual(r.headers['x-backend'], 'tc1');
    }
    // Both workers took connections (round-robin); the one that never saw the failure avoided tc1 too.
    assert.equal(tc1.seen.length, 1, `tc1 was tried once in all, not once per worker; ${cli.stderr()}`);
    // Each worker splits its own share of the connections 3:1; the sum is 3:1 (60/20) give or take a few.
    const n2 = tc2.seen.length - before.tc2;
    const n3 = tc3.seen.length - before.tc3;
    assert.equal(n2 + n3, 80);
    assert.ok(n2 >= 56 && n2 <= 64, `tc2 got ${n2} of 80 (weight 3 of 4)`);
    assert.equal(await stop(cli), 0);
  } finally {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await tc1.close();
    await tc2.close();
    await tc3.close();
  }
});

test('--workers 2: health checks (run once, by the owner) take a failing member out of both workers', { timeout: 60_000 }, async () => {
  const tc1 = await startBackend('tc1');
  const tc2 = await startBackend('tc2');
  const cli = await startCli({
    balancers: [{ name: 'b', slowstart: 0, outlier: false, hcheck: { interval: 0.2, fall: 1, rise: 1 }, members: members(tc1, tc2) }],
  }, 'hcheck.yaml');
  try {
    tc1.mode = { kind: 'status', status: 503 };
    // The workers run no checks: only the owner's verdict, broadcast to them, can move traffic off tc1.
    let inARow = 0;
    await until(async () => {
      const r = await request(`${cli.url}/`);
      inARow = r.headers['x-backend'] === 'tc2' ? inARow + 1 : 0;
      return inARow >= 10;
    }, 10_000, 'both workers to avoid tc1');
    const seen = tc1.seen.length;
    for (let i = 0; i < 20; i++) assert.equal((await request(`${cli.url}/x${i}`)).headers['x-backend'], 'tc2');
    assert.equal(tc1.seen.length, seen);
    const checks = tc1.checks;
    await sleep(1000);
    // One checker (the owner's), not one per process: about 5 checks a second, not 15.
    assert.ok(tc1.checks - checks <= 8, `${tc1.checks - checks} checks in 1 s at a 0.2 s interval`);
    assert.equal(await stop(cli), 0);
  } finally {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await tc1.close();
    await tc2.close();
  }
});

test('--workers 2: a manager disable applies to both workers; /metrics sums the workers\' counters', { timeout: 60_000 }, async () => {
  const tc1 = await startBackend('tc1');
  const tc2 = await startBackend('tc2');
  const cli = await startCli({ balancers: [{ name: 'b', slowstart: 0, members: members(tc1, tc2) }], manager: { listen: '127.0.0.1:0' } }, 'manager.yaml');
  try {
    const pw = /generated a password for user "admin": (\S+)/.exec(cli.stderr());
    assert.ok(pw && cli.manager, cli.stderr());
    const auth = `Basic ${Buffer.from(`admin:${pw[1]}`).toString('base64')}`;
    const session = await fetch(`${cli.manager}/balancer-manager/api/session`, { headers: { authorization: auth } });
    const { csrf } = (await session.json()) as { csrf: string };
    const r = await fetch(`${cli.manager}/balancer-manager/api/balancers/b/members/tc2`, {
      method: 'POST', headers: { authorization: auth, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ status: { disabled: true } }),
    });
    assert.equal(r.status, 200);
    await sleep(200);
    const hits = tc2.seen.length;
    for (let i = 0; i < 20; i++) assert.equal((await request(`${cli.url}/d${i}`)).headers['x-backend'], 'tc1');
    assert.equal(tc2.seen.length, hits, 'tc2 is disabled in both workers');
    // Counters come from both workers (every 500 ms): the owner's /metrics shows their sum.
    const total = tc1.seen.length;
    await until(async () => {
      const text = await (await fetch(`${cli.manager}/metrics`, { headers: { authorization: auth } })).text();
      const m = /cohort_balancer_member_requests_total\{balancer="b",member="tc1"\} (\d+)/.exec(text);
      return m !== null && Number(m[1]) === total;
    }, 5000, `/metrics to count the ${total} requests to tc1`);
    assert.equal(await stop(cli), 0);
  } finally {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await tc1.close();
    await tc2.close();
  }
});

test('--workers 2: SIGTERM lets in-flight requests on both workers finish, refuses new connections, exits 0', { timeout: 60_000 }, async () => {
  const tc1 = await startBackend('tc1');
  const cli = await startCli({ balancers: [{ name: 'b', slowstart: 0, members: members(tc1) }] }, 'term.yaml');
  try {
    const slow = Array.from({ length: 6 }, (_, i) => request(`${cli.url}/slow/1200?i=${i}`, { timeoutMs: 15_000 }));
    await until(() => tc1.active === 6, 5000, 'the slow requests to reach the member');
    cli.child.kill('SIGTERM');
    await until(
      () => new Promise<boolean>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: cli.port });
        s.on('connect', () => (s.destroy(), resolve(false)));
        s.on('error', () => resolve(true));
      }),
      5000,
      'the listener to close',
    );
    const replies = await Promise.all(slow);
    assert.deepEqual(replies.map((r) => r.status), new Array(6).fill(200));
    const { code } = await cli.exit;
    assert.equal(code, 0);
  } finally {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await tc1.close();
  }
});

test('--workers 2: SIGHUP reloads every worker (a member added, one disabled) without dropping an in-flight request', { timeout: 60_000 }, async () => {
  const tc1 = await startBackend('tc1');
  const tc2 = await startBackend('tc2');
  const cli = await startCli({ balancers: [{ name: 'b', slowstart: 0, members: members(tc1) }] }, 'hup.yaml');
  try {
    const slow = Array.from({ length: 4 }, (_, i) => request(`${cli.url}/slow/1000?i=${i}`, { timeoutMs: 15_000 }));
    await until(() => tc1.active === 4, 5000, 'the slow requests to reach the member');
    writeConfig('hup.yaml', { balancers: [{ name: 'b', slowstart: 0, members: [{ url: tc1.url, route: 'tc1', status: ['disabled'] }, { url: tc2.url, route: 'tc2' }] }] });
    cli.child.kill('SIGHUP');
    let inARow = 0;
    await until(async () => {
      const r = await request(`${cli.url}/`);
      inARow = r.headers['x-backend'] === 'tc2' ? inARow + 1 : 0;
      return inARow >= 10;
    }, 10_000, 'both workers to use the reloaded config');
    const before = tc1.seen.length;
    for (let i = 0; i < 20; i++) assert.equal((await request(`${cli.url}/h${i}`)).headers['x-backend'], 'tc2');
    assert.equal(tc1.seen.length, before, 'tc1 is disabled in both workers');
    assert.deepEqual((await Promise.all(slow)).map((r) => r.status), [200, 200, 200, 200]);
    assert.equal(await stop(cli), 0);
  } finally {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await tc1.close();
    await tc2.close();
  }
});

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The worker processes: the primary's children (the primary is the command's child when `cohort` re-executed Node with its V8 flag). */
function workerPids(pid: number): number[] {
  const c = childPids(pid);
  return c.length === 1 && childPids(c[0]!).length > 0 ? childPids(c[0]!) : c;
}

test('--workers 2: a worker killed by SIGKILL is replaced and its leases go back to the owner (max still reached, never exceeded)', { timeout: 60_000 }, async () => {
  const tc1 = await startBackend('tc1');
  // loglevel debug: the lease messages (wanted, granted, recalled, returned) are in the failure message.
  const cli = await startCli({ loglevel: 'debug', balancers: [{ name: 'b', slowstart: 0, timeout: 30, members: [{ url: tc1.url, route: 'tc1', max: 2 }] }] }, 'kill.yaml');
  const leases = () => cli.stderr().split('\n').filter((l) => /lease|worker engine exited/.test(l)).slice(-80).join('\n');
  try {
    const before = workerPids(cli.child.pid!);
    assert.equal(before.length, 2, 'two worker processes');
    process.kill(before[0]!, 'SIGKILL');
    await until(() => {
      const now = workerPids(cli.child.pid!);
      return now.length === 2 && !now.includes(before[0]!);
    }, 15_000, 'the worker to be replaced');
    await until(async () => (await request(`${cli.url}/`).catch(() => ({ status: 0 }))).status === 200, 10_000, 'requests to be served');
    await sleep(500);
    tc1.maxActive = 0;
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => request(`${cli.url}/slow/150?i=${i}`, { timeoutMs: 20_000 }).catch((err: Error) => ({ status: 0, err }))));
    assert.deepEqual(replies.map((r) => r.status), new Array(20).fill(200), leases());
    assert.equal(tc1.maxActive, 2, `the dead worker's slot was reclaimed, and no more than max ran at once\n${leases()}`);
    assert.match(cli.stderr(), /worker engine exited/);
    assert.equal(await stop(cli), 0);
  } finally {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await tc1.close();
  }
});

test('--workers 2 and 3 with max smaller than the workers\' fair share: the slots move to where requests wait, none waits out its queue timeout', { timeout: 90_000 }, async () => {
  // max 1 over 2 workers and max 2 over 3 workers leave a fair share of 0: a worker recalled to nothing
  // while its requests wait must ask again once the recall is over, or they wait until the queue timeout.
  for (const [workers, max] of [[2, 1], [3, 2], [3, 1]] as const) {
    const tc1 = await startBackend('tc1');
    const cli = await startCli({ balancers: [{ name: 'b', slowstart: 0, timeout: 30, members: [{ url: tc1.url, route: 'tc1', max }] }] }, `small-${workers}-${max}.yaml`, workers);
    try {
      for (let round = 0; round < 3; round++) {
        tc1.maxActive = 0;
        const replies = await Promise.all(Array.from({ length: 24 }, (_, i) => request(`${cli.url}/slow/20?i=${i}`, { timeoutMs: 10_000 }).catch((err: Error) => ({ status: 0, err }))));
        assert.deepEqual(replies.map((r) => r.status), new Array(24).fill(200), `${workers} workers, max ${max}, round ${round}`);
        assert.ok(tc1.maxActive <= max, `${tc1.maxActive} at once on max ${max}`);
      }
      assert.equal(await stop(cli), 0);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await tc1.close();
    }
  }
});

test('workers: the config key defaults to 1 and is validated (file, key, expected); --workers N is validated too', async () => {
  assert.equal(parseBalancerConfig({ balancers: [{ name: 'b', members: [{ url: 'http://127.0.0.1:8081' }] }] }).workers, 1);
  for (const bad of [0, 1.5, 65, 'two']) {
    assert.throws(
      () => parseBalancerConfig({ workers: bad, balancers: [{ name: 'b', members: [{ url: 'http://127.0.0.1:8081' }] }] }, 'cohort.yaml'),
      (err: Error) => /cohort\.yaml/.test(err.message) && /workers/.test(err.message),
      `workers: ${String(bad)}`,
    );
  }
  const child = spawn(process.execPath, [BIN, 'balancer', '--member', 'tc1=http://127.0.0.1:9', '--workers', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 2, err);
  assert.match(err, /--workers: expected an integer 1\.\.64, got "0"/);
});

test('--workers 2 with timeout 0 (no queueing, the default): the whole max is served, then 503 — as one engine would', { timeout: 60_000 }, async () => {
  const tc1 = await startBackend('tc1');
  // max 30: blocks of 3, so the first leases (3 per worker) are far below what 40 concurrent requests need.
  // loglevel debug: the lease messages are in the failure message.
  const cli = await startCli({ loglevel: 'debug', balancers: [{ name: 'b', slowstart: 0, members: [{ url: tc1.url, route: 'tc1', max: 30 }] }] }, 'nowait.yaml');
  const leases = () => cli.stderr().split('\n').filter((l) => /lease/.test(l)).slice(-80).join('\n');
  try {
    const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => request(`${cli.url}/slow/1500?i=${i}`, { timeoutMs: 30_000 })));
    const ok = replies.filter((r) => r.status === 200).length;
    const unavailable = replies.filter((r) => r.status === 503).length;
    assert.equal(ok + unavailable, 40);
    assert.ok(tc1.maxActive <= 30, `${tc1.maxActive} at once`);
    // Leases moved to where the requests were: far more than the 6 slots first leased were used.
    assert.equal(ok, 30, `${ok} served, ${unavailable} refused\n${leases()}`);
    assert.equal(await stop(cli), 0);
  } finally {
    if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    await tc1.close();
  }
});
