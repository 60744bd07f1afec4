import test from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget } from '../../src/balancer/retry-budget.js';

test('retry budget: min retries always allowed, then at most percent of requests', () => {
  const rb = new RetryBudget(20, 3);
  let now = 0;
  assert.equal(rb.tryRetry(now), true);
  assert.equal(rb.tryRetry(now), true);
  assert.equal(rb.tryRetry(now), true);
  assert.equal(rb.tryRetry(now), false, 'no traffic: only the minimum');
  for (let i = 0; i < 100; i++) rb.recordRequest(now);
  let allowed = 0;
  for (let i = 0; i < 100; i++) if (rb.tryRetry(now)) allowed++;
  assert.equal(allowed, 17, '20 of 100 requests, 3 already used');
  now += 11_000;
  assert.equal(rb.tryRetry(now), true, 'the window slides');
});
