import test from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { cookieValue, extractRoute, parseStickyNames, pathParamValue, queryParamValue, routeOf, unsignedValue } from '../../src/balancer/sticky.js';

const names = parseStickyNames('JSESSIONID|jsessionid', '.');

test('cookie parsing follows RFC 6265: exact name, not a substring (httpd can be fooled)', () => {
  assert.equal(cookieValue('XJSESSIONID=evil.tc9; JSESSIONID=abc.tc2', 'JSESSIONID'), 'abc.tc2');
  assert.equal(cookieValue('JSESSIONIDX=evil.tc9', 'JSESSIONID'), undefined);
  assert.equal(cookieValue('a=1;JSESSIONID="q.tc1"', 'JSESSIONID'), 'q.tc1');
  assert.equal(cookieValue(['a=1', 'JSESSIONID=z.tc3'], 'JSESSIONID'), 'z.tc3');
  assert.equal(cookieValue('foo=JSESSIONID=x.tc1', 'JSESSIONID'), undefined);
});

test('route is what follows the first separator', () => {
  assert.equal(routeOf('abc.tc1', '.'), 'tc1');
  assert.equal(routeOf('abc.tc1.x', '.'), 'tc1.x');
  assert.equal(routeOf('abc', '.'), undefined);
  assert.equal(routeOf('abc.', '.'), undefined);
  assert.equal(routeOf('abc_tc1', '_'), 'tc1');
});

test(';jsessionid= path parameter is read from the path only', () => {
  assert.equal(pathParamValue('/examples/counter;jsessionid=abc.tc2?x=1', 'jsessionid'), 'abc.tc2');
  assert.equal(pathParamValue('/a;jsessionid=abc.tc2/b', 'jsessionid'), 'abc.tc2');
  assert.equal(pathParamValue('/a?q=;jsessionid=abc.tc2', 'jsessionid'), undefined);
});

test('query parameter by exact name', () => {
  assert.equal(queryParamValue('/a?jsessionid=abc.tc3', 'jsessionid'), 'abc.tc3');
  assert.equal(queryParamValue('/a?xjsessionid=abc.tc3', 'jsessionid'), undefined);
});

test('extractRoute: cookie first, then path parameter, then query', () => {
  assert.deepEqual(extractRoute('JSESSIONID=s1.tc1', '/a;jsessionid=s2.tc2?jsessionid=s3.tc3', names), { sessionId: 's1.tc1', route: 'tc1', source: 'cookie' });
  assert.deepEqual(extractRoute(undefined, '/a;jsessionid=s2.tc2?jsessionid=s3.tc3', names), { sessionId: 's2.tc2', route: 'tc2', source: 'path' });
  assert.deepEqual(extractRoute('other=1', '/a?jsessionid=s3.tc3', names), { sessionId: 's3.tc3', route: 'tc3', source: 'query' });
  assert.equal(extractRoute('JSESSIONID=noroute', '/a', names), undefined);
});

test('a single stickysession name serves as both cookie and parameter name', () => {
  const n = parseStickyNames('JSESSIONID', '.');
  assert.equal(n.cookie, 'JSESSIONID');
  assert.equal(n.param, 'JSESSIONID');
});

test("express-session's signed cookie: the route is the id's, raw and URL-encoded; unsigned and Tomcat ids unchanged", () => {
  // cookie-signature's sign(): value + '.' + base64(HMAC-SHA256) without padding
  const sign = (v: string, secret: string) => `${v}.${createHmac('sha256', secret).update(v).digest('base64').replace(/=+$/, '')}`;
  const id = 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdl.tc1';
  const signed = 's:' + sign(id, 'keyboard cat');
  const n = parseStickyNames('connect.sid', '.');
  assert.deepEqual(extractRoute(`connect.sid=${encodeURIComponent(signed)}`, '/', n), { sessionId: id, route: 'tc1', source: 'cookie' });
  assert.deepEqual(extractRoute(`connect.sid=${signed}`, '/', n), { sessionId: id, route: 'tc1', source: 'cookie' });
  assert.deepEqual(extractRoute('connect.sid=s%3a' + encodeURIComponent(signed.slice(2)), '/', n)?.route, 'tc1', 'lower-case escape');
  assert.equal(unsignedValue(signed), id);
  assert.equal(unsignedValue('abc.tc1'), 'abc.tc1', 'unsigned id');
  assert.equal(unsignedValue('s%3Abad%E0.sig'), 's%3Abad%E0.sig', 'undecodable: left alone');
  // a signed id without a route has none (the signature is not a route)
  assert.equal(extractRoute(`connect.sid=${encodeURIComponent('s:' + sign('noroute', 'k'))}`, '/', n), undefined);
  assert.equal(routeOf(unsignedValue('s:abc.tc2.x.SIGNATURE'), '.'), 'tc2.x', 'route with dots (Tomcat style) keeps them');
});

test("@fastify/session's signed cookie (<id>.<signature>): routed on the id; Tomcat routes with dots are not mistaken for it", () => {
  const sig = createHmac('sha256', 'a secret').update('AAAAAAAAAAAAAAAAAAAAAAAA.tc2').digest('base64').replace(/=+$/, '');
  const n = parseStickyNames('sessionId', '.');
  const raw = `AAAAAAAAAAAAAAAAAAAAAAAA.tc2.${sig}`;
  assert.deepEqual(extractRoute(`sessionId=${encodeURIComponent(raw)}`, '/', n), { sessionId: 'AAAAAAAAAAAAAAAAAAAAAAAA.tc2', route: 'tc2', source: 'cookie' });
  assert.deepEqual(extractRoute(`sessionId=${raw}`, '/', n)?.route, 'tc2');
  assert.equal(unsignedValue('abc.tc1.x'), 'abc.tc1.x');
  assert.equal(routeOf(unsignedValue('abc.tc1.x'), '.'), 'tc1.x');
});
