import test from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type dgram from 'node:dgram';
import { ManualClock } from '../../src/util/clock.js';
import { deriveClusterKeys } from '../../src/cluster/crypto.js';
import { MulticastMembership, type MulticastMembershipConfig } from '../../src/cluster/membership-multicast.js';
import type { Address, DiscoverySink } from '../../src/cluster/membership.js';
import type { MemberInfo } from '../../src/cluster/types.js';

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
  const known = new Set<string>();
  const sink: DiscoverySink = { candidates: (a) => cands.push(...a), evidence: (i) => evidence.push(i), isKnown: (i) => known.has(i), error: () => {} };
  return { clock, udp, m, cands, evidence, known, sink };
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
