import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createClusterNode, formatMembersTable, type ClusterNode, type ClusterErrorEvent } from '../../src/cluster/index.js';
import { startNode, addr, until, record, SECRET } from './helpers.js';

const nodes: ClusterNode[] = [];
async function node(route: string, opts: Record<string, unknown> = {}, deps: Record<string, unknown> = {}): Promise<ClusterNode> {
  const n = await startNode(route, opts, deps);
  nodes.push(n);
  return n;
}
test.afterEach(() => {
  for (const n of nodes.splice(0)) n.destroy();
});

test('channel: refuses to start without a secret, saying how to set one', () => {
  assert.throws(() => createClusterNode({ route: 'a' }, { env: {} }), (e: Error & { code?: string }) => e.code === 'COHORT_SECRET_MISSING' && /--secret-file FILE/.test(e.message) && /cluster\.secret/.test(e.message) && /COHORT_CLUSTER_SECRET/.test(e.message));
  assert.throws(() => createClusterNode({ route: 'a', secret: 'short' }), { code: 'COHORT_SECRET_WEAK' });
  assert.throws(() => createClusterNode({ route: 'a', bogus: 1, secret: SECRET }), { code: 'COHORT_CONFIG_INVALID' });
  const n = createClusterNode({ route: 'a', listen: { port: 0 } }, { env: { COHORT_CLUSTER_SECRET: SECRET } });
  n.destroy();
});

test('channel: two nodes discover each other (static), exchange all send modes and requests', async () => {
  const a = await node('a');
  const b = await node('b', { membership: { type: 'static', members: [addr(a)] } });
  const evA = record(a);
  await until(() => a.members().length === 1 && b.members().length === 1, 3000, 'discovery');
  assert.equal(a.members()[0]!.route, 'b');
  assert.equal(b.members()[0]!.route, 'a');
  const got: unknown[] = [];
  b.handle('t', async (from, p) => {
    got.push([from.route, p]);
    await new Promise((r) => setTimeout(r, 20));
    return { echo: p };
  });
  const bid = b.self.id;
  await a.send(bid, 't', 1);
  await a.send(bid, 't', 2, { mode: 'received' });
  const t0 = Date.now();
  await a.send(bid, 't', 3, { mode: 'applied' });
  assert.ok(Date.now() - t0 >= 15, 'applied waits for the handler');
  assert.deepEqual(await a.request(bid, 't', 'x'), { echo: 'x' });
  await until(() => got.length === 4);
  assert.deepEqual(got.slice(0, 3), [['a', 1], ['a', 2], ['a', 3]]);
  const r = await a.broadcast('t', 'all', { mode: 'received' });
  assert.deepEqual(r.ok, [bid]);
  // no handler: received/applied fail, request fails
  await assert.rejects(a.send(bid, 'nope', 1, { mode: 'received' }), { code: 'COHORT_REMOTE_FAILED' });
  await assert.rejects(a.request(bid, 'nope', 1), { code: 'COHORT_REMOTE_FAILED' });
  await assert.rejects(a.send('no-such-id', 't', 1), { code: 'COHORT_UNKNOWN_MEMBER' });
  // handler failure under applied
  b.handle('boom', () => {
    throw new Error('kaput');
  });
  await assert.rejects(a.send(bid, 'boom', 1, { mode: 'applied' }), /kaput/);
  // timeout
  b.handle('slow', () => new Promise((r) => setTimeout(r, 500)));
  await assert.rejects(a.send(bid, 'slow', 1, { mode: 'applied', timeoutMs: 50 }), { code: 'COHORT_SEND_TIMEOUT' });
  // a message larger than the frame limit is refused at the sender
  await assert.rejects(a.send(bid, 't', 'x'.repeat(17 * 1024 * 1024)), { code: 'COHORT_MESSAGE_TOO_LARGE' });
  // meta
  b.setMeta({ ready: 'true' });
  await until(() => a.members()[0]!.meta['ready'] === 'true');
  assert.ok(evA.some((e) => e.type === 'updated'));
  const c = a.counters()[bid]!;
  assert.ok(c.messagesOut >= 5 && c.bytesOut > 0 && c.messagesIn > 0);
  const table = formatMembersTable(a.snapshot());
  assert.match(table, /ROUTE/);
  assert.match(table, /\bb\b.*alive/);
  JSON.stringify(a.snapshot());
});

test('channel: graceful close is seen as gone (left) at once', async () => {
  const a = await node('a');
  const b = await node('b', { membership: { type: 'static', members: [addr(a)] } });
  await until(() => a.members().length === 1);
  const ev = record(a);
  await b.close();
  await until(() => ev.some((e) => e.type === 'gone'), 1000);
  assert.equal((ev.find((e) => e.type === 'gone') as { reason: string }).reason, 'left');
  await b.close(); // twice is fine
});

test('channel: destroyed peer (port refuses) is gone fast', async () => {
  const a = await node('a');
  const b = await node('b', { membership: { type: 'static', members: [addr(a)] } });
  await until(() => a.members().length === 1);
  const ev = record(a);
  const t0 = performance.now();
  b.destroy();
  await until(() => ev.some((e) => e.type === 'gone'), 2000);
  const ms = performance.now() - t0;
  console.log(`in-process: destroyed peer gone after ${ms.toFixed(1)} ms (${(ev.find((e) => e.type === 'gone') as { reason: string }).reason})`);
  // well before silence alone could even make it suspect (suspectAfterMs 900)
  assert.ok(ms < 850, `gone after ${ms.toFixed(0)} ms`);
});

test('channel: an outsider without the secret is rejected and counted; it never becomes a member', async () => {
  const a = await node('a');
  const errors: ClusterErrorEvent[] = [];
  a.onError((e) => errors.push(e));
  const outsider = createClusterNode({ route: 'x', listen: { host: '127.0.0.1', port: 0 }, secret: 'wrong-secret-0123456789', membership: { type: 'static', members: [addr(a)], refreshMs: 100 } });
  nodes.push(outsider);
  await outsider.start();
  await until(() => a.stats().authFailures >= 2, 3000, 'auth failures');
  assert.equal(a.members().length, 0);
  assert.equal(outsider.members().length, 0);
  assert.ok(errors.some((e) => e.code === 'COHORT_HANDSHAKE_AUTH'));
  // raw garbage too
  const s = net.connect(a.self.channelAddress.port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  const before = a.stats().authFailures;
  s.write(Buffer.from([0, 0, 0, 38, ...Buffer.alloc(38, 7)]));
  await until(() => a.stats().authFailures > before, 2000);
  await until(() => s.destroyed || s.readableEnded, 2000, 'garbage connection closed');
  s.destroy();
});

test('channel: a second node with the same route is refused with a clear error on both sides', async () => {
  const a = await node('a');
  const errsA: ClusterErrorEvent[] = [];
  a.onError((e) => errsA.push(e));
  const dup = await node('a', { membership: { type: 'static', members: [addr(a)] } });
  const errsDup: ClusterErrorEvent[] = [];
  dup.onError((e) => errsDup.push(e));
  await until(() => errsA.some((e) => e.code === 'COHORT_ROUTE_CONFLICT') && errsDup.some((e) => e.code === 'COHORT_ROUTE_CONFLICT'), 3000, 'conflict errors');
  assert.match(errsDup.find((e) => e.code === 'COHORT_ROUTE_CONFLICT')!.message, /route "a" is already used/);
  assert.equal(a.members().length, 0);
  assert.equal(dup.members().length, 0);
});

test('channel: a node of another cluster name is ignored', async () => {
  const a = await node('a');
  const o = await node('o', { clusterName: 'other', membership: { type: 'static', members: [addr(a)], refreshMs: 100 } });
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(a.members().length, 0);
  assert.equal(o.members().length, 0);
  assert.equal(a.stats().authFailures, 0);
});

test('channel: dns membership verifies every address over the channel; a DNS answer alone never makes a member', async () => {
  const a = await node('a');
  const b = await node('b');
  // the fake DNS answers a, b and an address where nothing listens
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise((r) => dead.close(r));
  const answers = [a.self.channelAddress, b.self.channelAddress, { host: '127.0.0.1', port: deadPort }];
  let calls = 0;
  const c = await node('c', { membership: { type: 'dns', name: 'cohort.svc', intervalMs: 100 } }, { dnsResolver: async () => (calls++, answers) });
  await until(() => c.members().length === 2, 3000, 'dns discovery');
  assert.deepEqual(c.members().map((m) => m.route).sort(), ['a', 'b']);
  assert.ok(calls >= 1);
});

test('channel: a stuck peer cannot exhaust memory: queue bounded, messages dropped and counted, peer suspected', async () => {
  const a = await node('a', { limits: { maxQueueBytes: 256 * 1024 } });
  const b = await node('b', { membership: { type: 'static', members: [addr(a)] } });
  await until(() => a.members().length === 1);
  const ev = record(a);
  const bid = b.self.id;
  // stop b from reading: pause its sockets
  for (const s of (b as unknown as { conns: Set<{ socket: net.Socket }> }).conns) s.socket.pause();
  const big = 'x'.repeat(16 * 1024);
  let dropped = 0;
  const sends: Promise<void>[] = [];
  for (let i = 0; i < 400; i++) sends.push(a.send(bid, 't', big).catch((e: { code?: string }) => void (e.code === 'COHORT_QUEUE_FULL' && dropped++)));
  await Promise.all(sends);
  assert.ok(dropped > 0, 'some messages dropped');
  // b does not read, so it cannot answer probes either: after suspicion it may already be confirmed gone
  const c = a.counters()[bid];
  if (c) assert.equal(c.dropped, dropped);
  assert.equal(a.stats().dropped, dropped);
  assert.ok(ev.some((e) => e.type === 'suspected' && e.reason === 'send queue full'));
});

test('channel: state transfer of 100k × 1 KiB sessions by chunked requests', async () => {
  const a = await node('a');
  const b = await node('b', { membership: { type: 'static', members: [addr(a)] } });
  await until(() => b.members().length === 1);
  const value = 'v'.repeat(1024 - 40);
  const N = 100_000;
  const CHUNK = 2000;
  a.handle('sessions.get', (_from, p) => {
    const start = (p as { start: number }).start;
    const out: Array<[string, string]> = [];
    for (let i = start; i < Math.min(N, start + CHUNK); i++) out.push([`s${i}`.padEnd(32, '0'), value]);
    return { sessions: out, next: start + CHUNK < N ? start + CHUNK : null };
  });
  const t0 = performance.now();
  let next: number | null = 0;
  let count = 0;
  let bytes = 0;
  while (next !== null) {
    const r = (await b.request(a.self.id, 'sessions.get', { start: next }, { timeoutMs: 10_000 })) as { sessions: Array<[string, string]>; next: number | null };
    count += r.sessions.length;
    bytes += r.sessions.length * 1024;
    next = r.next;
  }
  const ms = performance.now() - t0;
  console.log(`state transfer: ${count} sessions (${(bytes / 1048576).toFixed(0)} MiB) in ${ms.toFixed(0)} ms`);
  assert.equal(count, N);
  // the 5 s target is measured by the benchmark (docs/sessions.md), not asserted here: a loaded CI machine is no measure
});

test('channel: 20k async messages arrive in order', async () => {
  const a = await node('a');
  const b = await node('b', { membership: { type: 'static', members: [addr(a)] } });
  await until(() => b.members().length === 1);
  const seen: number[] = [];
  a.handle('seq', (_f, p) => void seen.push(p as number));
  const t0 = performance.now();
  const ps: Promise<void>[] = [];
  for (let i = 0; i < 20_000; i++) ps.push(b.send(a.self.id, 'seq', i));
  await Promise.all(ps);
  await until(() => seen.length === 20_000, 10_000);
  console.log(`20000 async messages in ${(performance.now() - t0).toFixed(0)} ms`);
  assert.ok(seen.every((v, i) => v === i));
});

test('channel: config errors name the key path; a custom membership service registers by name on the node', async () => {
  assert.throws(() => createClusterNode({ route: 'a', secret: SECRET, membership: { type: 'static', memebrs: [] } }), (e: Error) => /cluster\.membership/.test(e.message));
  assert.throws(() => createClusterNode({ route: 'a b', secret: SECRET }), (e: Error) => /cluster\.route/.test(e.message));
  const a = await node('a');
  const b = createClusterNode({ route: 'b', listen: { host: '127.0.0.1', port: 0 }, secret: SECRET, membership: { type: 'fixed', target: addr(a) } });
  nodes.push(b);
  b.registry.register('fixed', (cfg: { target: string }) => ({
    type: 'fixed',
    start: async (sink) => sink.candidates([{ host: '127.0.0.1', port: Number(cfg.target.split(':')[1]) }], 'fixed'),
    close: () => {},
  }));
  await b.start();
  await until(() => b.members().length === 1 && a.members().length === 1, 3000, 'custom discovery');
  const c = createClusterNode({ route: 'c', listen: { host: '127.0.0.1', port: 0 }, secret: SECRET, membership: { type: 'nope' } });
  await assert.rejects(c.start(), { code: 'COHORT_MEMBERSHIP_UNKNOWN' });
});

test('channel: a forged frame on a live connection closes that connection and is counted; membership is untouched', async () => {
  const a = await node('a');
  const b = await node('b', { membership: { type: 'static', members: [addr(a)] } });
  await until(() => a.members().length === 1 && b.members().length === 1);
  const evA = record(a);
  const bid = b.self.id;
  // write a well-formed frame with a bad tag on b's outgoing connection, as an on-path attacker would
  const out = [...(b as unknown as { conns: Set<{ role: string; peerId?: string; socket: net.Socket }> }).conns].find((c) => c.role === 'client' && c.peerId === a.self.id)!;
  const forged = Buffer.alloc(4 + 8 + 40 + 16, 0);
  forged.writeUInt32BE(8 + 40 + 16, 0);
  forged.writeBigUInt64BE(999n, 4);
  out.socket.write(forged);
  await until(() => (a.counters()[bid]?.authFailures ?? 0) === 1, 2000, 'auth failure counted on the peer');
  assert.equal(a.stats().authFailures, 1);
  a.handle('ping', () => 'pong');
  await until(() => b.members().some((m) => m.state === 'alive'), 2000);
  assert.equal(await b.request(a.self.id, 'ping', null), 'pong');
  assert.deepEqual(evA.filter((e) => e.member.id === bid).map((e) => `${e.type}:${'reason' in e ? e.reason : ''}`), [], 'a reports nothing about b');
});
