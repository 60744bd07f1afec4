import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clearReplyCodec, clearRequestCodec, Topic } from '../../src/sessions/replication/wire.js';
import { CLEAR_TOPIC, clearEverywhere } from '../../src/sessions/replication/cluster-clear.js';
import { SessionErrorCode } from '../../src/sessions/errors.js';
import { MemoryHub } from './helpers/memory-cluster.js';
import type { JsonValue } from '../../src/cluster/types.js';

const badMessage = (e: unknown): boolean => (e as { code?: string }).code === SessionErrorCode.BadMessage && /sessions\.clear/.test((e as Error).message);

test('sessions.clear is a Topic with a request and a reply codec that validate what arrives', () => {
  assert.equal(Topic.Clear, 'sessions.clear');
  assert.equal(CLEAR_TOPIC, Topic.Clear);
  assert.equal(clearRequestCodec.topic, Topic.Clear);
  assert.equal(clearReplyCodec.topic, Topic.Clear);
  assert.deepEqual(clearRequestCodec.encode({}), {});
  assert.deepEqual(clearRequestCodec.decode({}), {});
  assert.throws(() => clearRequestCodec.decode([]), badMessage);
  assert.throws(() => clearRequestCodec.decode(null), badMessage);
  assert.deepEqual(clearReplyCodec.encode({ n: 3 }), { n: 3 });
  assert.deepEqual(clearReplyCodec.decode(JSON.parse(JSON.stringify(clearReplyCodec.encode({ n: 7 })))), { n: 7 });
  const bads: JsonValue[] = [{}, { n: '3' }, { n: -1 }, { n: null }, [], 'n'];
  for (const bad of bads) assert.throws(() => clearReplyCodec.decode(bad), badMessage, JSON.stringify(bad));
});

test('clearEverywhere adds the members\' counts; a member answering a malformed reply is listed as failed', async () => {
  const hub = new MemoryHub();
  const [a, b, c] = [hub.channel('r1'), hub.channel('r2'), hub.channel('r3')];
  b.handle(CLEAR_TOPIC, (_from, p) => {
    clearRequestCodec.decode(p);
    return clearReplyCodec.encode({ n: 4 });
  });
  c.handle(CLEAR_TOPIC, () => ({ n: 'many' }));
  for (const ch of [a, b, c]) await ch.start();
  try {
    const r = await clearEverywhere(a, a.members(), async () => 2, 1_000);
    assert.equal(r.destroyed, 6);
    assert.deepEqual(Object.keys(r.failed), [c.self.id]);
    assert.match(r.failed[c.self.id]!, /sessions\.clear: bad field n/);
  } finally {
    for (const ch of [a, b, c]) ch.destroy();
  }
});
