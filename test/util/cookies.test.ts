import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findCookie } from '../../src/util/cookies.js';
import { readCookie } from '../../src/sessions/http/cookie.js';
import { cookieValue } from '../../src/balancer/sticky.js';

test('findCookie matches the name exactly, first match wins', () => {
  assert.equal(findCookie('XJSESSIONID=bad; JSESSIONID=good', 'JSESSIONID'), 'good');
  assert.equal(findCookie('JSESSIONIDX=evil; JSESSIONID=good', 'JSESSIONID'), 'good');
  assert.equal(findCookie('JSESSIONIDX=evil', 'JSESSIONID'), undefined);
  assert.equal(findCookie('a=1; a=2', 'a'), '1');
  assert.equal(findCookie('ab=1; a=2', 'a'), '2');
  assert.equal(findCookie('foo=JSESSIONID=x.tc1', 'JSESSIONID'), undefined);
});

test('findCookie trims whitespace around names and values and unquotes a quoted value', () => {
  assert.equal(findCookie('  a = 1 ;\tb=\t2\t', 'b'), '2');
  assert.equal(findCookie('a = 1', 'a'), '1');
  assert.equal(findCookie('a=1;JSESSIONID="q.tc1"', 'JSESSIONID'), 'q.tc1');
  assert.equal(findCookie('a="', 'a'), '"');
  assert.equal(findCookie('a=', 'a'), '');
  assert.equal(findCookie('a=x=y', 'a'), 'x=y');
});

test('findCookie skips pairs without "=" and empty names, and reads several headers in order', () => {
  assert.equal(findCookie('a; =x; b=2', 'a'), undefined);
  assert.equal(findCookie('a; b=2', 'b'), '2');
  assert.equal(findCookie('=x', ''), undefined);
  assert.equal(findCookie(undefined, 'a'), undefined);
  assert.equal(findCookie('', 'a'), undefined);
  assert.equal(findCookie(['a=1', 'JSESSIONID=z.tc3'], 'JSESSIONID'), 'z.tc3');
  assert.equal(findCookie(['JSESSIONID=first', 'JSESSIONID=second'], 'JSESSIONID'), 'first');
  assert.equal(findCookie([], 'a'), undefined);
});

test('the sessions, balancer and manager readers are the one parser', () => {
  assert.equal(cookieValue, findCookie);
  const headers = ['XJSESSIONID=bad; JSESSIONID="good"', ' cohort_manager = abc ; x=1', 'a;b=;c=3'];
  for (const h of headers) {
    for (const name of ['JSESSIONID', 'cohort_manager', 'b', 'c', 'x', 'a']) {
      assert.equal(readCookie(h, name), findCookie(h, name), `${name} in ${h}`);
    }
  }
});
