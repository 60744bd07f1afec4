/**
 * Bad input from Redis, with both clients: a Redis that is not there
 * (connection refused at start), one that goes away mid-run and comes back,
 * and a READONLY replica (what a client still pointed at a demoted master
 * sees after a failover). Each: a clear error or a retry, counted in
 * getStats() (the node's metrics), no session lost, the manager keeps serving.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisSessionManager, type RedisManagerOptions } from '../../src/sessions/redis/redis-manager.js';
import { cli, freePort, redisTopologyUnavailable, serverArgs, startProcess, waitFor, type RedisProcess } from './helpers/redis-topology.js';

const skip = redisTopologyUnavailable();
const managers: RedisSessionManager[] = [];
const procs: RedisProcess[] = [];
const dirs: string[] = [];

after(async () => {
  for (const m of managers) m.destroy();
  for (const p of procs) await p.kill();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A server that keeps its data across a SIGKILL (append-only file, fsync always). */
async function durableServer(port: number, dir: string): Promise<RedisProcess> {
  const p = await startProcess('redis-server', port, serverArgs(port, dir, ['--appendonly', 'yes', '--appendfsync', 'always']));
  procs.push(p);
  return p;
}

const causeCode = (e: unknown) => (e as { cause?: { code?: string } }).cause?.code;

for (const client of ['node-redis', 'ioredis'] as const) {
  describe(`redis faults, ${client}`, { skip }, () => {
    const manager = (extra: Partial<RedisManagerOptions>) => {
      const m = new RedisSessionManager({ route: 'f1', client, prefix: `f-${client}:`, commandTimeoutMs: 400, retryWindowMs: 800, ...extra });
      managers.push(m);
      return m;
    };

    test('connection refused at start: COHORT_SESSION_STORE_FAILED caused by COHORT_REDIS_UNAVAILABLE, within the timeouts', async () => {
      const port = await freePort();
      const m = manager({ url: `redis://127.0.0.1:${port}` });
      const t0 = Date.now();
      await assert.rejects(m.start(), (e: unknown) => (e as { code?: string }).code === 'COHORT_SESSION_STORE_FAILED' && causeCode(e) === 'COHORT_REDIS_UNAVAILABLE');
      assert.ok(Date.now() - t0 < 5_000, 'fails within the connect timeout, does not hang');
      assert.equal(m.ready, false);
      assert.equal(m.getStats().failures.COHORT_REDIS_UNAVAILABLE, 1);
    });

    test('Redis goes away mid-run and comes back: clear errors meanwhile, counted; then the same sessions again', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cohort-redis-faults-'));
      dirs.push(dir);
      const port = await freePort();
      let server = await durableServer(port, dir);
      const m = manager({ url: `redis://127.0.0.1:${port}` });
      await m.start();
      const s = m.create();
      s.attributes.n = 1;
      await m.commit(s);
      await server.kill();
      const got = m.create();
      got.attributes.x = 1;
      await assert.rejects(m.commit(got), (e: unknown) => (e as { code?: string }).code === 'COHORT_SESSION_STORE_FAILED' && causeCode(e) === 'COHORT_REDIS_UNAVAILABLE');
      await assert.rejects(m.load(s.id), (e: unknown) => causeCode(e) === 'COHORT_REDIS_UNAVAILABLE');
      const st = m.getStats();
      assert.ok((st.failures.COHORT_REDIS_UNAVAILABLE ?? 0) >= 2, JSON.stringify(st));
      assert.ok(st.retries.connection > 0, `retried before giving up: ${JSON.stringify(st)}`);
      assert.equal(m.ready, true, 'the manager keeps serving');
      server = await durableServer(port, dir);
      await waitFor('the client reconnected', 10_000, async () => (await m.load(s.id))?.rawAttributes.n === 1);
      const again = (await m.load(s.id))!;
      again.attributes.n = 2;
      await m.commit(again);
      assert.equal((await m.load(s.id))?.rawAttributes.n, 2, 'the session survived and takes writes again');
    });

    test('READONLY replica (a demoted master after a failover): retried, counted, and the write lands once it is a master', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cohort-redis-ro-'));
      dirs.push(dir);
      const mp = await freePort();
      const rp = await freePort();
      procs.push(await startProcess('redis-server', mp, serverArgs(mp, dir, ['--dbfilename', 'm.rdb'])));
      procs.push(await startProcess('redis-server', rp, serverArgs(rp, dir, ['--dbfilename', 'r.rdb', '--replicaof', '127.0.0.1', String(mp)])));
      await waitFor('replica in sync', 10_000, async () => (await cli(rp, 'INFO', 'replication')).includes('master_link_status:up'));
      const m = manager({ url: `redis://127.0.0.1:${rp}`, retryWindowMs: 5_000 });
      await m.start();
      const s = m.create();
      s.attributes.k = 'v';
      const promote = new Promise((r) => setTimeout(r, 400)).then(() => cli(rp, 'REPLICAOF', 'NO', 'ONE'));
      await m.commit(s);
      await promote;
      assert.ok(m.getStats().retries.readonly > 0, JSON.stringify(m.getStats()));
      assert.equal((await m.load(s.id))?.rawAttributes.k, 'v');
      // Past the retry window: a clear error, counted.
      await cli(rp, 'REPLICAOF', '127.0.0.1', String(mp));
      const short = manager({ url: `redis://127.0.0.1:${rp}`, retryWindowMs: 300 });
      await short.start();
      const t = short.create();
      t.attributes.k = 1;
      await assert.rejects(short.commit(t), (e: unknown) => causeCode(e) === 'COHORT_REDIS_COMMAND_FAILED' && /READONLY/.test((e as Error).message));
      assert.equal(short.getStats().failures.COHORT_REDIS_COMMAND_FAILED, 1);
    });
  });
}

if (skip) test(`redis fault tests skipped: ${skip}`, { skip }, () => {});
