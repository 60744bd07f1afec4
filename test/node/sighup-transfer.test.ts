/**
 * Issue 12, bad input "a SIGHUP during a state transfer", for real: a `cohort node` process joining a
 * peer that holds many sessions pulls them one per page; while the pull is running (the peer is
 * briefly stopped with SIGSTOP so the transfer cannot finish before the signal lands) the joining
 * node gets a SIGHUP. It reloads, keeps running, finishes the transfer with every session and
 * becomes ready; SIGHUP never exits it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { BIN, DEMO_APP, freePort, health } from '../helpers/cluster-procs.js';
import { until } from '../helpers/backends.js';

/** Sessions on the peer, and the page size of the joining node's pull: one round trip per session. */
const SESSIONS = 1_500;
const CONCURRENCY = 6;

const dir = mkdtempSync(join(tmpdir(), 'cohort-hup-transfer-'));
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) {
    if (c.signalCode === null && c.exitCode === null) {
      c.kill('SIGCONT');
      c.kill('SIGKILL');
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  readonly child: ChildProcess;
  out(): string;
}

function start(cfgFile: string): Proc {
  const child = spawn(process.execPath, [BIN, 'node', '--config', cfgFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return { child, out: () => err };
}

const alive = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

/** `n` requests without a cookie: each creates one session on the node. */
async function createSessions(url: string, n: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  const one = (): Promise<void> => new Promise((resolve, reject) => {
    http.get(`${url}/examples/counter`, { agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    }).on('error', reject);
  });
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        next++;
        await one();
      }
    }));
  } finally {
    agent.destroy();
  }
}

/** The JSON log lines of a process (stderr), in order. */
function lines(p: Proc): Record<string, unknown>[] {
  return p.out().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('cohort node: a SIGHUP while its state transfer is running reloads, never exits; the transfer finishes with every session and the node becomes ready', async () => {
  const secret = join(dir, 'secret');
  writeFileSync(secret, randomBytes(32).toString('base64'));
  const [aHttp, aCluster, bHttp, bCluster] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const node = (route: string, httpPort: number, clusterPort: number, extra: Record<string, unknown>) => stringify({
    node: { route, app: DEMO_APP, listen: `127.0.0.1:${httpPort}`, loglevel: 'info', cluster: { listen: `127.0.0.1:${clusterPort}`, secretFile: secret }, ...extra },
  });
  const aFile = join(dir, 'a.yaml');
  writeFileSync(aFile, node('tc1', aHttp, aCluster, {}));
  const a = start(aFile);
  await until(() => /ready on/.test(a.out()) || !alive(a.child), 20_000, 'tc1 ready');
  assert.ok(alive(a.child), a.out());
  await createSessions(`http://127.0.0.1:${aHttp}`, SESSIONS);
  assert.equal((await health(`http://127.0.0.1:${aHttp}`))?.sessions, SESSIONS);

  const bFile = join(dir, 'b.yaml');
  const bCfg = (loglevel: string) => node('tc2', bHttp, bCluster, { loglevel, cluster: { listen: `127.0.0.1:${bCluster}`, secretFile: secret, members: [`127.0.0.1:${aCluster}`] }, sessions: { replication: { transferChunk: 1 } } });
  writeFileSync(bFile, bCfg('info'));
  const b = start(bFile);
  await until(() => /state transfer: starting/.test(b.out()) || !alive(b.child), 20_000, 'tc2 to start its state transfer');
  // Hold the peer so that the pull is certainly still running when the signal arrives.
  a.child.kill('SIGSTOP');
  try {
    writeFileSync(bFile, bCfg('debug'));
    b.child.kill('SIGHUP');
    await until(() => /SIGHUP: reloaded/.test(b.out()) || !alive(b.child), 5_000, 'tc2 to reload');
  } finally {
    a.child.kill('SIGCONT');
  }
  assert.ok(alive(b.child), `tc2 alive after the SIGHUP: ${b.out()}`);
  await until(() => /ready on/.test(b.out()) || !alive(b.child), 60_000, 'tc2 ready');
  assert.ok(alive(b.child), `tc2 alive and ready: ${b.out()}`);
  // The 'ready on' line is written directly; the JSON log is asynchronous and may arrive a moment later.
  await until(() => /state transfer (done|complete)/.test(b.out()) || !alive(b.child), 5_000, 'the transfer\'s log line');

  const log = lines(b);
  const at = (re: RegExp): number => log.findIndex((l) => re.test(String(l.msg)));
  const reload = log[at(/SIGHUP: reloaded/)]!;
  assert.equal(reload.state, 'starting', 'the reload happened before the node was ready');
  assert.match(String(reload.msg), /loglevel=debug/);
  assert.ok(at(/state transfer: starting/) < at(/SIGHUP: reloaded/), 'the reload came after the transfer started');
  const done = at(/state transfer (done|complete)/);
  assert.ok(done > at(/SIGHUP: reloaded/), `the transfer finished after the reload: ${b.out()}`);
  assert.equal(log.some((l) => /state transfer .*failed/.test(String(l.msg))), false, 'no pull failed');
  const h = await health(`http://127.0.0.1:${bHttp}`);
  assert.equal(h?.ready, true);
  assert.equal(h?.sessions, SESSIONS, 'every session was transferred');

  // Ready: another SIGHUP still does not end it.
  b.child.kill('SIGHUP');
  await until(() => (b.out().match(/SIGHUP: reloaded/g) ?? []).length >= 2 || !alive(b.child), 5_000, 'the second reload');
  assert.ok(alive(b.child));
  for (const p of [b, a]) {
    p.child.kill('SIGTERM');
    await until(() => !alive(p.child), 15_000, 'the node to leave');
  }
});
