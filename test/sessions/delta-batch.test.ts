/** Deltas committed in one event-loop turn travel as one message per peer, in commit order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settle, startCluster, stopAll, type TestNode } from './helpers/fixture.js';
import { Topic } from '../../src/sessions/replication/wire.js';
import { DeltaBatcher } from '../../src/sessions/replication/delta-batch.js';
import type { ClusterChannel, JsonValue, SendOptions } from '../../src/cluster/types.js';

test('commits of one turn: one sessions.delta message per peer carrying them in commit order; replicas apply all', async () => {
  const { hub, nodes } = await startCluster(3);
  const [a, b, c] = nodes as [TestNode, TestNode, TestNode];
  try {
    const list = Array.from({ length: 10 }, (_, i) => {
      const s = a.manager.create();
      s.attributes.i = i;
      return s;
    });
    const payloads: JsonValue[] = [];
    hub.hold = (m) => (m.topic === Topic.Delta && m.to === b.channel.self.id ? (payloads.push(m.payload), false) : false);
    const before = hub.sent.get(Topic.Delta) ?? 0;
    await Promise.all(list.map((s) => a.manager.commit(s)));
    // the same session twice in one turn: both deltas, in order, in one message
    list[0]!.attributes.i = 100;
    const p1 = a.manager.commit(list[0]!);
    list[0]!.attributes.i = 101;
    const p2 = a.manager.commit(list[0]!, { sync: true });
    await Promise.all([p1, p2]);
    await settle();
    assert.equal((hub.sent.get(Topic.Delta) ?? 0) - before, 4, 'two turns × two peers');
    assert.deepEqual(
      payloads.map((p) => (p as { d: unknown[] }).d.length),
      [10, 2],
    );
    const second = (payloads[1] as { d: Array<{ v: number }> }).d.map((d) => d.v);
    assert.deepEqual(second, [2, 3]);
    for (const n of [b, c]) {
      assert.equal(n.manager.versions().size, 10);
      assert.equal(n.manager.peek(list[0]!.id)!.rawAttributes.i, 101);
      assert.equal(n.manager.peek(list[0]!.id)!.version, 3);
    }
  } finally {
    stopAll(nodes);
  }
});

test('a batch holding a sync commit waits for the acknowledgement; a failed send rejects every commit of the batch', async () => {
  const sent: Array<{ to: string; n: number; mode: string | undefined }> = [];
  let fail = false;
  let ack!: () => void;
  const channel = {
    send(to: string, _topic: string, payload: JsonValue, o: SendOptions = {}): Promise<void> {
      sent.push({ to, n: (payload as { d: unknown[] }).d.length, mode: o.mode });
      if (fail) return Promise.reject(new Error('peer gone'));
      if (o.mode === 'applied') return new Promise<void>((r) => (ack = r));
      return Promise.resolve();
    },
  } as unknown as ClusterChannel;
  const queued: Array<() => void> = [];
  const batcher = new DeltaBatcher(channel, () => 1000, (fn) => void queued.push(fn));
  const d = (v: number) => ({ i: 'x', r: 'n1', b: v - 1, v });
  let doneAsync = false;
  let doneSync = false;
  void batcher.send('p1', d(1), false).then(() => (doneAsync = true));
  void batcher.send('p1', d(2), true).then(() => (doneSync = true));
  void batcher.send('p2', d(1), false);
  assert.equal(queued.length, 1, 'one flush scheduled per turn');
  queued.shift()!();
  assert.deepEqual(sent, [
    { to: 'p1', n: 2, mode: 'applied' },
    { to: 'p2', n: 1, mode: 'async' },
  ]);
  await settle();
  assert.equal(doneAsync || doneSync, false, 'waiting for the acknowledgement');
  ack();
  await settle();
  assert.equal(doneAsync && doneSync, true);
  fail = true;
  const r = batcher.send('p1', d(3), false);
  queued.shift()!();
  await assert.rejects(r, /peer gone/);
  assert.deepEqual([batcher.messages, batcher.deltas], [3, 4]);
});
