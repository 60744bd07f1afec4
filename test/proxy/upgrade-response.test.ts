import test from 'node:test';
import assert from 'node:assert/strict';
import { parseUpgradeResponse, MAX_UPGRADE_RESPONSE_HEAD } from '../../src/proxy/upgrade-response.js';

test('upgrade response: only 101 to websocket switches; anything else is a refusal to forward and close', () => {
  const b = (s: string) => Buffer.from(s, 'latin1');
  assert.deepEqual(parseUpgradeResponse(b('HTTP/1.1 101 Switching')), { kind: 'incomplete' });
  const sw = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n';
  assert.deepEqual(parseUpgradeResponse(b(`${sw}\x81\x00`)), { kind: 'switch', headBytes: sw.length });
  const h2c = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n';
  assert.deepEqual(parseUpgradeResponse(b(h2c)), { kind: 'refused', status: 101, headBytes: h2c.length, contentLength: undefined });
  const nf = 'HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n';
  assert.deepEqual(parseUpgradeResponse(b(`${nf}no socket`)), { kind: 'refused', status: 404, headBytes: nf.length, contentLength: 9 });
  assert.deepEqual(parseUpgradeResponse(b('HTTP/1.1 200 OK\r\nContent-Length: +9\r\n\r\n')).kind, 'refused');
  assert.equal((parseUpgradeResponse(b('HTTP/1.1 200 OK\r\nContent-Length: +9\r\n\r\n')) as { contentLength?: number }).contentLength, undefined);
  assert.equal(parseUpgradeResponse(b('SSH-2.0-OpenSSH\r\n\r\n')).kind, 'invalid');
  assert.equal(parseUpgradeResponse(b('HTTP/1.1 101 X\r\nno colon\r\n\r\n')).kind, 'invalid');
  assert.equal(parseUpgradeResponse(Buffer.alloc(MAX_UPGRADE_RESPONSE_HEAD + 1, 0x61)).kind, 'invalid');
});
