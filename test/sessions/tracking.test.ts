import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session } from '../../src/sessions/model/session.js';
import { parseSessionId, rewriteRoute, newSessionBase, formatSessionId } from '../../src/sessions/model/session-id.js';
import { SessionErrorCode } from '../../src/sessions/errors.js';
import { classifyDelta, ReorderBuffer } from '../../src/sessions/replication/ordering.js';
import type { SessionDelta } from '../../src/sessions/replication/wire.js';

const limits = { maxAttributeBytes: 10_000, maxSessionBytes: 50_000 };
function fresh(): Session {
  return new Session({ base: newSessionBase(), route: 'tc1', version: 0, createdAt: 0, maxInactiveMs: 60_000, now: 0 }, limits);
}
function committed(): Session {
  const s = fresh();
  s.takeDelta();
  return s;
}
const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

test('session id: ≥128 random bits base64url + route, parse and rewrite', () => {
  const base = newSessionBase();
  assert.match(base, /^[A-Za-z0-9_-]{24}$/);
  assert.ok(Buffer.from(base, 'base64url').length * 8 >= 128);
  const id = formatSessionId(base, 'tc1');
  assert.deepEqual(parseSessionId(id), { base, route: 'tc1' });
  assert.equal(rewriteRoute(id, 'tc2'), `${base}.tc2`);
  assert.deepEqual(parseSessionId(base), { base, route: '' });
  assert.equal(parseSessionId('short.tc1'), undefined);
  assert.equal(parseSessionId(`${base}.bad route`), undefined);
  assert.equal(parseSessionId(`${base}.`), undefined);
  assert.notEqual(newSessionBase(), newSessionBase());
});

test('in-place mutation is tracked without setAttribute; the delta carries only the changed attribute', () => {
  const s = committed();
  s.attributes.cart = { items: [] };
  s.attributes.user = { name: 'ann' };
  s.takeDelta();
  (s.attributes.cart as { items: unknown[] }).items.push({ sku: 'x', qty: 1 });
  const d = s.takeDelta()!;
  assert.deepEqual(Object.keys(d.s!), ['cart']);
  assert.deepEqual(d.s!.cart, { items: [{ sku: 'x', qty: 1 }] });
  assert.equal(d.b, 2);
  assert.equal(d.v, 3);
  // deep nested assignment and delete
  (s.attributes.user as { profile?: { tags: string[] } }).profile = { tags: ['a'] };
  s.takeDelta();
  ((s.attributes.user as { profile: { tags: string[] } }).profile.tags)[0] = 'b';
  assert.deepEqual(s.dirtyKeys, ['user']);
  const d2 = s.takeDelta()!;
  assert.deepEqual(d2.s, { user: { name: 'ann', profile: { tags: ['b'] } } });
  delete (s.attributes.user as { name?: string }).name;
  delete s.attributes.cart;
  const d3 = s.takeDelta()!;
  assert.deepEqual(d3.s, { user: { profile: { tags: ['b'] } } });
  assert.deepEqual(d3.d, ['cart']);
  assert.equal(s.takeDelta(), undefined, 'nothing changed: no delta, no version bump');
  assert.equal(s.version, 6);
});

test('array methods through the proxy (splice, sort, pop, length) mark the attribute dirty', () => {
  const s = committed();
  s.attributes.list = [3, 1, 2];
  s.takeDelta();
  (s.attributes.list as number[]).sort();
  assert.deepEqual(s.takeDelta()!.s, { list: [1, 2, 3] });
  (s.attributes.list as number[]).splice(1, 1);
  assert.deepEqual(s.takeDelta()!.s, { list: [1, 3] });
  (s.attributes.list as number[]).length = 0;
  assert.deepEqual(s.takeDelta()!.s, { list: [] });
});

test('unserializable values throw at the assignment, with a stable code', () => {
  const s = committed();
  const bad: Array<[string, unknown]> = [
    ['function', () => 1],
    ['symbol', Symbol('x')],
    ['BigInt', 10n],
    ['NaN', NaN],
    ['toJSON returning a function', { toJSON: () => () => 1 }],
    ['Map', new Map()],
    ['nested fn', { a: { b: [1, () => 2] } }],
  ];
  for (const [what, v] of bad) {
    assert.throws(() => (s.attributes.x = v as never), code(SessionErrorCode.Unserializable), what);
  }
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  assert.throws(() => (s.attributes.c = cyclic as never), code(SessionErrorCode.Unserializable));
  s.attributes.tree = { child: { leaf: 1 } };
  const tree = s.attributes.tree as Record<string, unknown>;
  assert.throws(() => ((tree.child as Record<string, unknown>).up = tree), /cyclic/);
  assert.throws(() => ((tree.child as Record<string, unknown>).f = () => 1), /tree\.child\.f: a function/);
  assert.throws(() => ((s.attributes.tree as unknown[] & Record<string, unknown>)['n'] = 1n), code(SessionErrorCode.Unserializable));
  assert.throws(() => (s.attributes.big = 'x'.repeat(20_000)), code(SessionErrorCode.TooLarge));
  assert.throws(() => Object.defineProperty(s.attributes, 'g', { get: () => 1 }), code(SessionErrorCode.Unserializable));
  assert.deepEqual(s.dirtyKeys, ['tree'], 'refused assignments leave nothing behind');
  assert.equal(s.attributes.x, undefined);
});

test('a Date is stored as its ISO string (what JSON stores store), at any depth; an invalid Date as null', () => {
  const s = committed();
  const at = new Date('2026-12-04T01:02:03.004Z');
  s.attributes.when = at as never;
  s.attributes.log = [{ at }] as never;
  s.attributes.bad = new Date(NaN) as never;
  assert.equal(s.attributes.when, '2026-12-04T01:02:03.004Z');
  assert.deepEqual(s.takeDelta()!.s, { when: '2026-12-04T01:02:03.004Z', log: [{ at: '2026-12-04T01:02:03.004Z' }], bad: null });
});

test('the whole session over its limit throws at the line that grows it, and nothing changes', () => {
  const s = committed();
  for (let i = 0; i < 5; i++) s.attributes[`k${i}`] = 'x'.repeat(9_000);
  assert.throws(() => (s.attributes.k5 = 'x'.repeat(9_000)), (e: unknown) => code(SessionErrorCode.TooLarge)(e) && /session attribute k5: this change makes the session \d+ bytes/.test((e as Error).message));
  assert.equal(s.attributes.k5, undefined);
  // replacing an attribute by one of the same size fits; removing one makes room
  s.attributes.k0 = 'y'.repeat(9_000);
  delete s.attributes.k1;
  s.attributes.k5 = 'x'.repeat(9_000);
  // in-place growth: each push is checked against the whole session
  s.attributes.list = [];
  const list = s.attributes.list as string[];
  assert.throws(() => {
    for (let i = 0; i < 20; i++) list.push('z'.repeat(800));
  }, code(SessionErrorCode.TooLarge));
  const kept = (s.attributes.list as string[]).length;
  assert.ok(kept > 0 && kept < 20, `${kept} pushes fitted`);
  assert.ok(s.takeDelta(), 'the session that fits commits');
});

test('after a replica applied a full copy, the size bookkeeping starts from the new attributes', () => {
  const s = committed();
  for (let i = 0; i < 5; i++) s.attributes[`k${i}`] = 'x'.repeat(9_000);
  s.takeDelta();
  s.applySnapshot({ i: s.id.split('.')[0]!, r: 'tc1', v: 9, c: 0, m: 60_000, a: { small: 1 } } as never);
  for (let i = 0; i < 5; i++) s.attributes[`n${i}`] = 'x'.repeat(9_000);
  assert.ok(s.takeDelta());
});

test('assigned objects are copied: later changes to the caller object cannot bypass tracking', () => {
  const s = committed();
  const mine = { n: 1 };
  s.attributes.o = mine;
  mine.n = 2;
  assert.deepEqual(s.attributes.o, { n: 1 });
});

test('invalidated session refuses writes', () => {
  const s = committed();
  s.markInvalid();
  assert.throws(() => (s.attributes.a = 1), code(SessionErrorCode.Invalidated));
});

test('first delta carries everything; metadata changes replicate', () => {
  const s = fresh();
  s.attributes.a = 1;
  const d = s.takeDelta()!;
  assert.equal(d.b, 0);
  assert.deepEqual(d.s, { a: 1 });
  assert.equal(d.m, 60_000);
  s.setMaxInactive(5_000);
  const d2 = s.takeDelta()!;
  assert.equal(d2.m, 5_000);
  s.changeBase(newSessionBase());
  const d3 = s.takeDelta()!;
  assert.ok(d3.p && d3.p !== d3.i);
});

test('version ordering: apply in order, reject stale, buffer gaps', () => {
  const d = (b: number): SessionDelta => ({ i: 'x', r: 'tc1', b, v: b + 1 });
  assert.equal(classifyDelta(0, d(0)), 'apply');
  assert.equal(classifyDelta(3, d(3)), 'apply');
  assert.equal(classifyDelta(3, d(2)), 'stale');
  assert.equal(classifyDelta(3, d(1)), 'stale');
  assert.equal(classifyDelta(3, d(5)), 'gap');
  const buf = new ReorderBuffer(100);
  buf.add(d(5), 'peer', 0);
  buf.add(d(4), 'peer', 0);
  assert.deepEqual(buf.takeApplicable('x', 3), []);
  buf.add(d(3), 'peer', 0);
  assert.deepEqual(buf.takeApplicable('x', 3).map((x) => x.v), [4, 5, 6]);
  assert.equal(buf.size, 0);
  buf.add(d(9), 'peer', 10);
  assert.deepEqual(buf.expired(50), []);
  assert.deepEqual(buf.expired(110), [['x', 'peer']]);
});

test('reorder buffer: repair attempts back off and are counted so a dead sender is eventually given up', () => {
  const buf = new ReorderBuffer(100);
  buf.add({ i: 'y', r: 'tc1', b: 4, v: 5 }, 'peer', 0);
  assert.equal(buf.postpone('y', 100), 1);
  assert.deepEqual(buf.expired(150), []);
  assert.deepEqual(buf.expired(200), [['y', 'peer']]);
  assert.equal(buf.postpone('y', 200), 2);
  assert.deepEqual(buf.expired(350), []);
  assert.deepEqual(buf.expired(400), [['y', 'peer']]);
  buf.drop('y');
  assert.equal(buf.size, 0);
});

test('repeated in-place updates do not accumulate in the size estimate', () => {
  const s = committed();
  s.attributes.big = 'x'.repeat(9_000);
  s.attributes.user = { visits: 0, name: 'ann' };
  const u = s.attributes.user as { visits: number; name: string };
  for (let i = 0; i < 20_000; i++) {
    u.visits++;
    u.name = i % 2 ? 'ann' : 'bob';
  }
  assert.equal(u.visits, 20_000);
  assert.ok(s.takeDelta());
});
