/** The acknowledgement quorum of sync commits (ack-quorum.ts), as a table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ackOutcome, type AckPolicy, type AckTally } from '../../src/sessions/replication/ack-quorum.js';

const cases: Array<[AckPolicy, AckTally, ReturnType<typeof ackOutcome>]> = [
  // no holder (a node alone): nothing to wait for
  ['all', { targets: 0, acked: 0, failed: 0 }, 'acknowledged'],
  ['one', { targets: 0, acked: 0, failed: 0 }, 'acknowledged'],
  // all: wait for every answer; one success is enough not to fail
  ['all', { targets: 3, acked: 0, failed: 0 }, 'pending'],
  ['all', { targets: 3, acked: 2, failed: 0 }, 'pending'],
  ['all', { targets: 3, acked: 1, failed: 1 }, 'pending'],
  ['all', { targets: 3, acked: 3, failed: 0 }, 'acknowledged'],
  ['all', { targets: 3, acked: 1, failed: 2 }, 'acknowledged'],
  ['all', { targets: 3, acked: 0, failed: 3 }, 'failed'],
  // one: the first holder that applied it settles the commit
  ['one', { targets: 3, acked: 0, failed: 0 }, 'pending'],
  ['one', { targets: 3, acked: 1, failed: 0 }, 'acknowledged'],
  ['one', { targets: 3, acked: 0, failed: 2 }, 'pending'],
  ['one', { targets: 3, acked: 1, failed: 2 }, 'acknowledged'],
  ['one', { targets: 3, acked: 0, failed: 3 }, 'failed'],
  ['one', { targets: 1, acked: 0, failed: 1 }, 'failed'],
];

test('ack quorum: all waits for every holder, one for the first that applied; failed only when none did', () => {
  for (const [policy, tally, expected] of cases) {
    assert.equal(ackOutcome(tally, policy), expected, `${policy} ${JSON.stringify(tally)}`);
  }
});

test('ack quorum: once acknowledged or failed, later answers do not change the outcome under "all"', () => {
  // Answers arrive one by one: the outcome is pending until the last, then final.
  const seq: Array<'ok' | 'err'> = ['err', 'ok', 'err', 'ok'];
  let acked = 0;
  let failed = 0;
  const outcomes = seq.map((a) => {
    if (a === 'ok') acked++;
    else failed++;
    return ackOutcome({ targets: seq.length, acked, failed }, 'all');
  });
  assert.deepEqual(outcomes, ['pending', 'pending', 'pending', 'acknowledged']);
  acked = 0;
  failed = 0;
  assert.deepEqual(seq.map((a) => (a === 'ok' ? acked++ : failed++, ackOutcome({ targets: seq.length, acked, failed }, 'one'))), ['pending', 'acknowledged', 'acknowledged', 'acknowledged']);
});
