/**
 * Guarded member state (issue 14 point 4, the balancer's part): health moves
 * only from the states its table allows, one structured event per change and
 * none when nothing changed; settings and flags change through methods that
 * emit one event per changed field, whoever changes them (manager, reload,
 * discovery). The proxy reports outcomes through `report` only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Member, MemberFlag, MemberHealth, HEALTH_MOVES, type MemberSettingChange, type MemberTransition } from '../../src/balancer/member.js';
import { makeBalancer } from './helpers.js';

function member(): { m: Member; moves: MemberTransition[]; settings: MemberSettingChange[] } {
  const moves: MemberTransition[] = [];
  const settings: MemberSettingChange[] = [];
  const m = new Member({ url: 'http://127.0.0.1:8081', route: 'tc1', loadfactor: 1, max: 150, retry: 60, lbset: 0, status: [] }, (t) => moves.push(t), (c) => settings.push(c));
  return { m, moves, settings };
}

/** Puts a fresh member into `h` by allowed moves. */
function into(h: MemberHealth): ReturnType<typeof member> {
  const x = member();
  if (h === MemberHealth.Error) x.m.markError('connect', 'refused', 0, 0);
  if (h === MemberHealth.Ejected) x.m.eject(30_000, '5 consecutive 5xx', 0, 0);
  if (h === MemberHealth.CheckFailed) x.m.recordCheck(false, 'down', 1, 1, 0, 0);
  assert.equal(x.m.health, h);
  x.moves.length = 0;
  return x;
}

test('health moves follow the table: allowed from the listed states, refused (state kept, no event) from the others', () => {
  const act: Record<keyof typeof HEALTH_MOVES, (m: Member) => void> = {
    requestFailed: (m) => m.markError('reset', 'ECONNRESET', 100_000, 1),
    requestSucceeded: (m) => m.markSuccess(100_000, 1),
    ejected: (m) => m.eject(30_000, 'outlier', 100_000, 1),
    checksPassed: (m) => m.recordCheck(true, 'ok', 1, 1, 100_000, 1),
    checksFailed: (m) => m.recordCheck(false, 'down', 1, 1, 100_000, 1),
    operatorReset: (m) => m.resetHealth(100_000, 1),
  };
  const all = [MemberHealth.Ok, MemberHealth.Error, MemberHealth.Ejected, MemberHealth.CheckFailed];
  for (const [name, move] of Object.entries(HEALTH_MOVES) as [keyof typeof HEALTH_MOVES, (typeof HEALTH_MOVES)[keyof typeof HEALTH_MOVES]][]) {
    for (const from of all) {
      const { m, moves } = into(from);
      act[name](m);
      const allowed = move.from.length === 0 || (move.from as readonly MemberHealth[]).includes(from);
      const want = allowed ? move.to : from;
      assert.equal(m.health, want, `${name} from ${from}`);
      assert.equal(moves.length, want === from ? 0 : 1, `${name} from ${from}: ${moves.length} events`);
      if (want !== from) assert.deepEqual([moves[0]!.from, moves[0]!.to], [from, want]);
    }
  }
});

test('a request failure does not pull a member out of check-failed; its error is still recorded', () => {
  const { m, moves } = into(MemberHealth.CheckFailed);
  m.markError('connect', 'ECONNREFUSED', 5, 5);
  assert.equal(m.health, MemberHealth.CheckFailed);
  assert.equal(m.lastError?.message, 'ECONNREFUSED');
  assert.equal(moves.length, 0);
});

test('settings change through configure: one event per changed field, with its source; none when unchanged', () => {
  const { m, settings } = member();
  assert.deepEqual(m.configure({ loadfactor: 3, lbset: 0, max: 10 }, 'manager'), ['loadfactor 1 → 3', 'max 150 → 10']);
  assert.deepEqual(settings.map((s) => [s.field, s.from, s.to, s.source]), [['loadfactor', 1, 3, 'manager'], ['max', 150, 10, 'manager']]);
  assert.deepEqual(m.configure({ loadfactor: 3 }, 'discovery'), []);
  assert.equal(settings.length, 2);
});

test('flags: one event per change; re-enabling a disabled member starts its slow start', () => {
  const { m, settings } = member();
  assert.equal(m.setFlag(MemberFlag.Disabled, true, 'manager', 10), true);
  assert.equal(m.setFlag(MemberFlag.Disabled, true, 'manager', 20), false);
  assert.equal(m.replaceFlags([MemberFlag.Drain], 'reload', 30), true);
  assert.equal(m.recoveredAt, 30);
  assert.deepEqual(settings.map((s) => [s.field, s.from, s.to, s.source]), [['flags', '', 'disabled', 'manager'], ['flags', 'disabled', 'drain', 'reload']]);
});

test('the balancer passes member events on (transition, setting) and applies reloads through the same methods', () => {
  const { b, clock } = makeBalancer({ members: [{ url: 'http://127.0.0.1:8081', route: 'tc1' }] });
  const seen: string[] = [];
  b.on('transition', (t) => seen.push(`${t.balancer} ${t.member} ${t.from}→${t.to}`));
  b.on('setting', (c) => seen.push(`${c.balancer} ${c.member} ${c.field} ${c.from}→${c.to} ${c.source}`));
  const m = b.members[0]!;
  b.report(m, { kind: 'failed', failure: { code: 'ECONNREFUSED', message: 'refused', source: 'connect', marksDown: true } });
  b.setFlag(m, MemberFlag.HotStandby, true);
  clock.advance(1);
  b.reconfigure({ ...b.snapshot(), name: 'b', method: 'byrequests', stickysession: 'JSESSIONID|jsessionid', stickysessionsep: '.', nofailover: false, maxattempts: 1, timeout: 0, maxqueue: 1024, failonstatus: [], forcerecovery: true, slowstart: 0, retrybudget: { percent: 20, min: 3 }, outlier: false, hcheck: false, preservehost: false, members: [{ url: 'http://127.0.0.1:8081', route: 'tc1', loadfactor: 2, max: 150, retry: 60, lbset: 0, status: [] }] } as never);
  assert.deepEqual(seen, [
    'b tc1 ok→error',
    'b tc1 flags →hot-standby manager',
    'b tc1 loadfactor 1→2 reload',
    'b tc1 flags hot-standby→ reload',
  ]);
});

test('the error probe ends a retry wait through the balancer: the member is usable at once and one change event tells every view (workers, fleet, dashboard)', () => {
  const { b, clock } = makeBalancer({ members: [{ url: 'http://127.0.0.1:8081', route: 'tc1', retry: 60 }] });
  const m = b.members[0]!;
  const now = clock.now();
  m.markError('connect', 'ECONNREFUSED', now, 0);
  assert.equal(m.usable(now + 1000), false, 'waiting out retry');
  const changes: unknown[] = [];
  b.on('change', (c) => changes.push(c));
  assert.equal(b.endRetryWait(m, now + 1000), true);
  assert.equal(m.usable(now + 1000), true, 'its next request is the trial');
  assert.equal(m.health, MemberHealth.Error, 'still in error until that trial succeeds');
  assert.equal(changes.length, 1);
  assert.equal(b.endRetryWait(m, now + 2000), false, 'not waiting any more: nothing to end, no event');
  assert.equal(changes.length, 1);
});
