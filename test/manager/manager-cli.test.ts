import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackend, tempDir, basic } from './helpers.js';

const BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bin/cohort.js');

interface Running {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  readonly manager: string;
  readonly front: string;
}

async function run(args: string[], cwd: string): Promise<Running> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = /manager on (http:\/\/\S+?)\/balancer-manager\//.exec(err);
    const f = /listening on (http:\/\/\S+)/.exec(err);
    if (m && f) return { child, stderr: () => err, manager: m[1]!, front: f[1]! };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`cohort balancer did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stop(r: Running): Promise<number | null> {
  if (r.child.exitCode !== null) return r.child.exitCode;
  const exited = new Promise<number | null>((res) => r.child.once('exit', (code) => res(code)));
  r.child.kill('SIGTERM');
  return exited;
}

test('cohort balancer --config serves the manager: generated password printed once (0600 file), changes survive a restart', { timeout: 60_000 }, async () => {
  const t = tempDir();
  const b1 = await startBackend('tc1');
  const b2 = await startBackend('tc2');
  const running: Running[] = [];
  try {
    const config = join(t.dir, 'cohort.yaml');
    writeFileSync(config, [
      'listen: 127.0.0.1:0',
      'accesslog: false',
      'loglevel: info',
      'balancers:',
      '  - name: tccluster',
      '    slowstart: 0',
      '    members:',
      `      - { url: "${b1.url}", route: tc1 }`,
      `      - { url: "${b2.url}", route: tc2 }`,
      'manager:',
      '  listen: 127.0.0.1:0',
      '',
    ].join('\n'));
    const first = await run(['balancer', '--config', config], t.dir);
    running.push(first);
    const pw = /generated a password for user "admin": (\S+)/.exec(first.stderr());
    assert.ok(pw, first.stderr());
    const file = `${config}.manager-password`;
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8').trim(), pw[1]);
    const auth = basic('admin', pw[1]!);
    assert.equal((await fetch(`${first.manager}/balancer-manager/api/balancers`)).status, 401);
    const session = await fetch(`${first.manager}/balancer-manager/api/session`, { headers: { authorization: auth } });
    assert.equal(session.status, 200);
    const { csrf } = (await session.json()) as { csrf: string };
    const r = await fetch(`${first.manager}/balancer-manager/api/balancers/tccluster/members/tc2`, {
      method: 'POST', headers: { authorization: auth, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ status: { disabled: true } }),
    });
    assert.equal(r.status, 200);
    assert.ok(existsSync(`${config}.state.json`));
    const metrics = await fetch(`${first.manager}/metrics`, { headers: { authorization: auth } });
    assert.match(await metrics.text(), /cohort_balancer_member_flag\{balancer="tccluster",member="tc2",flag="disabled"\} 1/);
    // SIGHUP reloads the config and re-applies the saved changes.
    first.child.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while (!/configuration reloaded[\s\S]*saved member settings re-applied/.test(first.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(first.stderr(), /configuration reloaded[\s\S]*saved member settings re-applied/);
    const afterHup = (await (await fetch(`${first.manager}/balancer-manager/api/balancers/tccluster/members/tc2`, { headers: { authorization: auth } })).json()) as { flags: string };
    assert.equal(afterHup.flags, 'D', 'still disabled after SIGHUP');
    assert.equal(await stop(first), 0);

    const second = await run(['balancer', '--config', config], t.dir);
    running.push(second);
    assert.doesNotMatch(second.stderr(), /generated a password/);
    assert.match(second.stderr(), /password in .*cohort\.yaml\.manager-password/);
    const hits = b2.hits;
    for (let i = 0; i < 10; i++) assert.equal((await (await fetch(`${second.front}/`)).text()).trim(), 'tc1');
    assert.equal(b2.hits, hits, 'tc2 is still disabled after the restart');
    const m = (await (await fetch(`${second.manager}/balancer-manager/api/balancers/tccluster/members/tc2`, { headers: { authorization: auth } })).json()) as { flags: string };
    assert.equal(m.flags, 'D');
    assert.equal(await stop(second), 0);
  } finally {
    for (const r of running) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await b1.close();
    await b2.close();
    t.cleanup();
  }
});

test('cohort hash-password prints an scrypt hash of stdin', { timeout: 30_000 }, async () => {
  const child = spawn(process.execPath, [BIN, 'hash-password'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stdin!.end('hunter2\n');
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 0);
  const { verifyPassword } = await import('../../src/manager/password.js');
  assert.match(out.trim(), /^scrypt\$32768\$8\$1\$/);
  assert.equal(await verifyPassword('hunter2', out.trim()), true);
});

test('quick mode: --manager serves the manager without persistence', { timeout: 60_000 }, async () => {
  const t = tempDir();
  const b1 = await startBackend('tc1');
  let r: Running | undefined;
  try {
    r = await run(['balancer', '--listen', '127.0.0.1:0', '--member', `tc1=${b1.url}`, '--manager', '127.0.0.1:0', '--log-level', 'silent', '--no-access-log'], t.dir);
    const pw = /generated a password for user "admin": (\S+)/.exec(r.stderr());
    assert.ok(pw, r.stderr());
    assert.equal(statSync(join(t.dir, '.cohort-state/manager-password')).mode & 0o777, 0o600);
    const j = (await (await fetch(`${r.manager}/balancer-manager/api/balancers`, { headers: { authorization: basic('admin', pw[1]!) } })).json()) as { persisted: boolean };
    assert.equal(j.persisted, false);
    assert.equal(await stop(r), 0);
  } finally {
    if (r && r.child.exitCode === null) r.child.kill('SIGKILL');
    await b1.close();
    t.cleanup();
  }
});
