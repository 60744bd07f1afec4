/**
 * The contract every Redis topology × client pair must pass: the same
 * SessionManager behaviour (deltas, take-over, login with a new id across
 * slots, invalidate, listing and counting every session, clear).
 */
import assert from 'node:assert/strict';
import { RedisSessionManager, type RedisManagerOptions } from '../../../src/sessions/redis/redis-manager.js';

export type ManagerFactory = (route: string, extra?: Partial<RedisManagerOptions>) => Promise<RedisSessionManager>;

export async function runRedisContract(node: ManagerFactory): Promise<void> {
  const a = await node('r1');
  const b = await node('r2');
  await a.clear();
  const s = a.create();
  s.attributes.cart = { items: [] };
  s.attributes.user = 'ann';
  await a.commit(s);
  (s.attributes.cart as { items: string[] }).items.push('apple');
  assert.equal((await a.commit(s)).version, 2);
  const onB = (await b.load(s.id))!;
  assert.deepEqual(onB.rawAttributes, { cart: { items: ['apple'] }, user: 'ann' });
  assert.equal(onB.route, 'r2', 'taken over: route rewritten');
  // concurrent writers of different attributes both survive (per-attribute deltas)
  const onA = (await a.load(s.id))!;
  onA.attributes.x = 1;
  onB.attributes.y = 2;
  delete onB.attributes.cart;
  await Promise.all([a.commit(onA), b.commit(onB)]);
  const merged = (await a.load(s.id))!;
  assert.deepEqual(merged.rawAttributes, { user: 'ann', x: 1, y: 2 });
  assert.equal(merged.version, 4);
  // a new id after login: another base, another hash slot; the whole session moves
  const old = merged.id;
  a.regenerateId(merged);
  merged.attributes.loggedIn = true;
  await a.commit(merged);
  assert.equal(await b.load(old), undefined, 'the old id is gone');
  const moved = (await b.load(merged.id))!;
  assert.deepEqual(moved.rawAttributes, { user: 'ann', x: 1, y: 2, loggedIn: true });
  assert.equal(moved.version, 5);
  // many sessions: listed and counted from every node, whichever master holds them
  const made = [moved.base];
  for (let i = 0; i < 40; i++) {
    const t = (i % 2 ? a : b).create();
    t.attributes.i = i;
    await (i % 2 ? a : b).commit(t);
    made.push(t.base);
  }
  const ids = await a.ids();
  assert.deepEqual(ids.map((id) => id.split('.')[0]).sort(), [...made].sort());
  assert.equal(await b.count(), 41);
  await b.invalidate(moved);
  assert.equal(await a.load(merged.id), undefined);
  assert.equal(await a.count(), 40);
  await a.clear();
  assert.equal(await b.count(), 0);
  assert.deepEqual(a.getStats().failures, {}, 'no failed operation');
}
