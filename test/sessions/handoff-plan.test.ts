import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseNewOwner, planHandoff } from '../../src/sessions/replication/handoff-plan.js';
import { backupRoutes, rankRoutes } from '../../src/sessions/replication/placement.js';
import { newSessionBase } from '../../src/sessions/model/session-id.js';

test('handoff owner choice: no survivors, no owner', () => {
  assert.equal(chooseNewOwner('abc', ['n2'], []), undefined);
  assert.deepEqual([...planHandoff([{ base: 'abc', holders: ['n2'] }], [])], []);
});

test('handoff owner choice, all-to-all: deterministic, independent of input order, spread evenly over the survivors', () => {
  const survivors = ['n2', 'n3', 'n4'];
  const N = 3000;
  const sessions = Array.from({ length: N }, () => ({ base: newSessionBase(), holders: survivors }));
  const plan = planHandoff(sessions, survivors);
  assert.deepEqual(planHandoff(sessions, [...survivors].reverse()), plan, 'the order of the survivors does not matter');
  assert.equal([...plan.values()].reduce((n, l) => n + l.length, 0), N, 'every session gets an owner');
  for (const r of survivors) {
    const c = plan.get(r)?.length ?? 0;
    assert.ok(c > (N / 3) * 0.85 && c < (N / 3) * 1.15, `${r} gets ${c} of ${N}`);
  }
  for (const s of sessions.slice(0, 50)) assert.equal(chooseNewOwner(s.base, s.holders, survivors), rankRoutes(s.base, survivors)[0]);
});

test('handoff owner choice: a survivor missing moves only the sessions it would have received', () => {
  const survivors = ['n2', 'n3', 'n4', 'n5'];
  let moved = 0;
  for (let i = 0; i < 2000; i++) {
    const base = newSessionBase();
    const before = chooseNewOwner(base, survivors, survivors);
    const after = chooseNewOwner(base, survivors, survivors.filter((r) => r !== 'n4'));
    if (before !== 'n4' && before !== after) moved++;
    assert.notEqual(after, 'n4');
  }
  assert.equal(moved, 0);
});

test('handoff owner choice, backup mode: the top-ranked surviving backup (the one backupRoutes ranks first); the top-ranked survivor when no backup survives', () => {
  const all = ['n1', 'n2', 'n3', 'n4', 'n5'];
  for (let i = 0; i < 500; i++) {
    const base = newSessionBase();
    const backups = backupRoutes(base, 'n1', all, 2);
    const survivors = all.filter((r) => r !== 'n1');
    assert.equal(chooseNewOwner(base, backups, survivors), backups[0], 'the first backup');
    const withoutFirst = survivors.filter((r) => r !== backups[0]);
    assert.equal(chooseNewOwner(base, backups, withoutFirst), backups[1], 'the next backup when the first is not a survivor');
    const noBackup = survivors.filter((r) => !backups.includes(r));
    assert.equal(chooseNewOwner(base, backups, noBackup), rankRoutes(base, noBackup)[0], 'no backup survives: rendezvous over the survivors');
    assert.ok(noBackup.includes(chooseNewOwner(base, backups, noBackup)!));
  }
});
