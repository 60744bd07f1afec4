/**
 * Convergence after a partition: the conflict rule and digest diff as pure
 * functions, then in-process clusters (memory hub) where both sides write the
 * same sessions, create and invalidate others, and heal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settle, startCluster, stopAll, type TestNode } from './helpers/fixture.js';
import { Topic, type SessionDelta } from '../../src/sessions/replication/wire.js';
import { compareCopies, copyVerdict, copyWins, diffDigests, WriteTagger, type DiffContext, type DigestEntry } from '../../src/sessions/replication/convergence.js';
import { systemRandom } from '../../src/util/clock.js';
import { classifyDelta } from '../../src/sessions/replication/ordering.js';
import { SessionTable } from '../../src/sessions/model/session-table.js';
import { Session } from '../../src/sessions/model/session.js';
import { backupRoutes } from '../../src/sessions/replication/placement.js';

const tagger = new WriteTagger(systemRandom);
const newWriteTag = (wallMs: number): string => tagger.next(wallMs);

// ---------------------------------------------------------------- pure pieces

test('write tags: unique, fixed width, ordered by wall clock then by write order', () => {
  const a = newWriteTag(1_700_000_000_000);
  const b = newWriteTag(1_700_000_000_000);
  const c = newWriteTag(1_700_000_000_001);
  assert.equal(a.length, 21);
  assert.equal(new Set([a, b, c]).size, 3);
  assert.ok(a < b && b < c, `${a} < ${b} < ${c}`);
  assert.ok(newWriteTag(999) < newWriteTag(1_000_000), 'padded: an earlier time sorts first whatever its width');
});

test('conflict rule: higher version wins; equal versions: greater tag; same tag or unknown tag: no change', () => {
  assert.equal(compareCopies({ v: 5, t: 'a' }, { v: 4, t: 'z' }), 1);
  assert.equal(compareCopies({ v: 4, t: 'z' }, { v: 5, t: 'a' }), -1);
  assert.equal(compareCopies({ v: 5, t: 'b' }, { v: 5, t: 'a' }), 1);
  assert.equal(compareCopies({ v: 5, t: 'a' }, { v: 5, t: 'b' }), -1);
  assert.equal(compareCopies({ v: 5, t: 'a' }, { v: 5, t: 'a' }), 0);
  assert.equal(compareCopies({ v: 5, t: '' }, { v: 5, t: 'a' }), 0, 'an untagged copy (older peer) is not replaced at the same version');
  // a total order: every member picks the same winner among any set of copies, whatever the order it sees them in
  const copies = [{ v: 3, t: 'q' }, { v: 4, t: 'b' }, { v: 4, t: 'k' }, { v: 2, t: 'z' }, { v: 4, t: 'c' }];
  for (let i = 0; i < 20; i++) {
    const order = [...copies].sort(() => Math.random() - 0.5);
    let held: (typeof copies)[0] | undefined;
    for (const c of order) if (copyWins(held, c)) held = c;
    assert.deepEqual(held, { v: 4, t: 'k' });
  }
  assert.equal(copyVerdict(undefined, { v: 1, t: 'a' }), 'new');
  assert.equal(copyVerdict({ v: 1, t: 'a' }, { v: 2, t: 'a' }), 'newer');
  assert.equal(copyVerdict({ v: 2, t: 'a' }, { v: 2, t: 'b' }), 'conflict-won');
  assert.equal(copyVerdict({ v: 2, t: 'b' }, { v: 2, t: 'a' }), 'conflict-lost');
  assert.equal(copyVerdict({ v: 2, t: 'b' }, { v: 2, t: 'b' }), 'same');
  assert.equal(copyVerdict({ v: 3, t: 'b' }, { v: 2, t: 'z' }), 'older');
});

test('a delta made from another write of the held version is not applied (diverged)', () => {
  const d = (b: number, h?: string): SessionDelta => ({ i: 'x', r: 'tc1', b, v: b + 1, ...(h === undefined ? {} : { h }), t: 'new' });
  assert.equal(classifyDelta(3, d(3, 'T3'), 'T3'), 'apply');
  assert.equal(classifyDelta(3, d(3, 'T3'), 'U3'), 'diverged');
  assert.equal(classifyDelta(3, d(3), 'U3'), 'apply', 'untagged delta (older peer): version only');
  assert.equal(classifyDelta(3, d(3, 'T3'), ''), 'apply', 'untagged copy held: version only');
  assert.equal(classifyDelta(3, d(2, 'T2'), 'U3'), 'stale');
  assert.equal(classifyDelta(3, d(5, 'T5'), 'U3'), 'gap');
});

test('a session carries its write tag through deltas and snapshots; a replica applies only onto the same write', () => {
  const limits = { maxAttributeBytes: 1e6, maxSessionBytes: 1e6 };
  const owner = new Session({ base: 'b1', route: 'n1', version: 0, createdAt: 0, maxInactiveMs: 1000, now: 0 }, limits);
  owner.attributes.n = 1;
  const d1 = owner.takeDelta('T1')!;
  assert.equal(d1.h, undefined);
  assert.equal(d1.t, 'T1');
  owner.attributes.n = 2;
  const d2 = owner.takeDelta('T2')!;
  assert.deepEqual([d2.h, d2.t, owner.tag], ['T1', 'T2', 'T2']);
  const replica = Session.fromSnapshot({ i: 'b1', r: 'n1', v: 1, c: 0, m: 1000, a: { n: 1 }, t: 'T1' }, limits, 0);
  assert.equal(replica.tag, 'T1');
  replica.applyDelta(d2);
  assert.equal(replica.tag, 'T2');
  assert.equal(replica.snapshot().t, 'T2');
  assert.equal(owner.snapshot().t, 'T2');
});

const ctx = (over: Partial<DiffContext> = {}): DiffContext => ({
  selfRoute: 'n1',
  peerRoute: 'n2',
  shouldHoldHere: () => true,
  shouldHoldThere: () => true,
  push: true,
  ...over,
});

test('digest diff: tombstones win, newer and conflict winners are pulled, owned winners and missing ones pushed', () => {
  const mine: DigestEntry[] = [
    ['same', 3, 0, 'n2', 'T'], // same write, peer owns it: news of life
    ['older', 2, 0, 'n2', 'A'], // peer has v3: pull
    ['newer', 5, 0, 'n1', 'B'], // we own v5, peer has v4: push
    ['conflictLost', 4, 0, 'n1', 'a'], // same version, peer's tag greater: pull (and we lose ownership)
    ['conflictWon', 4, 0, 'n1', 'z'], // same version, ours greater and owned: push
    ['deadHere', 2, 1, '', ''], // our tombstone, peer still holds it: send it
    ['deadThere', 7, 0, 'n1', 'C'], // peer's tombstone: bury
    ['onlyHere', 1, 0, 'n1', 'D'], // peer lacks it: push (we own it)
    ['onlyHereReplica', 1, 0, 'n3', 'E'], // peer lacks it but n3 owns it: n3 pushes, not us
  ];
  const theirs: DigestEntry[] = [
    ['same', 3, 0, 'n2', 'T'],
    ['older', 3, 0, 'n2', 'A2'],
    ['newer', 4, 0, 'n1', 'B0'],
    ['conflictLost', 4, 0, 'n2', 'b'],
    ['conflictWon', 4, 0, 'n2', 'y'],
    ['deadHere', 1, 0, 'n2', 'F'],
    ['deadThere', 8, 1, '', ''],
    ['onlyThere', 1, 0, 'n2', 'G'],
    ['legacy', 1, 0, 'n2'], // a 4-element entry from a peer that does not tag
  ];
  const plan = diffDigests(mine, theirs, ctx());
  assert.deepEqual(plan.bury, [['deadThere', 8]]);
  assert.deepEqual(plan.pull.sort(), ['conflictLost', 'legacy', 'older', 'onlyThere']);
  assert.deepEqual(plan.confirm, ['same']);
  assert.deepEqual(plan.push.sort(), ['conflictWon', 'newer', 'onlyHere']);
  assert.deepEqual(plan.pushTombstones, [['deadHere', 2]]);
  assert.deepEqual(plan.conflicts.sort(), [['conflictLost', 4, 'there'], ['conflictWon', 4, 'here']]);
  // pull only (the peer pulls from us itself)
  const pullOnly = diffDigests(mine, theirs, ctx({ push: false }));
  assert.deepEqual(pullOnly.push, []);
  assert.deepEqual(pullOnly.pushTombstones, []);
  assert.deepEqual(pullOnly.pull.sort(), plan.pull.sort());
});

test('digest diff in backup mode: pull only what this node should hold, push only to a holder — but always replace a losing copy', () => {
  const mine: DigestEntry[] = [
    ['loser', 4, 0, 'n1', 'a'],
    ['mineNotTheirs', 1, 0, 'n1', 'x'],
  ];
  const theirs: DigestEntry[] = [
    ['loser', 4, 0, 'n2', 'b'],
    ['notForMe', 1, 0, 'n2', 'y'],
  ];
  const plan = diffDigests(mine, theirs, ctx({ shouldHoldHere: () => false, shouldHoldThere: () => false }));
  assert.deepEqual(plan.pull, ['loser'], 'a losing copy held here is replaced even if this node will drop it');
  assert.deepEqual(plan.push, []);
});

test('tombstones of invalidated sessions are kept past the default lifetime when asked (they must outlive copies across a partition)', () => {
  const t = new SessionTable();
  t.bury('short', 2, 0);
  t.bury('long', 2, 0, 5_000);
  assert.equal(t.purgeTombstones(500 - 600, 500), 0);
  assert.equal(t.purgeTombstones(700 - 600, 700), 1);
  assert.equal(t.tombstone('short'), undefined);
  assert.ok(t.tombstone('long'));
  assert.equal(t.purgeTombstones(5_001 - 600, 5_001), 1);
  assert.equal(t.tombstoneCount, 0);
});

// ---------------------------------------------------------------- clusters

type Attrs = Record<string, unknown>;

/** Everything a node holds: base → {version, tag, route, attributes}. */
function holdings(n: TestNode): Map<string, string> {
  const m = new Map<string, string>();
  for (const base of n.manager.versions().keys()) {
    const s = n.manager.peek(base)!;
    m.set(base, JSON.stringify({ v: s.version, t: s.tag, r: s.route, a: s.rawAttributes }));
  }
  return m;
}

async function until(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await settle(5);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function write(n: TestNode, id: string, f: (a: Attrs) => void, times = 1): Promise<Session> {
  let s = (await n.manager.load(id))!;
  assert.ok(s, `${n.route} holds ${id}`);
  for (let i = 0; i < times; i++) {
    f(s.attributes as Attrs);
    await n.manager.commit(s);
    s = (await n.manager.load(s.id))!;
  }
  return s;
}

test('partition, both sides write the same sessions (equal and unequal versions), create and invalidate others; after healing every member holds identical sessions', async (t) => {
  const { hub, nodes } = await startCluster(3);
  const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
  try {
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const s = a.manager.create();
      s.attributes.i = i;
      s.attributes.log = [];
      await a.manager.commit(s);
      ids.push(s.id);
    }
    await settle();
    hub.partition([a.channel, b.channel], [c.channel]);
    await settle();
    const push = (who: string) => (x: Attrs) => void (x.log as string[]).push(who);
    // 0: same number of writes on both sides → equal versions, different writes
    await write(a, ids[0]!, push('a'), 2);
    await write(c, ids[0]!, push('c'), 2); // c takes it over (the owner is unreachable) and writes
    // 1: same, with b writing on the majority side after taking it over from a
    await write(b, ids[1]!, push('b'), 3);
    await write(c, ids[1]!, push('c'), 3);
    // 2: more writes on the minority side → c's version is higher and wins
    await write(a, ids[2]!, push('a'), 1);
    await write(c, ids[2]!, push('c'), 4);
    // 3: written on c, invalidated on a → the invalidation wins
    await write(c, ids[3]!, push('c'), 2);
    await a.manager.invalidate((await a.manager.load(ids[3]!))!);
    // 4: invalidated on c (after a take-over), written on a → the invalidation wins
    await write(a, ids[4]!, push('a'), 3);
    await c.manager.invalidate((await c.manager.load(ids[4]!))!);
    // 5: only the majority writes; 6: only the minority writes; 7: untouched
    await write(b, ids[5]!, push('b'), 1);
    await write(c, ids[6]!, push('c'), 1);
    // new sessions on both sides, and one created then invalidated on c
    const created: string[] = [];
    for (const n of [a, b, c, c]) {
      const s = n.manager.create();
      s.attributes.from = n.route;
      await n.manager.commit(s);
      created.push(s.id);
    }
    await c.manager.invalidate((await c.manager.load(created[3]!))!);
    await settle();
    const before0 = [a, c].map((n) => n.manager.peek(ids[0]!)!);
    assert.equal(before0[0]!.version, before0[1]!.version, 'equal versions on both sides');
    assert.notEqual(before0[0]!.tag, before0[1]!.tag, 'different writes');
    const expectedWinner0 = compareCopies({ v: before0[0]!.version, t: before0[0]!.tag }, { v: before0[1]!.version, t: before0[1]!.tag }) > 0 ? 'a' : 'c';
    const expected0 = structuredClone(before0[expectedWinner0 === 'a' ? 0 : 1]!.rawAttributes);
    const t0 = performance.now();
    hub.heal();
    await until('every member holds the same sessions', () => {
      const ha = holdings(a);
      return [b, c].every((n) => {
        const h = holdings(n);
        return h.size === ha.size && [...ha].every(([k, v]) => h.get(k) === v);
      });
    });
    const healMs = performance.now() - t0;
    const final = holdings(a);
    const base = (id: string) => id.slice(0, id.indexOf('.'));
    assert.equal(final.size, 8 - 2 + 3, '8 shared − 2 invalidated + 3 created that live');
    for (const i of [3, 4]) for (const n of nodes) assert.equal(n.manager.peek(ids[i]!), undefined, `session ${i} stays invalidated on ${n.route}`);
    for (const n of nodes) assert.equal(n.manager.peek(created[3]!), undefined);
    const s0 = JSON.parse(final.get(base(ids[0]!))!) as { a: Attrs; r: string };
    assert.deepEqual(s0.a, expected0, `session 0: the write with the greater tag (${expectedWinner0}'s) won everywhere`);
    assert.deepEqual((JSON.parse(final.get(base(ids[2]!))!) as { a: Attrs }).a.log, ['c', 'c', 'c', 'c'], 'session 2: the higher version won');
    assert.deepEqual((JSON.parse(final.get(base(ids[5]!))!) as { a: Attrs }).a.log, ['b']);
    assert.deepEqual((JSON.parse(final.get(base(ids[6]!))!) as { a: Attrs }).a.log, ['c']);
    const conflicts = nodes.reduce((sum, n) => sum + n.manager.getStats().conflictsResolved, 0);
    assert.ok(conflicts >= 2, `same-version conflicts resolved: ${conflicts}`);
    // Afterwards the sessions replicate normally: the winner's owner writes, every member follows by delta.
    const owner0 = nodes.find((n) => n.route === s0.r)!;
    await write(owner0, `${base(ids[0]!)}.${s0.r}`, push('after'), 1);
    await until('the next write reaches every member', () => nodes.every((n) => n.manager.peek(ids[0]!)?.version === owner0.manager.peek(ids[0]!)!.version));
    for (const n of nodes) assert.deepEqual(n.manager.peek(ids[0]!)!.rawAttributes, owner0.manager.peek(ids[0]!)!.rawAttributes);
    t.diagnostic(`converged ${healMs.toFixed(0)} ms after the heal`);
  } finally {
    stopAll(nodes);
  }
});

test('backup mode: both sides write a session at the same version; after healing the winner sits on its owner and backup and no node keeps a losing copy', async () => {
  const { hub, nodes } = await startCluster(4, { mode: 'backup', backups: 1 });
  const [a, b, c, d] = nodes as [TestNode, TestNode, TestNode, TestNode];
  try {
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const s = a.manager.create();
      s.attributes.w = [];
      await a.manager.commit(s);
      ids.push(s.id);
    }
    await settle(20);
    hub.partition([a.channel, b.channel], [c.channel, d.channel]);
    await settle(20);
    // every session: two writes on each side (the minority side takes over from whichever copy it holds)
    const routes = ['n1', 'n2', 'n3', 'n4'];
    let written = 0;
    for (const id of ids) {
      const sideB = [c, d].find((n) => n.manager.peek(id));
      if (!sideB) continue; // no copy on the minority side (owner and backup both on the majority side)
      await write(a, id, (x) => void (x.w as string[]).push('a'), 2);
      await write(sideB, id, (x) => void (x.w as string[]).push(sideB.route), 2);
      written++;
    }
    assert.ok(written >= 5, `${written} sessions written on both sides`);
    hub.heal();
    const base = (id: string) => id.slice(0, id.indexOf('.'));
    // Every copy anywhere is the same write; the owner and its backup (placement over all four) hold it. (A node
    // that was a backup during the partition may keep an identical extra copy until the replica rule expires it.)
    await until('each session: one write everywhere, on its owner and its backup', () =>
      ids.every((id) => {
        const held = nodes.filter((n) => n.manager.peek(id)).map((n) => n.manager.peek(id)!);
        if (held.length === 0) return false;
        const owner = held[0]!.route;
        const want = [owner, ...backupRoutes(base(id), owner, routes, 1)];
        const have = nodes.filter((n) => n.manager.peek(id)).map((n) => n.route);
        const same = held.every((s) => s.version === held[0]!.version && s.tag === held[0]!.tag && s.route === owner && JSON.stringify(s.rawAttributes) === JSON.stringify(held[0]!.rawAttributes));
        return same && want.every((r) => have.includes(r));
      }),
    );
    const conflicts = nodes.reduce((sum, n) => sum + n.manager.getStats().conflictsResolved, 0);
    assert.ok(conflicts >= written, `conflicts resolved: ${conflicts}`);
    void b;
  } finally {
    stopAll(nodes);
  }
});

test('a delta made from the losing write (before anti-entropy ran) is not mixed in: the replica fetches the full copy', async () => {
  const { hub, nodes } = await startCluster(2);
  const [a, b] = nodes as [TestNode, TestNode];
  try {
    const s = a.manager.create();
    s.attributes.side = 'none';
    s.attributes.n = 0;
    await a.manager.commit(s);
    await settle();
    hub.partition([a.channel], [b.channel]);
    await write(a, s.id, (x) => void (x.side = 'a'), 1);
    await write(b, s.id, (x) => void ((x.side = 'b'), (x.onlyB = true)), 1);
    // heal, but stall the digest exchange so a's next delta reaches b first
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    for (const n of nodes) {
      const orig = n.channel.dispatch.bind(n.channel);
      n.channel.dispatch = async (from, topic, payload) => {
        if (topic === Topic.Digest) await gate;
        return orig(from, topic, payload);
      };
    }
    hub.heal();
    await write(a, s.id, (x) => void (x.n = 1), 1);
    await settle(10);
    const copy = b.manager.peek(s.id)!;
    const own = a.manager.peek(s.id)!;
    assert.equal(b.manager.getStats().divergedDeltas, 1);
    assert.deepEqual(copy.rawAttributes, own.rawAttributes, 'b holds a\'s copy, not a\'s delta applied onto b\'s write');
    assert.equal(copy.rawAttributes.onlyB, undefined);
    assert.deepEqual([copy.version, copy.tag, copy.route], [own.version, own.tag, 'n1']);
    open();
    await settle(10);
  } finally {
    stopAll(nodes);
  }
});

test('a partition longer than tombstoneTtlMs does not bring back a session invalidated on one side', async () => {
  const cfg = { tombstoneTtlMs: 60_000, maxInactiveMs: 600_000, graceMs: 120_000, sweepIntervalMs: 10_000 };
  const { hub, nodes } = await startCluster(2, cfg);
  const [a, b] = nodes as [TestNode, TestNode];
  try {
    const s = a.manager.create();
    s.attributes.user = 'ann';
    await a.manager.commit(s);
    await settle();
    hub.partition([a.channel], [b.channel]);
    await a.manager.invalidate((await a.manager.load(s.id))!);
    // 5 minutes: far past tombstoneTtlMs, still within b's replica lifetime (maxInactive + grace)
    for (const n of nodes) for (let t = 0; t < 30; t++) n.clock.advance(10_000);
    assert.ok(b.manager.peek(s.id), 'b still holds its copy (no news from the owner for less than maxInactive + grace)');
    hub.heal();
    await until('b learns of the invalidation', () => b.manager.peek(s.id) === undefined);
    assert.equal(a.manager.peek(s.id), undefined, 'not resurrected on a');
  } finally {
    stopAll(nodes);
  }
});
