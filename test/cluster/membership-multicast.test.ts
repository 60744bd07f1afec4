import test from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type dgram from 'node:dgram';
import { ManualClock } from '../../src/util/clock.js';
import { deriveClusterKeys } from '../../src/cluster/crypto.js';
import { MulticastMembership, type MulticastMembershipConfig } from '../../src/cluster/membership-multicast.js';
import type { Address, DiscoverySink } from '../../src/cluster/membership.js';
import type { MemberInfo, MembershipEvent } from '../../src/cluster/types.js';
import type { ClusterNode } from '../../src/cluster/index.js';
import { startNode, until } from './helpers.js';

const config: MulticastMembershipConfig = { type: 'multicast', address: '228.0.0.4', port: 45564, intervalMs: 500, dropTimeMs: 3000, ttl: 1, loopback: true };

class FakeUdp extends EventEmitter {
  sent: Buffer[] = [];
  bind(_o: unknown, cb: () => void): this {
    cb();
    return this;
  }
  addMembership(): void {}
  setMulticastInterface(): void {}
  setMulticastTTL(): void {}
  setMulticastLoopback(): void {}
  unref(): this {
    return this;
  }
  close(): void {}
  send(buf: Buffer, _p: number, _a: string, cb: (e: Error | null) => void): void {
    this.sent.push(buf);
    cb(null);
  }
}

function member(id: string, clusterName = 'cohort', port = 5000): MemberInfo {
  return { id, route: id, incarnation: 0, clusterName, channelAddress: { host: '127.0.0.1', port }, startTime: 0, meta: {} };
}

function setup(id: string, secret: string | undefined, clusterName = 'cohort') {
  const clock = new ManualClock();
  const udp = new FakeUdp();
  const m = new MulticastMembership(config, { clock, self: () => member(id, clusterName), keys: secret ? deriveClusterKeys(secret) : undefined, deps: { createUdpSocket: () => udp as unknown as dgram.Socket } });
  const cands: Address[] = [];
  const evidence: string[] = [];
  const silence: (number | undefined)[] = [];
  const known = new Set<string>();
  const sink: DiscoverySink = { candidates: (a) => cands.push(...a), evidence: (i, _inc, s) => (evidence.push(i), silence.push(s)), isKnown: (i) => known.has(i), error: () => {} };
  return { clock, udp, m, cands, evidence, silence, known, sink };
}

const S = 'multicast-secret-0123456789';

test('multicast: authenticated announcement → candidate; known member → evidence; replay dropped', async () => {
  const a = setup('a', S);
  const b = setup('b', S);
  await a.m.start(a.sink);
  await b.m.start(b.sink);
  const d1 = a.udp.sent[0]!;
  b.udp.emit('message', d1);
  assert.deepEqual(b.cands, [{ host: '127.0.0.1', port: 5000 }]);
  b.known.add('a');
  b.udp.emit('message', d1); // replay of the same datagram
  assert.equal(b.m.rejected, 1);
  a.clock.advance(500);
  b.udp.emit('message', a.udp.sent[1]!);
  assert.deepEqual(b.evidence, ['a']);
  assert.deepEqual(b.silence, [3000], 'evidence counts only while the channel heard the member within dropTimeMs');
  a.m.close();
  b.m.close();
});

test('multicast: another cluster name is ignored (not counted); a wrong secret or tampering is rejected', async () => {
  const b = setup('b', S);
  await b.m.start(b.sink);
  const other = setup('o', S, 'other');
  await other.m.start(other.sink);
  b.udp.emit('message', other.udp.sent[0]!);
  assert.equal(b.cands.length, 0);
  assert.equal(b.m.rejected, 0);
  const wrong = setup('w', 'wrong-secret-0123456789');
  await wrong.m.start(wrong.sink);
  b.udp.emit('message', wrong.udp.sent[0]!);
  const tampered = Buffer.from(setup('t', S).m.encode());
  tampered[tampered.length - 20]! ^= 1;
  b.udp.emit('message', tampered);
  b.udp.emit('message', Buffer.from('garbage'));
  assert.equal(b.cands.length, 0);
  assert.equal(b.m.rejected, 3);
});

test('multicast: under TLS-only security (no secret) announcements are only hints: candidates, never evidence', async () => {
  const a = setup('a', undefined);
  const b = setup('b', undefined);
  await a.m.start(a.sink);
  await b.m.start(b.sink);
  b.udp.emit('message', a.udp.sent[0]!);
  assert.deepEqual(b.cands, [{ host: '127.0.0.1', port: 5000 }]);
  b.known.add('a');
  a.clock.advance(500);
  b.udp.emit('message', a.udp.sent[1]!);
  assert.deepEqual(b.evidence, [], 'an unsealed datagram could be forged: it must not keep a member alive');
  a.m.close();
  b.m.close();
});

/** A UDP "group" in memory: every socket's datagram reaches every other socket. */
class FakeBus {
  readonly sockets = new Set<FakeUdp>();
  socket(): dgram.Socket {
    const bus = this;
    const s = new (class extends FakeUdp {
      override send(buf: Buffer, _p: number, _a: string, cb: (e: Error | null) => void): void {
        for (const o of bus.sockets) if (o !== this) setImmediate(() => o.emit('message', Buffer.from(buf)));
        cb(null);
      }
      override close(): void {
        bus.sockets.delete(this);
      }
    })();
    this.sockets.add(s);
    return s as unknown as dgram.Socket;
  }
}

test('multicast: a member heard on multicast alone is suspected after dropTimeMs of channel silence (+ suspectAfterMs)', async () => {
  const bus = new FakeBus();
  const nodes: ClusterNode[] = [];
  try {
    const opts = { membership: { type: 'multicast', intervalMs: 100, dropTimeMs: 1500 }, timing: { suspectAfterMs: 500 } };
    const a = await startNode('a', opts, { createUdpSocket: () => bus.socket() });
    nodes.push(a);
    const b = await startNode('b', opts, { createUdpSocket: () => bus.socket() });
    nodes.push(b);
    await until(() => a.members().length === 1 && b.members().length === 1, 5000, 'multicast discovery');
    const events: (MembershipEvent & { at: number })[] = [];
    a.onMembership((e) => events.push({ ...e, at: Date.now() }));
    // a stops reading its connections: b's heartbeats no longer arrive over the channel, its datagrams still do
    const t0 = Date.now();
    for (const c of (a as unknown as { conns: Set<{ socket: { pause(): void } }> }).conns) c.socket.pause();
    // before, a member heard on multicast stayed alive forever: now it is suspected (1.5 s + 0.5 s here; generous for a loaded machine)
    await until(() => events.some((e) => e.type === 'suspected'), 15_000, 'b suspected by a');
    const suspected = events.find((e) => e.type === 'suspected')!;
    const after = suspected.at - t0;
    // without the multicast evidence b would be suspected after 500 ms; with it, not before the channel was silent 1500 ms
    assert.ok(after >= 1000, `suspected after ${after} ms: multicast evidence should have kept b alive at first`);
    assert.equal(suspected.member.route, 'b');
  } finally {
    for (const n of nodes) n.destroy();
  }
});
