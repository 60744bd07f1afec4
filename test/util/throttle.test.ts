import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/util/clock.js';
import { Throttle } from '../../src/util/throttle.js';

test('throttle: the first value at once, then at most one per interval, the latest of a burst', () => {
  const clock = new ManualClock(1000);
  const got: Array<[number, number]> = [];
  const t = new Throttle<number>(clock, 250, (v) => got.push([clock.now(), v]));
  t.push(1);
  t.push(2);
  t.push(3);
  assert.deepEqual(got, [[1000, 1]]);
  clock.advance(100);
  t.push(4);
  clock.advance(150);
  assert.deepEqual(got, [[1000, 1], [1250, 4]]);
  clock.advance(100);
  t.push(5);
  assert.deepEqual(got.at(-1), [1250, 4], 'within the interval of the last delivery: waits');
  clock.advance(150);
  assert.deepEqual(got.at(-1), [1500, 5]);
  clock.advance(1000);
  t.push(6);
  assert.deepEqual(got.at(-1), [2500, 6], 'after a quiet interval: at once');
  // Over a long burst: one delivery per 250 ms at most.
  const before = got.length;
  for (let i = 0; i < 100; i++) {
    t.push(100 + i);
    clock.advance(10);
  }
  clock.advance(250);
  const burst = got.slice(before);
  assert.ok(burst.length <= 5, `${burst.length} deliveries in 1.25 s`);
  for (let k = 1; k < burst.length; k++) assert.ok(burst[k]![0] - burst[k - 1]![0] >= 250);
  assert.equal(burst.at(-1)![1], 199, 'the latest value is delivered');
});

test('throttle: cancel drops what is pending; safe to call twice', () => {
  const clock = new ManualClock();
  const got: number[] = [];
  const t = new Throttle<number>(clock, 250, (v) => got.push(v));
  t.push(1);
  t.push(2);
  t.cancel();
  t.cancel();
  clock.advance(1000);
  assert.deepEqual(got, [1]);
});
