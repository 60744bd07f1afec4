import test from 'node:test';
import assert from 'node:assert/strict';
import { makeBalancer, pickMany, counts, longestRun } from './helpers.js';

const m = (route: string, loadfactor = 1, extra: Record<string, unknown> = {}) => ({ url: `http://127.0.0.1:${8000 + route.length + loadfactor}/${route}`, route, loadfactor, ...extra });

test('byrequests: over 10,000 requests each share is within 1% of its loadfactor share', () => {
  const { b } = makeBalancer({ members: [m('a', 1), m('b', 2), m('c', 7)] });
  const picks = pickMany(b, 10_000);
  const c = counts(picks);
  assert.ok(Math.abs(c.a! / 10_000 - 0.1) < 0.01, `a got ${c.a}`);
  assert.ok(Math.abs(c.b! / 10_000 - 0.2) < 0.01, `b got ${c.b}`);
  assert.ok(Math.abs(c.c! / 10_000 - 0.7) < 0.01, `c got ${c.c}`);
});

test('byrequests is smooth: equal weights alternate; no long runs with uneven weights', () => {
  const eq = makeBalancer({ members: [m('a'), m('b'), m('c')] }).b;
  const picks = pickMany(eq, 300);
  assert.equal(longestRun(picks), 1);
  const uneven = makeBalancer({ members: [m('a', 1), m('b', 4)] }).b;
  const p2 = pickMany(uneven, 1000);
  // b has 80%: smooth WRR never gives it more than 4 in a row.
  assert.ok(longestRun(p2) <= 4, `longest run ${longestRun(p2)}`);
});

test('bybusyness: picks the member with fewest outstanding requests per weight', () => {
  const { b } = makeBalancer({ method: 'bybusyness', members: [m('a'), m('b'), m('c')] });
  const held = [];
  for (let i = 0; i < 6; i++) {
    const d = b.acquire({ route: undefined, exclude: undefined });
    assert.ok(!(d instanceof Promise) && d.kind === 'pick');
    held.push(d.member);
  }
  // 6 outstanding over 3 equal members: 2 each.
  assert.deepEqual(counts(held.map((x) => x.route)), { a: 2, b: 2, c: 2 });
  // Free two slots on "c": it becomes the least busy and gets the next two.
  b.release(held.find((x) => x.route === 'c')!);
  b.release(held.find((x) => x.route === 'c')!);
  const next = b.acquire({ route: undefined, exclude: undefined });
  assert.ok(!(next instanceof Promise) && next.kind === 'pick' && next.member.route === 'c');
});

test('bytraffic: the member that moved fewer bytes (per weight) is chosen', () => {
  const { b } = makeBalancer({ method: 'bytraffic', members: [m('a'), m('b')] });
  b.members[0]!.transferred = 10_000;
  b.members[1]!.transferred = 500;
  assert.deepEqual(pickMany(b, 3), ['b', 'b', 'b']);
  b.members[1]!.transferred = 20_000;
  assert.equal(pickMany(b, 1)[0], 'a');
});

test('bylatency: a slow member gets a small share; equal members share evenly', () => {
  const { b, clock } = makeBalancer({ method: 'bylatency', members: [m('fast1'), m('fast2'), m('slow')] });
  const now = clock.now();
  b.members[0]!.recordLatency(2, now);
  b.members[1]!.recordLatency(2, now);
  b.members[2]!.recordLatency(50, now);
  const c = counts(pickMany(b, 3000));
  assert.ok((c.slow ?? 0) < 3000 * 0.12, `slow member got ${c.slow}`);
  assert.ok(Math.abs(c.fast1! - c.fast2!) < 300, `fast members ${c.fast1} vs ${c.fast2}`);
  // A slow record fades: after a minute without samples the member is probed again.
  clock.advance(60_000);
  assert.ok((counts(pickMany(b, 300)).slow ?? 0) > 0, 'slow member probed again after its record aged');
});

test('slow start: a recovered member ramps up instead of taking a full share at once', () => {
  const { b, clock } = makeBalancer({ slowstart: 10, members: [m('a'), m('b')] });
  clock.advance(11_000); // members added at start ramp together; let that pass
  b.members[1]!.recoveredAt = clock.now();
  const early = counts(pickMany(b, 1000));
  assert.ok(early.b! < 150, `b got ${early.b} right after recovery`);
  clock.advance(5_000);
  const mid = counts(pickMany(b, 1000));
  assert.ok(mid.b! > 250 && mid.b! < 400, `b got ${mid.b} halfway`);
  clock.advance(6_000);
  const full = counts(pickMany(b, 1000));
  assert.equal(full.b, 500);
});
