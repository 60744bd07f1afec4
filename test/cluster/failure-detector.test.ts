import test from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/util/clock.js';
import { FailureDetector } from '../../src/cluster/failure-detector.js';
import { MemberState, type MemberInfo, type MembershipEvent } from '../../src/cluster/types.js';

function info(id: string, route = id, incarnation = 0): MemberInfo {
  return { id, route, incarnation, clusterName: 'cohort', channelAddress: { host: '127.0.0.1', port: 4000 }, startTime: 0, meta: {} };
}

function setup() {
  const clock = new ManualClock(1000);
  const events: Array<MembershipEvent & { at: number }> = [];
  const probes: Array<{ id: string; inc: number; at: number }> = [];
  const fd = new FailureDetector(
    { clock, suspectAfterMs: 750, confirmTimeoutMs: 500, probeIntervalMs: 200, tickMs: 25 },
    { emit: (e) => events.push({ ...e, at: clock.now() }), probe: (id, inc) => probes.push({ id, inc, at: clock.now() }) },
  );
  fd.start();
  return { clock, events, probes, fd, types: () => events.map((e) => e.type) };
}

test('detector: a verified member is added', () => {
  const { fd, types } = setup();
  fd.verified(info('a'));
  assert.deepEqual(types(), ['added']);
  assert.equal(fd.get('a')!.state, MemberState.Alive);
});

test('detector: crash evidence (connect refused) → gone at once, suspected first', () => {
  const { fd, clock, events, types } = setup();
  fd.verified(info('a'));
  clock.advance(100);
  fd.suspect('a', 'connection lost');
  fd.confirmGone('a', 'connect refused');
  assert.deepEqual(types(), ['added', 'suspected', 'gone']);
  assert.equal(events[2]!.at - events[1]!.at, 0);
  assert.equal(fd.live().length, 0);
});

test('detector: silence → suspect → probes → gone after the confirmation window', () => {
  const { fd, clock, events, probes, types } = setup();
  fd.verified(info('a'));
  for (let i = 0; i < 10; i++) {
    clock.advance(250);
    fd.alive('a', 0);
  }
  const lastBeat = clock.now();
  clock.advance(700);
  assert.deepEqual(types(), ['added']);
  clock.advance(100);
  assert.deepEqual(types(), ['added', 'suspected']);
  assert.ok(probes.length >= 1, 'probe requested at suspicion');
  clock.advance(2000);
  assert.deepEqual(types(), ['added', 'suspected', 'gone']);
  const gone = events[2]!.at - lastBeat;
  assert.ok(gone >= 1250 && gone <= 1300, `gone ${gone} ms after the last heartbeat`);
  assert.ok(probes.length >= 2, 'probed again while suspect');
});

test('detector: one missed heartbeat (a short pause) is not suspicion', () => {
  const { fd, clock, types } = setup();
  fd.verified(info('a'));
  clock.advance(250);
  fd.alive('a', 0);
  clock.advance(600); // two heartbeats late
  fd.alive('a', 0);
  clock.advance(250);
  fd.alive('a', 0);
  assert.deepEqual(types(), ['added']);
});

test('detector: a paused-then-resumed member refutes by raising its incarnation', () => {
  const { fd, clock, probes, types } = setup();
  fd.verified(info('a'));
  clock.advance(800);
  assert.deepEqual(types(), ['added', 'suspected']);
  // stale heartbeat with the suspected incarnation does not clear suspicion
  fd.alive('a', 0);
  assert.equal(fd.get('a')!.state, MemberState.Suspect);
  assert.equal(probes[0]!.inc, 0);
  // the member saw the probe and refuted
  fd.alive('a', 1);
  assert.deepEqual(types(), ['added', 'suspected', 'back']);
  assert.equal(fd.get('a')!.incarnation, 1);
  clock.advance(800);
  assert.equal(fd.get('a')!.state, MemberState.Suspect, 'silent again → suspected again, not gone at once');
});

test('detector: direct evidence during suspicion clears it', () => {
  const { fd, clock, types } = setup();
  fd.verified(info('a'));
  fd.suspect('a', 'send queue full');
  clock.advance(100);
  fd.alive('a', 0, true);
  assert.deepEqual(types(), ['added', 'suspected', 'back']);
});

test('detector: our own pause does not make others suspect', () => {
  const clock = new ManualClock(0);
  const events: MembershipEvent[] = [];
  const fd = new FailureDetector({ clock, suspectAfterMs: 750, confirmTimeoutMs: 500, probeIntervalMs: 200, tickMs: 25 }, { emit: (e) => events.push(e), probe: () => {} });
  fd.verified(info('a'));
  // no timer armed: simulate a frozen event loop, then one late tick
  (clock as unknown as { t: number }).t = 5000;
  fd.tick();
  assert.deepEqual(events.map((e) => e.type), ['added']);
});

test('detector: gone member verified again is back; leave is gone at once', () => {
  const { fd, clock, types } = setup();
  fd.verified(info('a'));
  clock.advance(5000);
  assert.equal(fd.get('a')!.state, MemberState.Gone);
  fd.verified(info('a'));
  assert.equal(fd.get('a')!.state, MemberState.Alive);
  fd.left('a');
  assert.deepEqual(types(), ['added', 'suspected', 'gone', 'back', 'gone']);
});

test('detector: meta change emits updated; byRoute finds live members only', () => {
  const { fd, clock, types } = setup();
  fd.verified(info('a', 'r1'));
  fd.updateMeta('a', 0, { ready: 'true' });
  assert.deepEqual(types(), ['added', 'updated']);
  assert.equal(fd.byRoute('r1')!.meta['ready'], 'true');
  clock.advance(5000);
  assert.equal(fd.byRoute('r1'), undefined);
});
