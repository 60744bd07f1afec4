/**
 * Failure classification and retry safety (issue 10): pure functions, one
 * table each. The engine's live tests (failure.test.ts, engine.test.ts) show
 * the same decisions against real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyFailure, failureAnswer, retrySafe, staleReplay, type RetryFacts } from '../../src/proxy/outcome.js';

test('classifyFailure: source, whether the member is down, whether a retry may help, whether the member saw the request', () => {
  const table: [code: string, source: string, marksDown: boolean, retryable: boolean, reachedMember: boolean][] = [
    ['ECONNREFUSED', 'connect', true, true, false],
    ['CONNECT_TIMEOUT', 'connect', true, true, false],
    ['EHOSTUNREACH', 'connect', true, true, false],
    ['ENOTFOUND', 'connect', true, true, false],
    ['ECONNRESET', 'reset', true, true, true],
    ['EPIPE', 'reset', true, true, true],
    ['HEADERS_TIMEOUT', 'timeout', true, true, true],
    ['BODY_TIMEOUT', 'timeout', false, false, true],
    ['COHORT_FAILONSTATUS', 'status', false, true, true],
    ['HPE_INVALID_CONSTANT', 'protocol', false, false, true],
    ['HPE_UNEXPECTED_CONTENT_LENGTH', 'protocol', false, false, true],
    ['CLIENT_BODY', 'client', false, false, true],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls', false, false, false],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls', false, false, false],
    ['SOMETHING_ELSE', 'internal', false, false, true],
  ];
  for (const [code, source, marksDown, retryable, reachedMember] of table) {
    const f = classifyFailure(code, 'm');
    assert.deepEqual({ source: f.source, marksDown: f.marksDown, retryable: f.retryable, reachedMember: f.reachedMember }, { source, marksDown, retryable, reachedMember }, code);
  }
});

test('retrySafe: only before any response byte, within maxattempts, with a replayable body, never repeating a non-idempotent request the member may have acted on', () => {
  const base: RetryFacts = { failure: classifyFailure('ECONNRESET', ''), responseStarted: false, attempts: 1, maxattempts: 1, hasBody: false, bodyReplayable: true, idempotent: true };
  const table: [name: string, change: Partial<RetryFacts>, safe: boolean][] = [
    ['GET reset', {}, true],
    ['response already started', { responseStarted: true }, false],
    ['attempts used up', { attempts: 2 }, false],
    ['maxattempts 0', { maxattempts: 0 }, false],
    ['POST with a body, reset (the member may have acted)', { hasBody: true, idempotent: false }, false],
    ['POST without a body, reset', { idempotent: false }, true],
    ['POST with a body, refused (nothing reached the member)', { failure: classifyFailure('ECONNREFUSED', ''), hasBody: true, idempotent: false }, true],
    ['PUT with a buffered body, reset', { hasBody: true, idempotent: true }, true],
    ['streamed body already sent', { hasBody: true, bodyReplayable: false }, false],
    ['malformed response', { failure: classifyFailure('HPE_INVALID_CONSTANT', '') }, false],
    ['failonstatus GET', { failure: classifyFailure('COHORT_FAILONSTATUS', '') }, true],
    ['failonstatus POST with a body', { failure: classifyFailure('COHORT_FAILONSTATUS', ''), hasBody: true, idempotent: false }, false],
    ['TLS verification failure', { failure: classifyFailure('DEPTH_ZERO_SELF_SIGNED_CERT', '') }, false],
  ];
  for (const [name, change, safe] of table) assert.equal(retrySafe({ ...base, ...change }), safe, name);
});

test('staleReplay: a reused keep-alive connection reset before any response byte is replayed once on a fresh one', () => {
  const base = { code: 'ECONNRESET', reused: true, responseBytes: 0, bodyReplayable: true, hasBody: false, idempotent: true, replayed: false };
  const table: [name: string, change: Partial<typeof base>, replay: boolean][] = [
    ['reused, reset, nothing received', {}, true],
    ['a fresh connection', { reused: false }, false],
    ['already replayed once', { replayed: true }, false],
    ['part of the response arrived', { responseBytes: 10 }, false],
    ['refused (not a stale connection)', { code: 'ECONNREFUSED' }, false],
    ['timeout (not a stale connection)', { code: 'HEADERS_TIMEOUT' }, false],
    ['POST with a body', { hasBody: true, idempotent: false }, false],
    ['PUT with a buffered body', { hasBody: true }, true],
    ['streamed body already sent', { hasBody: true, bodyReplayable: false }, false],
  ];
  for (const [name, change, replay] of table) assert.equal(staleReplay({ ...base, ...change }), replay, name);
});

test('failureAnswer: 503 + Retry-After when unreachable or failonstatus, 504 on timeouts, 400 for a bad client body, 502 otherwise', () => {
  const table: [code: string, status: number, retryAfter: boolean][] = [
    ['ECONNREFUSED', 503, true],
    ['COHORT_FAILONSTATUS', 503, true],
    ['CONNECT_TIMEOUT', 504, false],
    ['HEADERS_TIMEOUT', 504, false],
    ['BODY_TIMEOUT', 504, false],
    ['CLIENT_BODY', 400, false],
    ['ECONNRESET', 502, false],
    ['HPE_INVALID_CONSTANT', 502, false],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 502, false],
  ];
  for (const [code, status, retryAfter] of table) {
    const a = failureAnswer(classifyFailure(code, 'detail'), 'tc1', 503);
    assert.deepEqual([a.status, a.retryAfter], [status, retryAfter], code);
    assert.match(a.detail, /tc1|body/);
  }
});
