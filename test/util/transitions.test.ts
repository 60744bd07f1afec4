/** Guarded transitions (src/util/transitions.ts): allowed moves, one event per change, illegal moves refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { IllegalTransitionError, STATE_CHANNEL, StateMachine, transition, type StateChange } from '../../src/util/transitions.js';

type S = 'new' | 'running' | 'closed';

test('transitions: an allowed move changes the state and emits one event, to the sink and the diagnostics channel', () => {
  const sunk: StateChange<S>[] = [];
  const published: unknown[] = [];
  const onPublish = (m: unknown): void => void published.push(m);
  diagnostics.subscribe(STATE_CHANNEL, onPublish);
  try {
    const m = new StateMachine<S>('thing', 'new', (c) => sunk.push(c), () => 'a');
    m.transition(['new'], 'running');
    m.transition(['new', 'running'], 'closed');
    assert.equal(m.state, 'closed');
    assert.ok(m.is('closed') && !m.is('new', 'running'));
    const expected = [{ machine: 'thing', id: 'a', from: 'new', to: 'running' }, { machine: 'thing', id: 'a', from: 'running', to: 'closed' }];
    assert.deepEqual(sunk, expected);
    assert.deepEqual(published, expected);
  } finally {
    diagnostics.unsubscribe(STATE_CHANNEL, onPublish);
  }
});

test('transitions: a move from a state not listed throws COHORT_ILLEGAL_TRANSITION and changes nothing; tryTransition declines quietly', () => {
  const sunk: StateChange<S>[] = [];
  const m = new StateMachine<S>('thing', 'new', (c) => sunk.push(c));
  assert.throws(() => m.transition(['running'], 'closed'), (e: unknown) => e instanceof IllegalTransitionError && e.code === 'COHORT_ILLEGAL_TRANSITION' && /thing: illegal transition new -> closed/.test(e.message));
  assert.equal(m.state, 'new');
  assert.equal(m.tryTransition(['running'], 'closed'), false);
  assert.equal(m.state, 'new');
  assert.equal(m.tryTransition(['new'], 'running'), true);
  assert.deepEqual(sunk.map((c) => `${c.from}->${c.to}`), ['new->running']);
  // the function form, for a state held elsewhere
  assert.equal(transition<S>('f', 'running', ['running'], 'closed'), 'closed');
  assert.throws(() => transition<S>('f', 'closed', ['running'], 'new'), IllegalTransitionError);
});
