import test from 'node:test';
import assert from 'node:assert/strict';
import { MemberFlag, MemberHealth } from '../../src/balancer/member.js';
import { makeBalancer, pickMany, counts } from './helpers.js';

const m = (route: string, extra: Record<string, unknown> = {}) => ({ url: `http://127.0.0.1:9${route.charCodeAt(route.length - 1)}`, route, ...extra });
const pick = (b: ReturnType<typeof makeBalancer>['b'], route?: string, exclude?: Set<never>) => b.pick({ route, exclude });

test('sticky: a request with route tc2 goes to tc2; an unknown route is balanced', () => {
  const { b } = makeBalancer({ members: [m('tc1'), m('tc2'), m('tc3')] });
  for (let i = 0; i < 20; i++) {
    const d = pick(b, 'tc2');
    assert.equal(d.kind, 'pick');
    assert.equal(d.kind === 'pick' && d.member.route, 'tc2');
    assert.equal(d.kind === 'pick' && d.reason, 'sticky');
  }
  const spread = counts(pickMany(b, 30, 'nosuch'));
  assert.deepEqual(spread, { tc1: 10, tc2: 10, tc3: 10 });
});

test('sticky failover: unusable route member → another member in the same lbset first', () => {
  const { b, clock } = makeBalancer({ members: [m('a1', { lbset: 0 }), m('b1', { lbset: 1 }), m('b2', { lbset: 1 })] });
  b.findMember('b1')!.markError('connect', 'ECONNREFUSED', clock.now(), Date.now());
  for (let i = 0; i < 10; i++) {
    const d = pick(b, 'b1');
    assert.ok(d.kind === 'pick');
    assert.equal(d.member.route, 'b2', 'same lbset preferred');
    assert.equal(d.reason, 'failover');
  }
});

test('nofailover: unusable sticky member → fail (503), not another member', () => {
  const { b, clock } = makeBalancer({ nofailover: true, members: [m('a'), m('b')] });
  b.findMember('a')!.markError('connect', 'ECONNREFUSED', clock.now(), Date.now());
  const d = pick(b, 'a');
  assert.equal(d.kind, 'fail');
  assert.match(d.kind === 'fail' ? d.detail : '', /nofailover/);
  // Requests without a route still go to b.
  const d2 = pick(b);
  assert.ok(d2.kind === 'pick' && d2.member.route === 'b');
});

test('error state lasts `retry` seconds; the member is tried again after and ok on first success', () => {
  const { b, clock } = makeBalancer({ members: [m('a', { retry: 5 }), m('b')] });
  const a = b.findMember('a')!;
  a.markError('connect', 'ECONNREFUSED', clock.now(), Date.now());
  assert.deepEqual(counts(pickMany(b, 10)), { b: 10 });
  assert.equal(a.reason?.source, 'connect');
  clock.advance(5_001);
  assert.ok(pickMany(b, 10).includes('a'), 'a is tried again after retry');
  a.markSuccess(clock.now(), Date.now());
  assert.equal(a.health, MemberHealth.Ok);
  assert.equal(a.lastError?.message, 'ECONNREFUSED');
});

test('forcerecovery: all members in error → all tried again rather than refusing', () => {
  const { b, clock } = makeBalancer({ members: [m('a'), m('b')] });
  for (const x of b.members) x.markError('connect', 'ECONNREFUSED', clock.now(), Date.now());
  const d = b.acquire({ route: undefined, exclude: undefined });
  assert.ok(!(d instanceof Promise) && d.kind === 'pick');
  assert.equal(d.reason, 'forcerecovery');
  const off = makeBalancer({ forcerecovery: false, members: [m('a'), m('b')] });
  for (const x of off.b.members) x.markError('connect', 'ECONNREFUSED', off.clock.now(), Date.now());
  assert.equal(pick(off.b).kind, 'fail');
});

test('forcerecovery does not override disabled members or failed health checks', () => {
  const { b, clock } = makeBalancer({ members: [m('a', { status: ['disabled'] }), m('b')] });
  b.findMember('b')!.recordCheck(false, 'down', 1, 1, clock.now(), Date.now());
  assert.equal(pick(b).kind, 'fail');
});

test('hot standby gets traffic only when no regular member of the set is usable', () => {
  const { b, clock } = makeBalancer({ members: [m('a'), m('b'), m('h', { status: ['hot-standby'] })] });
  assert.ok(!pickMany(b, 50).includes('h'));
  b.findMember('a')!.markError('connect', 'x', clock.now(), Date.now());
  assert.ok(!pickMany(b, 50).includes('h'));
  b.findMember('b')!.markError('connect', 'x', clock.now(), Date.now());
  const d = pick(b);
  assert.ok(d.kind === 'pick' && d.member.route === 'h' && d.reason === 'standby');
});

test('hot standby is not woken because regular members are busy: at max, a request waits for them', async () => {
  const { b } = makeBalancer({ timeout: 5, members: [m('a', { max: 1 }), m('h', { status: ['hot-standby'] })] });
  const d1 = b.acquire({ route: undefined, exclude: undefined });
  assert.ok(!(d1 instanceof Promise) && d1.kind === 'pick' && d1.member.route === 'a');
  assert.equal(pick(b).kind, 'queue');
  const waiting = b.acquire({ route: undefined, exclude: undefined });
  assert.ok(waiting instanceof Promise, 'queued for a, not sent to the standby');
  b.release(d1.member);
  const got = await waiting;
  assert.ok(got.kind === 'pick' && got.member.route === 'a');
});

test('lower lbsets are used first', () => {
  const { b, clock } = makeBalancer({ members: [m('hi1', { lbset: 1 }), m('lo1', { lbset: 0 }), m('lo2', { lbset: 0 })] });
  assert.deepEqual(Object.keys(counts(pickMany(b, 40))).sort(), ['lo1', 'lo2']);
  b.findMember('lo1')!.markError('connect', 'x', clock.now(), Date.now());
  b.findMember('lo2')!.markError('connect', 'x', clock.now(), Date.now());
  assert.deepEqual(counts(pickMany(b, 5)), { hi1: 5 });
});

test('drain: only requests with its own route; no new sessions', () => {
  const { b } = makeBalancer({ members: [m('a', { status: ['drain'] }), m('b')] });
  assert.deepEqual(counts(pickMany(b, 20)), { b: 20 });
  assert.deepEqual(counts(pickMany(b, 5, 'a')), { a: 5 });
});

test('disabled member gets nothing, not even its sticky route (fails over)', () => {
  const { b } = makeBalancer({ members: [m('a'), m('b')] });
  b.setFlag(b.findMember('a')!, MemberFlag.Disabled, true);
  assert.deepEqual(counts(pickMany(b, 5, 'a')), { b: 5 });
});

test('max: a full member is skipped; when all are full the request queues, then 503 after timeout', async () => {
  const { b, clock } = makeBalancer({ timeout: 2, members: [m('a', { max: 1 }), m('b', { max: 1 })] });
  const d1 = b.acquire({ route: undefined, exclude: undefined });
  const d2 = b.acquire({ route: undefined, exclude: undefined });
  assert.ok(!(d1 instanceof Promise) && !(d2 instanceof Promise) && d1.kind === 'pick' && d2.kind === 'pick');
  assert.notEqual(d1.member, d2.member);
  const waiting = b.acquire({ route: undefined, exclude: undefined });
  assert.ok(waiting instanceof Promise);
  assert.equal(b.queued, 1);
  b.release(d1.member);
  const got = await waiting;
  assert.ok(got.kind === 'pick' && got.member === d1.member);
  const timedOut = b.acquire({ route: undefined, exclude: undefined });
  assert.ok(timedOut instanceof Promise);
  clock.advance(2_001);
  const r = await timedOut;
  assert.equal(r.kind, 'fail');
  assert.equal(b.queued, 0);
});

test('max with timeout 0: no queueing, immediate failure', () => {
  const { b } = makeBalancer({ members: [m('a', { max: 1 })] });
  const d1 = b.acquire({ route: undefined, exclude: undefined });
  assert.ok(!(d1 instanceof Promise) && d1.kind === 'pick');
  const d2 = b.acquire({ route: undefined, exclude: undefined });
  assert.ok(!(d2 instanceof Promise) && d2.kind === 'fail');
});

test('excluded (already failed) members are not picked again for the same request', () => {
  const { b } = makeBalancer({ members: [m('a'), m('b')] });
  const a = b.findMember('a')!;
  for (let i = 0; i < 10; i++) {
    const d = b.pick({ route: 'a', exclude: new Set([a]) });
    assert.ok(d.kind === 'pick' && d.member.route === 'b');
  }
});

test('outlier detection ejects after consecutive 5xx, never more than half the members', () => {
  const { b, clock } = makeBalancer({ outlier: { consecutive5xx: 3, ejecttime: 10, maxejectpercent: 50 }, members: [m('a'), m('b'), m('c'), m('d')] });
  const now = clock.now();
  for (const r of ['a', 'b', 'c']) for (let i = 0; i < 3; i++) b.observeStatus(b.findMember(r)!, 500, now, Date.now());
  const ejected = b.members.filter((x) => x.health === MemberHealth.Ejected).map((x) => x.route);
  assert.deepEqual(ejected, ['a', 'b']);
  assert.ok(!pickMany(b, 20).some((r) => r === 'a' || r === 'b'));
  clock.advance(10_001);
  assert.ok(pickMany(b, 20).includes('a'));
});

test('failonstatus puts the member in error', () => {
  const { b, clock } = makeBalancer({ failonstatus: [503], members: [m('a'), m('b')] });
  assert.equal(b.observeStatus(b.findMember('a')!, 503, clock.now(), Date.now()), true);
  assert.equal(b.findMember('a')!.health, MemberHealth.Error);
  assert.equal(b.findMember('a')!.reason?.source, 'status');
});

test('health checks: fall failures take a member out; rise passes bring it back at once', () => {
  const { b, clock } = makeBalancer({ members: [m('a', { retry: 600 }), m('b')] });
  const a = b.findMember('a')!;
  a.recordCheck(false, 'refused', 2, 2, clock.now(), Date.now());
  assert.equal(a.health, MemberHealth.Ok);
  a.recordCheck(false, 'refused', 2, 2, clock.now(), Date.now());
  assert.equal(a.health, MemberHealth.CheckFailed);
  assert.deepEqual(counts(pickMany(b, 10, 'a')), { b: 10 });
  a.recordCheck(true, '200', 2, 2, clock.now(), Date.now());
  assert.equal(a.health, MemberHealth.CheckFailed);
  a.recordCheck(true, '200', 2, 2, clock.now(), Date.now());
  assert.equal(a.health, MemberHealth.Ok, 'back after rise passes, not after retry');
  assert.deepEqual(counts(pickMany(b, 3, 'a')), { a: 3 });
});

test('a member in error passes checks → back at once (not after retry=600s)', () => {
  const { b, clock } = makeBalancer({ members: [m('a', { retry: 600 }), m('b')] });
  const a = b.findMember('a')!;
  a.markError('connect', 'ECONNREFUSED', clock.now(), Date.now());
  a.recordCheck(true, '200', 1, 1, clock.now(), Date.now());
  assert.equal(a.health, MemberHealth.Ok);
});

test('ignore-errors: errors do not take the member out', () => {
  const { b, clock } = makeBalancer({ members: [m('a', { status: ['ignore-errors'] })] });
  b.findMember('a')!.markError('connect', 'x', clock.now(), Date.now());
  assert.equal(b.findMember('a')!.health, MemberHealth.Ok);
});
