import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisSessionManager } from '../../src/sessions/redis/redis-manager.js';
import { withSessions, type SessionRequest } from '../../src/sessions/http/middleware.js';
import { SessionErrorCode } from '../../src/sessions/errors.js';
import { redisUnavailableReason, startRedis, type RedisInstance } from './helpers/redis-server.js';
import { closeServer, cookieFrom, get, listen } from './helpers/http.js';
import { runRedisContract } from './helpers/redis-contract.js';
import { cli } from './helpers/redis-topology.js';
import { sessionKey } from '../../src/sessions/redis/scripts.js';

const skip = redisUnavailableReason();
let redis: RedisInstance | undefined;
const managers: RedisSessionManager[] = [];

before(async () => {
  if (!skip) redis = await startRedis();
});
after(async () => {
  for (const m of managers) await m.close();
  await redis?.stop();
});

async function node(route: string, extra: Partial<ConstructorParameters<typeof RedisSessionManager>[0]> = {}): Promise<RedisSessionManager> {
  const m = new RedisSessionManager({ route, url: redis!.url, prefix: `t${process.pid}:`, ...extra });
  await m.start();
  managers.push(m);
  return m;
}

test('redis mode: same API; deltas carry only changed attributes; take-over; regenerate; invalidate', { skip }, async () => {
  const a = await node('r1');
  const b = await node('r2');
  const s = a.create();
  s.attributes.cart = { items: [] };
  s.attributes.user = 'ann';
  await a.commit(s);
  (s.attributes.cart as { items: string[] }).items.push('apple');
  const r = await a.commit(s);
  assert.equal(r.version, 2);
  const onB = (await b.load(s.id))!;
  assert.deepEqual(onB.rawAttributes, { cart: { items: ['apple'] }, user: 'ann' });
  assert.equal(onB.route, 'r2', 'taken over: route rewritten');
  // concurrent writers of different attributes both survive (per-attribute deltas)
  const onA = (await a.load(s.id))!;
  onA.attributes.x = 1;
  onB.attributes.y = 2;
  await Promise.all([a.commit(onA), b.commit(onB)]);
  const merged = (await a.load(s.id))!;
  assert.equal(merged.rawAttributes.x, 1);
  assert.equal(merged.rawAttributes.y, 2);
  assert.equal(merged.version, 4);
  const old = merged.id;
  a.regenerateId(merged);
  await a.commit(merged);
  assert.equal(await b.load(old), undefined);
  assert.equal((await b.load(merged.id))?.rawAttributes.user, 'ann');
  assert.ok((await a.ids()).some((id) => id.startsWith(merged.base)));
  await b.invalidate((await b.load(merged.id))!);
  assert.equal(await a.load(merged.id), undefined);
  assert.throws(() => (merged.attributes.f = (() => 1) as never), (e: { code?: string }) => e.code === SessionErrorCode.Invalidated || e.code === SessionErrorCode.Unserializable);
});

test('redis mode: expiry by Redis (one clock), refreshed by access', { skip }, async () => {
  const a = await node('r1', { maxInactiveMs: 300 });
  const s = a.create();
  s.attributes.k = 1;
  await a.commit(s);
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 150));
    const got = await a.load(s.id);
    assert.ok(got, `alive after ${(i + 1) * 150} ms with accesses`);
    await a.commit(got);
  }
  await new Promise((r) => setTimeout(r, 450));
  assert.equal(await a.load(s.id), undefined, 'expired once idle');
});

test('redis mode behind the node:http wrapper: a counter continues across nodes', { skip }, async () => {
  const a = await node('r1');
  const b = await node('r2');
  const h = (req: SessionRequest, res: import('node:http').ServerResponse) => {
    const s = req.session as { n?: number };
    s.n = (s.n ?? 0) + 1;
    res.end(String(s.n));
  };
  const sa = await listen(withSessions(a, h));
  const sb = await listen(withSessions(b, h));
  try {
    const r1 = await get(sa.url);
    const c = cookieFrom(r1.setCookie)!;
    assert.match(c, /\.r1$/);
    assert.equal((await get(sb.url, c)).body, '2');
    assert.equal((await get(sa.url, c)).body, '3');
  } finally {
    await closeServer(sa.server);
    await closeServer(sb.server);
  }
});

for (const client of ['node-redis', 'ioredis'] as const) {
  describe(`redis standalone, ${client}`, { skip }, () => {
    test('the session contract', async () => {
      await runRedisContract((route, extra = {}) => node(route, { client, prefix: `std-${client}:`, ...extra }));
    });

    test('an attribute that is not JSON (written by another program): a clear error, counted', async () => {
      const m = await node('j1', { client, prefix: `json-${client}:` });
      const s = m.create();
      s.attributes.a = 1;
      await m.commit(s);
      await cli(redis!.port, 'HSET', sessionKey(`json-${client}:`, s.base), 'a:b', '{oops');
      await assert.rejects(m.load(s.id), (e: { code?: string; cause?: { code?: string; message?: string } }) => e.code === SessionErrorCode.StoreFailed && e.cause?.code === 'COHORT_REDIS_COMMAND_FAILED' && /attribute "b" .* is not JSON/.test(e.cause.message ?? ''));
      assert.equal(m.getStats().failures.COHORT_REDIS_COMMAND_FAILED, 1);
    });

    test('a session stored by an earlier version (key without hash tag) is read and moved to its new key; legacyKeys: false ignores it', async () => {
      const prefix = `legacy-${client}:`;
      const m = await node('l1', { client, prefix });
      const base = m.create().base;
      await cli(redis!.port, 'HSET', `${prefix}${base}`, '_v', '3', '_r', 'old', '_c', '1700000000000', '_m', '60000', 'a:user', '"ann"');
      await cli(redis!.port, 'PEXPIRE', `${prefix}${base}`, '60000');
      const off = await node('l2', { client, prefix, legacyKeys: false });
      assert.equal(await off.load(`${base}.old`), undefined);
      const s = (await m.load(`${base}.old`))!;
      assert.deepEqual([s.rawAttributes, s.version, s.createdAt], [{ user: 'ann' }, 3, 1700000000000]);
      assert.equal(await cli(redis!.port, 'EXISTS', `${prefix}${base}`), '0', 'the old key is gone');
      s.attributes.more = 1;
      assert.equal((await m.commit(s)).version, 4);
      assert.deepEqual((await off.load(s.id))?.rawAttributes, { user: 'ann', more: 1 });
      await m.invalidate(s);
    });

    test('waitReplicas without a replica: a clear COHORT_REDIS_NOT_REPLICATED, counted, not retried', async () => {
      const m = await node('w1', { client, waitReplicas: 1, waitTimeoutMs: 100 });
      const s = m.create();
      s.attributes.a = 1;
      await assert.rejects(m.commit(s), (e: { code?: string; cause?: { code?: string } }) => e.code === SessionErrorCode.StoreFailed && e.cause?.code === 'COHORT_REDIS_NOT_REPLICATED');
      const st = m.getStats();
      assert.equal(st.failures.COHORT_REDIS_NOT_REPLICATED, 1);
      assert.equal(Object.values(st.retries).reduce((x, y) => x + y, 0), 0);
    });
  });
}

test('an application\'s own ioredis instance: used, and not closed by close()', { skip }, async () => {
  const { Redis } = await import('ioredis');
  const own = new Redis(redis!.url, { lazyConnect: true });
  try {
    const m = new RedisSessionManager({ route: 'o1', client: own, prefix: 'own:' });
    await m.start();
    const s = m.create();
    s.attributes.a = 'b';
    await m.commit(s);
    assert.equal((await m.load(s.id))?.rawAttributes.a, 'b');
    await m.close();
    assert.equal(await own.ping(), 'PONG', 'still the application\'s');
  } finally {
    own.disconnect();
  }
});

if (skip) test(`redis tests skipped: ${skip}`, { skip }, () => {});
