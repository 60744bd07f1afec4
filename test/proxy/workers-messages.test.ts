import test from 'node:test';
import assert from 'node:assert/strict';
import { packFinished, unpackFinished } from '../../src/proxy/workers/messages.js';
import type { FinishedExchange } from '../../src/proxy/forward.js';

test('finished exchanges survive packing for the owner: every field, none and undefined kept apart', () => {
  const list: FinishedExchange[] = [
    { balancer: 'b', member: 'tc1', status: 200, durationMs: 1.25, upstreamMs: 0.75, attempts: 1 },
    { balancer: 'b', member: undefined, status: 503, durationMs: 0.1, upstreamMs: undefined, attempts: 0 },
    { balancer: 'other', member: 'tc1', status: 502, durationMs: 30_000, upstreamMs: 0, attempts: 2 },
  ];
  const packed = packFinished(list);
  assert.deepEqual(packed.names, ['b', 'tc1', 'other'], 'each string once');
  assert.equal(packed.rows.length, 18);
  const out: FinishedExchange[] = [];
  unpackFinished(JSON.parse(JSON.stringify(packed)), (e) => out.push(e));
  assert.deepEqual(out, list);
});
