/**
 * Recovery without a health check (issue 12, item 5), on a real quick-mode
 * `cohort balancer` (no hcheck, retry 60 s): a member that was down is used
 * again within seconds of coming back, not after 60 s; one that comes back
 * answering 5xx stays out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { BIN } from '../helpers/cluster-procs.js';
import { startBackend, request, until, sleep } from '../helpers/backends.js';

test('quick mode: a member that was refused is probed and takes requests again within seconds of coming back', { timeout: 60_000 }, async (t) => {
  const [a, b] = [await startBackend('a'), await startBackend('b')];
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const child = spawn(process.execPath, [BIN, 'balancer', '--listen', '127.0.0.1:0', '--member', `a=${a.url}`, '--member', `b=${b.url}`, '--no-access-log', '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await until(() => /listening on http/.test(err), 15_000, 'the balancer');
  const front = /listening on (http\S+)/.exec(err)![1]!;
  await a.refuse();
  // byrequests alternates: within a few requests one goes to a, fails over to b, and puts a in error (retry 60 s).
  for (let i = 0; i < 4; i++) assert.equal((await request(`${front}/r${i}`)).status, 200);
  const seenA = a.seen.length;
  // Out: requests all go to b.
  for (let i = 0; i < 4; i++) await request(`${front}/out${i}`);
  assert.equal(a.seen.length, seenA, 'a is out while refused');
  await a.restore();
  const back = Date.now();
  await until(async () => {
    await request(`${front}/back`);
    return a.seen.some((s) => s.url === '/back');
  }, 10_000, 'a to take requests again');
  const ms = Date.now() - back;
  t.diagnostic(`a took a request again ${ms} ms after it came back (retry is 60 s)`);
  assert.ok(ms < 10_000);
  assert.match(err, /member answered the error probe: eligible again/);
});

test('a member that comes back answering 503 to the probe (a cohort node not ready yet) stays out', { timeout: 60_000 }, async (t) => {
  const [a, b] = [await startBackend('a'), await startBackend('b')];
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const child = spawn(process.execPath, [BIN, 'balancer', '--listen', '127.0.0.1:0', '--member', `a=${a.url}`, '--member', `b=${b.url}`, '--no-access-log', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await until(() => /listening on http/.test(err), 15_000, 'the balancer');
  const front = /listening on (http\S+)/.exec(err)![1]!;
  await a.refuse();
  for (let i = 0; i < 4; i++) await request(`${front}/r${i}`);
  a.mode = { kind: 'status', status: 503 };
  await a.restore();
  await until(() => a.seen.some((s) => s.headers['user-agent'] === 'cohort-errorprobe'), 10_000, 'a probe');
  await sleep(1500);
  const before = a.seen.filter((s) => s.headers['user-agent'] !== 'cohort-errorprobe').length;
  for (let i = 0; i < 6; i++) assert.equal((await request(`${front}/still${i}`)).status, 200);
  assert.equal(a.seen.filter((s) => s.headers['user-agent'] !== 'cohort-errorprobe').length, before, 'no client request reached a');
});
