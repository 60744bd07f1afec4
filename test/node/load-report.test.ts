import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventLoopUtilizationSampler, loadfactorFromUtilization, LoadReporter, smoothUtilization } from '../../src/node/load-report.js';

test('loadfactor from utilization: spare capacity in 5 % steps times the ceiling, 1 at least', () => {
  const table: Array<[number, number, number]> = [
    // utilization, ceiling, loadfactor
    [0, 100, 100],
    [0.01, 100, 100],
    [0.03, 100, 95],
    [0.25, 100, 75],
    [0.5, 100, 50],
    [0.9, 100, 10],
    [0.99, 100, 1],
    [1, 100, 1],
    [0, 10, 10],
    [0.5, 10, 5],
    [0.95, 10, 1],
    [0.3, 1, 1],
    [-1, 100, 100],
    [7, 100, 1],
    [Number.NaN, 40, 40],
  ];
  for (const [u, ceiling, lf] of table) assert.equal(loadfactorFromUtilization(u, ceiling), lf, `u=${u} ceiling=${ceiling}`);
});

test('utilization is smoothed: the first sample as is, then an exponential moving average', () => {
  assert.equal(smoothUtilization(undefined, 0.8), 0.8);
  assert.equal(smoothUtilization(0.8, 0, 0.5), 0.4);
  assert.equal(smoothUtilization(0.4, 2, 0.5), 0.7, 'samples are clamped to 0..1');
});

test('LoadReporter: reports only when the loadfactor changes', () => {
  const samples = [0, 0.01, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0, 0, 0, 0, 0, 0, 0, 0];
  let i = 0;
  const r = new LoadReporter(100, () => samples[i++]!);
  const out = samples.map(() => r.sample());
  assert.equal(out[0], undefined, 'idle at start: the published 100 holds');
  assert.equal(out[1], undefined);
  assert.deepEqual(out[2], { loadfactor: 60, load: '0.40' }, 'half-way there after one busy sample');
  const lfs = out.filter((x) => x !== undefined).map((x) => x!.loadfactor);
  // Busy: down towards 20 (80 % busy); idle again: back up to 100; never the same twice in a row.
  assert.ok(lfs.includes(20), lfs.join(','));
  assert.equal(lfs.at(-1), 100);
  for (let k = 1; k < lfs.length; k++) assert.notEqual(lfs[k], lfs[k - 1]);
});

test('the event-loop sampler returns a utilization between 0 and 1', () => {
  const sample = eventLoopUtilizationSampler();
  const end = performance.now() + 20;
  while (performance.now() < end) { /* busy */ }
  const u = sample();
  assert.ok(u >= 0 && u <= 1, String(u));
});
