/**
 * `cohort rollout` end to end: two real `cohort node` processes (sync replication) started and stopped by
 * shell scripts the rollout runs (the stop script SIGTERMs and waits for the exit, as `systemctl stop` does),
 * a real `cohort balancer` with its manager, and one user writing its session through the balancer the whole
 * time: every node is restarted (new PIDs), the user is never logged out, no update is lost, no request fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, CookieJar, DEMO_APP, TestCluster, freePort, health, waitFor } from '../helpers/cluster-procs.js';

const TOKEN = 'rollout-test-token-0123456789';

function sh(command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => void (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    c.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

test('cohort rollout restarts every node one at a time with a user logged in throughout', { timeout: 120_000 }, async () => {
  const tc = new TestCluster();
  const dir = tc.dir;
  const routes = ['n1', 'n2'];
  const ports = new Map<string, { http: number; cluster: number }>();
  for (const r of routes) ports.set(r, { http: await freePort(), cluster: await freePort() });
  const pidFile = (r: string) => join(dir, `${r}.pid`);
  const readPid = (r: string) => Number(readFileSync(pidFile(r), 'utf8').trim());
  for (const r of routes) {
    const p = ports.get(r)!;
    const members = routes.filter((o) => o !== r).map((o) => `--member 127.0.0.1:${ports.get(o)!.cluster}`).join(' ');
    writeFileSync(join(dir, `start-${r}.sh`), `"${process.execPath}" "${BIN}" node --route ${r} --listen 127.0.0.1:${p.http} --app "${DEMO_APP}" --cluster-listen 127.0.0.1:${p.cluster} --secret-file "${tc.secretFile}" --consistency sync --log-level warn ${members} </dev/null >/dev/null 2>>"${dir}/${r}.log" &\necho $! > "${pidFile(r)}"\n`);
  }
  writeFileSync(join(dir, 'stop.sh'), `pid=$(cat "${dir}/$1.pid")\nkill -TERM "$pid"\nwhile kill -0 "$pid" 2>/dev/null; do sleep 0.1; done\n`);
  const url = (r: string) => `http://127.0.0.1:${ports.get(r)!.http}`;
  const started = new Set<number>();
  let running = true;
  try {
    for (const r of routes) {
      assert.equal((await sh(`sh "${dir}/start-${r}.sh"`)).code, 0);
      started.add(readPid(r));
    }
    for (const r of routes) await waitFor(async () => (await health(url(r)))?.ready === true, 20_000, `${r} ready`);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const bal = await tc.startBalancer({
      listen: '127.0.0.1:0',
      accesslog: false,
      loglevel: 'warn',
      balancers: [{ name: 'tc', slowstart: 0, maxattempts: 2, members: routes.map((r) => ({ route: r, url: url(r), retry: 2 })), hcheck: { path: '/.cohort/health', interval: 0.5, timeout: 0.5, rise: 1, fall: 2 } }],
      manager: { listen: '127.0.0.1:0', token: TOKEN },
    });
    const firstPids = routes.map(readPid);

    // One user, one request at a time, for the whole rollout.
    const jar = new CookieJar();
    let count = 0;
    const failures: string[] = [];
    let session: string | undefined;
    const user = (async () => {
      while (running) {
        try {
          const r = await fetch(`${bal.url}/examples/counter`, { headers: { accept: 'application/json', ...(jar.cookie ? { cookie: jar.cookie } : {}) }, signal: AbortSignal.timeout(10_000) });
          jar.update(r.headers.getSetCookie());
          if (r.status !== 200) {
            failures.push(`status ${r.status}`);
            continue;
          }
          const body = (await r.json()) as { session: string; count: number };
          const id = body.session.replace(/\.[^.]+$/, '');
          if (session !== undefined && id !== session) failures.push(`logged out: session ${session} → ${id}`);
          if (body.count !== count + 1) failures.push(`count ${count} → ${body.count}`);
          session = id;
          count = body.count;
        } catch (err) {
          failures.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await waitFor(() => count >= 5, 10_000, 'the user to be served');

    const out = await sh([
      `"${process.execPath}" "${BIN}" rollout`,
      ...routes.map((r) => `--node ${r}=${url(r)}`),
      `--manager ${bal.manager}/balancer-manager`,
      `--token-file "${tokenFile}"`,
      `--stop 'sh "${dir}/stop.sh" {route}'`,
      `--start 'sh "${dir}/start-{route}.sh"'`,
      '--settle 0.5 --ready-timeout 30',
    ].join(' '));
    running = false;
    await user;
    for (const r of routes) started.add(readPid(r));
    assert.equal(out.code, 0, `rollout failed: ${out.stderr}`);
    assert.match(out.stdout, /cohort rollout: 2 node\(s\) restarted one at a time in [\d.]+ s/);
    assert.match(out.stderr, /stop n1[\s\S]*start n1[\s\S]*usable n1[\s\S]*stop n2/);
    assert.notDeepEqual(routes.map(readPid), firstPids, 'every node has a new process');
    for (const [i, r] of routes.entries()) assert.notEqual(readPid(r), firstPids[i], `${r} restarted`);
    assert.deepEqual(failures, []);
    assert.ok(count > 5, `the user made ${count} updates`);

    // Refused with a clear error when a node is down (nothing touched), exit 1.
    await sh(`sh "${dir}/stop.sh" n2`);
    const refused = await sh(`"${process.execPath}" "${BIN}" rollout --node n1=${url('n1')} --node n2=${url('n2')} --manager ${bal.manager}/balancer-manager --token-file "${tokenFile}" --stop true --start true`);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /COHORT_ROLLOUT_NOT_READY: node n2 is not ready/);
    const usage = await sh(`"${process.execPath}" "${BIN}" rollout --node n1`);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /COHORT_ROLLOUT_USAGE/);
  } finally {
    running = false;
    for (const r of routes) if (existsSync(pidFile(r))) started.add(readPid(r));
    for (const pid of started) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await tc.stopAll();
  }
});
