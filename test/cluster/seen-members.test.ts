import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSeenMembers, parseSeenMembers, publishSeenMembers, SEEN_META_KEY } from '../../src/cluster/seen-members.js';
import { MemberState, type MemberView, type MembershipEvent } from '../../src/cluster/types.js';

const m = (route: string, state: MemberState) => ({ route, state });

test('seen members: encoded sorted by route, gone members left out, parsed back', () => {
  const v = encodeSeenMembers([m('tc3', MemberState.Suspect), m('tc2', MemberState.Alive), m('tc9', MemberState.Gone), m('lb-1f', MemberState.Alive)]);
  assert.equal(v, 'lb-1f=a,tc2=a,tc3=s');
  const p = parseSeenMembers(v)!;
  assert.deepEqual([...p.members], [['lb-1f', 'alive'], ['tc2', 'alive'], ['tc3', 'suspect']]);
  assert.equal(p.omitted, 0);
  assert.equal(encodeSeenMembers([]), '');
  assert.deepEqual(parseSeenMembers(''), { members: new Map(), omitted: 0 });
  assert.equal(parseSeenMembers(undefined), undefined, 'no meta: no report');
});

test('seen members: any route survives the separators', () => {
  const routes = ['a,b', 'x=y', '+3', 'ü<script>', '%41'];
  const v = encodeSeenMembers(routes.map((r) => m(r, MemberState.Alive)));
  assert.deepEqual([...parseSeenMembers(v)!.members.keys()].sort(), [...routes].sort());
});

test('seen members: a view too long for one meta value ends with "+N", and the value stays within the limit', () => {
  const view = Array.from({ length: 200 }, (_, i) => m(`node-${String(i).padStart(3, '0')}`, MemberState.Alive));
  const v = encodeSeenMembers(view, 100);
  assert.ok(v.length <= 100, `${v.length} chars`);
  const p = parseSeenMembers(v)!;
  assert.equal(p.members.size + p.omitted, 200);
  assert.ok(p.omitted > 0);
  assert.match(v, /,\+\d+$/);
  // Exactly at the limit: nothing omitted.
  const two = encodeSeenMembers([m('aa', MemberState.Alive), m('bb', MemberState.Alive)]);
  assert.equal(encodeSeenMembers([m('aa', MemberState.Alive), m('bb', MemberState.Alive)], two.length), two);
});

test('seen members: malformed values from another process are skipped, not thrown', () => {
  const p = parseSeenMembers('tc1=a,,=a,tc2=x,tc3,%E0%A4%A=a,tc4=s,+2,+x')!;
  assert.deepEqual([...p.members], [['tc1', 'alive'], ['tc4', 'suspect']]);
  assert.equal(p.omitted, 2);
});

/** A channel whose membership the test drives. */
function fakeChannel() {
  const members = new Map<string, MemberView>();
  const listeners = new Set<(e: MembershipEvent) => void>();
  const published: Array<Record<string, string>> = [];
  const ch = {
    self: { id: 's', route: 'tc1', incarnation: 0, clusterName: 'c', channelAddress: { host: '127.0.0.1', port: 1 }, startTime: 0, meta: { role: 'node' } as Record<string, string> },
    members: () => [...members.values()],
    onMembership: (l: (e: MembershipEvent) => void) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    setMeta: (meta: Record<string, string>) => {
      ch.self = { ...ch.self, meta: { ...meta } };
      published.push({ ...meta });
    },
  };
  const put = (route: string, state: MemberState, type: MembershipEvent['type']) => {
    const v = { id: route, route, incarnation: 0, clusterName: 'c', channelAddress: { host: '127.0.0.1', port: 2 }, startTime: 0, meta: {}, state, lastSeen: 0 } as MemberView;
    if (state === MemberState.Gone) members.delete(route);
    else members.set(route, v);
    const e = (type === 'gone' || type === 'suspected' ? { type, member: v, reason: 'test' } : { type, member: v }) as MembershipEvent;
    for (const l of listeners) l(e);
  };
  return { ch, put, published, listeners };
}

test('publishSeenMembers: at once, after each membership change (a burst coalesced), not on meta updates; stops', async () => {
  const { ch, put, published, listeners } = fakeChannel();
  let active = true;
  const stop = publishSeenMembers(ch, () => active);
  assert.deepEqual(published, [{ role: 'node', [SEEN_META_KEY]: '' }]);
  put('tc2', MemberState.Alive, 'added');
  put('tc3', MemberState.Alive, 'added');
  await Promise.resolve();
  assert.equal(published.length, 2, 'one publication for the burst');
  assert.equal(published.at(-1)![SEEN_META_KEY], 'tc2=a,tc3=a');
  assert.equal(published.at(-1)!.role, 'node', 'other meta kept');
  put('tc2', MemberState.Alive, 'updated');
  await Promise.resolve();
  assert.equal(published.length, 2, 'meta updates of others do not republish');
  put('tc3', MemberState.Suspect, 'suspected');
  await Promise.resolve();
  assert.equal(published.at(-1)![SEEN_META_KEY], 'tc2=a,tc3=s');
  put('tc3', MemberState.Alive, 'back');
  put('tc3', MemberState.Alive, 'back');
  await Promise.resolve();
  assert.equal(published.at(-1)![SEEN_META_KEY], 'tc2=a,tc3=a');
  const n = published.length;
  active = false;
  put('tc2', MemberState.Gone, 'gone');
  await Promise.resolve();
  assert.equal(published.length, n, 'nothing published while the owner shuts down');
  stop();
  assert.equal(listeners.size, 0);
});
