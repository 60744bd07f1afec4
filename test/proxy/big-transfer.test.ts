/**
 * Bodies stream both ways with bounded memory (issue 2, behaviour 8): an
 * upload and a download of 1 GiB (256 MiB with COHORT_BIG=0; ~7 s on 2 cores) pass through the
 * balancer while the process RSS (client, balancer and member all live here)
 * grows by less than 200 MB. Data is generated, never allocated whole.
 * Throughput is printed (a figure for the report, not an assertion).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startBackend, startBalancer, type Backend, type RunningBalancer } from '../helpers/backends.js';

const SIZE = process.env.COHORT_BIG === '0' ? 256 * 1024 * 1024 : 1024 * 1024 * 1024;
const RSS_BUDGET = 200 * 1024 * 1024;

let member: Backend;
let bal: RunningBalancer;
before(async () => {
  member = await startBackend('tc1');
  bal = await startBalancer({ balancers: [{ name: 'b', members: [{ url: member.url, route: 'tc1' }] }] });
});
after(async () => {
  await bal.close();
  await member.close();
});

/** Samples RSS every 50 ms while `fn` runs; returns the peak growth over the starting RSS. */
async function peakRssGrowth<T>(fn: () => Promise<T>): Promise<{ result: T; growth: number; ms: number }> {
  global.gc?.();
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
  const t0 = performance.now();
  try {
    const result = await fn();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, growth: peak - base, ms: performance.now() - t0 };
  } finally {
    clearInterval(timer);
  }
}

function report(t: { diagnostic(s: string): void }, what: string, ms: number, growth: number): void {
  const mibs = SIZE / 1048576 / (ms / 1000);
  t.diagnostic(`${what}: ${SIZE / 1048576} MiB in ${(ms / 1000).toFixed(2)} s = ${mibs.toFixed(0)} MiB/s; peak RSS growth ${(growth / 1048576).toFixed(1)} MiB`);
}

test(`download of ${SIZE / 1048576} MiB streams through with bounded memory`, { timeout: 120_000 }, async (t) => {
  const { result, growth, ms } = await peakRssGrowth(
    () =>
      new Promise<number>((resolve, reject) => {
        http.get(`${bal.url}/bytes/${SIZE}`, { agent: false }, (res) => {
          assert.equal(res.statusCode, 200);
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(n));
          res.on('error', reject);
        }).on('error', reject);
      }),
  );
  report(t, 'download', ms, growth);
  assert.equal(result, SIZE);
  assert.ok(growth < RSS_BUDGET, `RSS grew ${(growth / 1048576).toFixed(0)} MiB`);
});

test(`upload of ${SIZE / 1048576} MiB streams through with bounded memory`, { timeout: 120_000 }, async (t) => {
  const { result, growth, ms } = await peakRssGrowth(
    () =>
      new Promise<string>((resolve, reject) => {
        const req = http.request(`${bal.url}/sink`, { method: 'PUT', agent: false, headers: { 'content-length': SIZE } }, (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(`${res.statusCode} ${b}`));
        });
        req.on('error', reject);
        const block = Buffer.alloc(256 * 1024, 0x62);
        let left = SIZE;
        const pump = () => {
          while (left > 0) {
            const c = left >= block.length ? block : block.subarray(0, left);
            left -= c.length;
            if (!req.write(c)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      }),
  );
  report(t, 'upload', ms, growth);
  assert.equal(result, `200 tc1 got ${SIZE}\n`);
  assert.ok(growth < RSS_BUDGET, `RSS grew ${(growth / 1048576).toFixed(0)} MiB`);
});
