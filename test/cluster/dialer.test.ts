import test from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { ManualClock } from '../../src/util/clock.js';
import { Dialer, BLOCK_MS } from '../../src/cluster/dialer.js';
import type { NetFactory } from '../../src/cluster/net.js';

/** A NetFactory whose connects complete when the test says so; records cancellations. */
function fakeNet() {
  const attempts: { key: string; cancelled: boolean; finish: (err?: Error & { code?: string }) => void }[] = [];
  const net: NetFactory = {
    tls: false,
    listen: () => Promise.reject(new Error('not used')),
    connect: (addr, cb) => {
      const a = { key: `${addr.host}:${addr.port}`, cancelled: false, finish: (err?: Error & { code?: string }) => cb(err, err ? undefined : ({ fake: a.key } as unknown as Socket)) };
      attempts.push(a);
      return () => {
        a.cancelled = true;
      };
    },
  };
  return { net, attempts };
}

test('dialer: one attempt per address in flight; a refusal frees the address', () => {
  const clock = new ManualClock(0);
  const { net, attempts } = fakeNet();
  const d = new Dialer(net, clock, 1000);
  const fails: string[] = [];
  const addr = { host: '127.0.0.1', port: 7001 };
  d.dial(addr, false, () => {}, (err) => fails.push(err.code ?? ''));
  d.dial(addr, false, () => {}, () => {});
  assert.equal(attempts.length, 1);
  attempts[0]!.finish(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
  assert.deepEqual(fails, ['ECONNREFUSED']);
  d.dial(addr, false, () => {}, () => {});
  assert.equal(attempts.length, 2);
});

test('dialer: a connect that takes longer than the timeout is cancelled', () => {
  const clock = new ManualClock(0);
  const { net, attempts } = fakeNet();
  const d = new Dialer(net, clock, 500);
  d.dial({ host: '127.0.0.1', port: 7002 }, false, () => {}, () => {});
  clock.advance(499);
  assert.equal(attempts[0]!.cancelled, false);
  clock.advance(1);
  assert.equal(attempts[0]!.cancelled, true);
});

test('dialer: cancelAll aborts attempts still connecting but never a connected socket (its connection may still carry a leave)', () => {
  const clock = new ManualClock(0);
  const { net, attempts } = fakeNet();
  const d = new Dialer(net, clock, 1000);
  const got: string[] = [];
  d.dial({ host: '127.0.0.1', port: 7003 }, false, (_s, key) => got.push(key), () => {});
  d.dial({ host: '127.0.0.1', port: 7004 }, false, () => {}, () => {});
  attempts[0]!.finish();
  assert.deepEqual(got, ['127.0.0.1:7003']);
  // still counted as in flight until the node says the connection is identified or closed
  d.dial({ host: '127.0.0.1', port: 7003 }, false, () => {}, () => {});
  assert.equal(attempts.length, 2);
  d.cancelAll();
  assert.equal(attempts[0]!.cancelled, false, 'the connected socket was destroyed');
  assert.equal(attempts[1]!.cancelled, true);
});

test('dialer: a blocked address is left alone unless forced, and only for BLOCK_MS', () => {
  const clock = new ManualClock(0);
  const { net, attempts } = fakeNet();
  const d = new Dialer(net, clock, 1000);
  const addr = { host: '127.0.0.1', port: 7005 };
  d.block('127.0.0.1:7005');
  d.dial(addr, false, () => {}, () => {});
  assert.equal(attempts.length, 0);
  d.dial(addr, true, () => {}, () => {});
  assert.equal(attempts.length, 1);
  attempts[0]!.finish(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
  clock.advance(BLOCK_MS);
  d.dial(addr, false, () => {}, () => {});
  assert.equal(attempts.length, 2);
});
