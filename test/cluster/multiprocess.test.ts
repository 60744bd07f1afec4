/**
 * Real processes on loopback: three nodes discover each other (static, then
 * multicast), SIGKILL one (others see it gone), restart it (it comes back),
 * SIGSTOP one (hung: gone after confirmation), SIGCONT (back), an outsider
 * with the wrong secret is rejected and counted.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { Proc, freePort, freeUdpPort, multicastOnLoopback } from './procs.js';

const SECRET = 'multiprocess-secret-0123456789';
const procs: Proc[] = [];
function spawnNode(name: string, config: Record<string, unknown>, secret = SECRET): Proc {
  const p = new Proc(name, config, secret);
  procs.push(p);
  return p;
}
test.afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.exited();
  }
});

const isEv = (ev: string, route: string, after = 0) => (l: { ev: string; [k: string]: unknown }) => l.ev === ev && l['route'] === route && (l['at'] as number) >= after;

test('multi-process static: discover, SIGKILL → gone, restart → back, SIGSTOP → gone, SIGCONT → back, outsider refused', async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  const members = ports.map((p) => `127.0.0.1:${p}`);
  const cfg = (route: string, port: number) => ({ route, listen: { host: '127.0.0.1', port }, membership: { type: 'static', members, refreshMs: 250 } });
  const [a, b] = [spawnNode('a', cfg('a', ports[0]!)), spawnNode('b', cfg('b', ports[1]!))];
  let c = spawnNode('c', cfg('c', ports[2]!));
  for (const [p, others] of [[a, ['b', 'c']], [b, ['a', 'c']], [c, ['a', 'b']]] as const) {
    for (const o of others) await p.wait(isEv('added', o), 10_000, `${p.name} sees ${o}`);
  }

  // SIGKILL c
  const killedAt = Date.now();
  c.kill('SIGKILL');
  const goneA = await a.wait(isEv('gone', 'c'), 5000, 'a sees c gone');
  const goneB = await b.wait(isEv('gone', 'c'), 5000, 'b sees c gone');
  const kill = [(goneA['at'] as number) - killedAt, (goneB['at'] as number) - killedAt];
  console.log(`SIGKILL detection: a ${kill[0]} ms (${goneA['reason']}), b ${kill[1]} ms (${goneB['reason']})`);
  assert.ok(Math.max(...kill) < 1000, `SIGKILL seen gone after ${kill} ms`);
  await c.exited();

  // restart c on the same port: comes back (a new process, a new id)
  const restartAt = Date.now();
  c = spawnNode('c2', cfg('c', ports[2]!));
  await a.wait(isEv('added', 'c', restartAt), 10_000, 'a sees c again');
  await b.wait(isEv('added', 'c', restartAt), 10_000, 'b sees c again');
  console.log(`restart: c back in a's view ${(a.lines.find(isEv('added', 'c', restartAt))!['at'] as number) - restartAt} ms after spawn`);

  // short pauses are not deaths: 600 ms (two missed heartbeats) and 1100 ms (suspected, then refuted)
  for (const pauseMs of [600, 1100]) {
    await new Promise((r) => setTimeout(r, 300));
    const pausedAt = Date.now();
    b.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, pauseMs));
    b.kill('SIGCONT');
    await new Promise((r) => setTimeout(r, 1200));
    const seen = [a, c].flatMap((p) => p.lines.filter((l) => l['route'] === 'b' && (l['at'] as number) >= pausedAt).map((l) => `${p.name}:${l.ev}`));
    console.log(`pause of ${pauseMs} ms: events about b: ${JSON.stringify(seen)}`);
    assert.ok(!seen.some((e) => e.endsWith(':gone')), `paused ${pauseMs} ms → not gone`);
    assert.ok(!b.lines.some((l) => l.ev === 'gone' && (l['at'] as number) >= pausedAt), 'the paused node does not drop others either');
  }

  // SIGSTOP b (hung): gone after suspicion + unanswered probes; SIGCONT: back
  await new Promise((r) => setTimeout(r, 300));
  const stoppedAt = Date.now();
  b.kill('SIGSTOP');
  const hungA = await a.wait(isEv('gone', 'b', stoppedAt), 6000, 'a sees hung b gone');
  const hungC = await c.wait(isEv('gone', 'b', stoppedAt), 6000, 'c sees hung b gone');
  const hung = [(hungA['at'] as number) - stoppedAt, (hungC['at'] as number) - stoppedAt];
  console.log(`SIGSTOP detection: a ${hung[0]} ms (${hungA['reason']}), c ${hung[1]} ms (${hungC['reason']})`);
  assert.ok(Math.max(...hung) < 4000, `hung node seen gone after ${hung} ms`);
  const suspected = a.lines.find(isEv('suspected', 'b', stoppedAt));
  assert.ok(suspected, 'suspected before gone');
  const contAt = Date.now();
  b.kill('SIGCONT');
  await a.wait((l) => (l.ev === 'back' || l.ev === 'added') && l['route'] === 'b' && (l['at'] as number) >= contAt, 10_000, 'a sees b back');
  console.log(`SIGCONT: b back in a's view ${(a.lines.find((l) => (l.ev === 'back' || l.ev === 'added') && l['route'] === 'b' && (l['at'] as number) >= contAt)!['at'] as number) - contAt} ms after SIGCONT`);

  // an outsider with the wrong secret: rejected, counted, never a member
  const before = ((await a.stats())['stats'] as { authFailures: number }).authFailures;
  const x = spawnNode('x', { route: 'x', listen: { host: '127.0.0.1', port: 0 }, membership: { type: 'static', members, refreshMs: 200 } }, 'wrong-secret-9876543210');
  await x.wait((l) => l.ev === 'listening', 5000, 'outsider listening');
  await new Promise((r) => setTimeout(r, 800));
  const after = (await a.stats()) as unknown as { stats: { authFailures: number }; members: Array<{ route: string }> };
  console.log(`outsider: a counted ${after.stats.authFailures - before} authentication failures`);
  assert.ok(after.stats.authFailures > before);
  assert.ok(!after.members.some((m) => m.route === 'x'));
  assert.ok(!x.lines.some((l) => l.ev === 'added'));
});

test('multi-process multicast on loopback: discover, SIGKILL → gone, restart → back', async (t) => {
  const group = `239.255.${Math.floor(Math.random() * 250) + 1}.${Math.floor(Math.random() * 250) + 1}`;
  const port = await freeUdpPort();
  const why = await multicastOnLoopback(group, port);
  if (why) {
    t.skip(why);
    return;
  }
  const cfg = (route: string) => ({
    route,
    listen: { host: '127.0.0.1', port: 0 },
    membership: { type: 'multicast', address: group, port, interface: '127.0.0.1', intervalMs: 200 },
  });
  const a = spawnNode('a', cfg('a'));
  const b = spawnNode('b', cfg('b'));
  let c = spawnNode('c', cfg('c'));
  for (const [p, others] of [[a, ['b', 'c']], [b, ['a', 'c']], [c, ['a', 'b']]] as const) {
    for (const o of others) await p.wait(isEv('added', o), 10_000, `${p.name} sees ${o} by multicast`);
  }
  // another cluster name on the same group is ignored
  const other = spawnNode('o', { ...cfg('o'), clusterName: 'other' });
  await other.wait((l) => l.ev === 'listening', 5000, 'other cluster listening');
  const killedAt = Date.now();
  c.kill('SIGKILL');
  const goneA = await a.wait(isEv('gone', 'c'), 5000, 'a sees c gone');
  const goneB = await b.wait(isEv('gone', 'c'), 5000, 'b sees c gone');
  const kill = [(goneA['at'] as number) - killedAt, (goneB['at'] as number) - killedAt];
  console.log(`multicast SIGKILL detection: a ${kill[0]} ms, b ${kill[1]} ms`);
  assert.ok(Math.max(...kill) < 1000);
  await c.exited();
  const restartAt = Date.now();
  c = spawnNode('c2', cfg('c'));
  await a.wait(isEv('added', 'c', restartAt), 10_000, 'a sees restarted c');
  await b.wait(isEv('added', 'c', restartAt), 10_000, 'b sees restarted c');
  assert.ok(!a.lines.some((l) => l.ev === 'added' && l['route'] === 'o'), 'other cluster ignored');
  assert.ok(!other.lines.some((l) => l.ev === 'added'), 'other cluster sees nobody');
});
