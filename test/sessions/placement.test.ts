import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backupRoutes, orphanHolders, rankRoutes } from '../../src/sessions/replication/placement.js';
import { isExpired, shouldNotifyAccess } from '../../src/sessions/model/expiry.js';
import { newSessionBase } from '../../src/sessions/model/session-id.js';

test('rendezvous placement: deterministic, spread evenly, minimal movement when a member leaves', () => {
  const routes = ['n1', 'n2', 'n3', 'n4', 'n5'];
  const counts = new Map<string, number>();
  let moved = 0;
  const N = 5000;
  for (let i = 0; i < N; i++) {
    const base = newSessionBase();
    assert.deepEqual(rankRoutes(base, routes), rankRoutes(base, [...routes].reverse()), 'order of the input does not matter');
    const [b] = backupRoutes(base, 'n1', routes, 1);
    counts.set(b!, (counts.get(b!) ?? 0) + 1);
    const after = backupRoutes(base, 'n1', routes.filter((r) => r !== 'n3'), 1);
    if (b !== 'n3' && after[0] !== b) moved++;
    assert.ok(!backupRoutes(base, 'n1', routes, 3).includes('n1'), 'never the owner');
    assert.equal(new Set(backupRoutes(base, 'n1', routes, 3)).size, 3);
  }
  assert.equal(moved, 0, 'only copies on the leaving member move');
  for (const r of ['n2', 'n3', 'n4', 'n5']) {
    const c = counts.get(r) ?? 0;
    assert.ok(c > N / 4 * 0.85 && c < N / 4 * 1.15, `${r} holds ${c} of ${N}`);
  }
  assert.equal(orphanHolders('abc', routes, 2).length, 3);
});

test('expiry: owner after maxInactive; replica only after maxInactive + grace without news', () => {
  const policy = { graceMs: 10_000, accessNotifyMs: 5_000 };
  const s = { lastAccess: 1000, maxInactiveMs: 60_000, accessNotifiedAt: 1000 };
  assert.equal(isExpired(s, 'owner', 61_000, policy), false);
  assert.equal(isExpired(s, 'owner', 61_001, policy), true);
  assert.equal(isExpired(s, 'replica', 61_001, policy), false);
  assert.equal(isExpired(s, 'replica', 71_001, policy), true);
  assert.equal(shouldNotifyAccess(s, 5_999, policy), false);
  assert.equal(shouldNotifyAccess(s, 6_000, policy), true);
});

test('take-over sources: never every member for an id nobody holds', async () => {
  const { fallbackSources } = await import('../../src/sessions/replication/take-over.js');
  const m = (route: string) => ({ id: `id-${route}`, route }) as unknown as import('../../src/cluster/types.js').MemberView;
  const [a, b, c] = [m('a'), m('b'), m('c')];
  assert.deepEqual(fallbackSources({ mode: 'all-to-all', owner: undefined, heldLocally: false, placement: [], members: [a, b, c] }), []);
  assert.deepEqual(fallbackSources({ mode: 'all-to-all', owner: undefined, heldLocally: true, placement: [], members: [a, b, c] }), [a, b, c]);
  assert.deepEqual(fallbackSources({ mode: 'all-to-all', owner: a, heldLocally: true, placement: [], members: [a, b, c] }), []);
  assert.deepEqual(fallbackSources({ mode: 'backup', owner: a, heldLocally: false, placement: [a, b], members: [a, b, c] }), [b]);
});
