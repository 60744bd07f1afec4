import test from 'node:test';
import assert from 'node:assert/strict';
import { deriveClusterKeys, deriveSessionKeys, FrameOpener, FrameSealer, sealDatagram, openDatagram } from '../../src/cluster/crypto.js';
import { ClientHandshake, ServerHandshake } from '../../src/cluster/handshake.js';

const keys = deriveClusterKeys('0123456789abcdef-test-secret');
const other = deriveClusterKeys('another-secret-of-enough-length');

function handshake(ck = keys, sk = keys) {
  const c = new ClientHandshake(ck);
  const s = new ServerHandshake(sk);
  const r1 = s.receive(c.hello());
  const r2 = c.receive(r1.reply!);
  const r3 = s.receive(r2.reply!);
  const r4 = c.receive(r3.reply!);
  return { client: r4.session!, server: r3.session! };
}

test('handshake: both sides holding the secret agree on keys', () => {
  const { client, server } = handshake();
  const sealed = client.sealer.seal(Buffer.from('ping'));
  assert.equal(server.opener.open(sealed).toString(), 'ping');
  assert.equal(client.opener.open(server.sealer.seal(Buffer.from('pong'))).toString(), 'pong');
});

test('handshake: a client without the secret is refused by the server', () => {
  assert.throws(() => handshake(other, keys), { code: 'COHORT_HANDSHAKE_AUTH', message: /client could not prove/ });
  const s2 = new ServerHandshake(keys);
  s2.receive(new ClientHandshake(other).hello());
  assert.throws(() => s2.receive(Buffer.concat([Buffer.from('COHO'), Buffer.from([1, 3]), Buffer.alloc(32)])), { code: 'COHORT_HANDSHAKE_AUTH' });
});

test('handshake: messages out of order are typed errors', () => {
  const s = new ServerHandshake(keys);
  assert.throws(() => s.receive(Buffer.concat([Buffer.from('COHO'), Buffer.from([1, 3]), Buffer.alloc(32)])), { code: 'COHORT_HANDSHAKE_STATE' });
  const c = new ClientHandshake(keys);
  assert.throws(() => c.receive(Buffer.alloc(38)), { code: 'COHORT_HANDSHAKE_STATE' });
});

test('handshake: a server without the secret is refused by the client', () => {
  // the server refuses the client first; a server that answered anyway with a forged proof is caught by the client
  const c = new ClientHandshake(keys);
  const s = new ServerHandshake(other);
  c.receive(s.receive(c.hello()).reply!);
  assert.throws(() => c.receive(Buffer.concat([Buffer.from('COHO'), Buffer.from([1, 4]), Buffer.alloc(32)])), { code: 'COHORT_HANDSHAKE_AUTH', message: /server could not prove/ });
});

test('frames: replayed, reordered and tampered frames fail', () => {
  const { client, server } = handshake();
  const f0 = client.sealer.seal(Buffer.from('a'));
  const f1 = client.sealer.seal(Buffer.from('b'));
  const f2 = client.sealer.seal(Buffer.from('c'));
  assert.throws(() => server.opener.open(f1), { code: 'COHORT_FRAME_REPLAY' });
  assert.equal(server.opener.open(f0).toString(), 'a');
  assert.throws(() => server.opener.open(f0), { code: 'COHORT_FRAME_REPLAY' });
  const bad = Buffer.from(f1);
  bad[bad.length - 1]! ^= 1;
  assert.throws(() => server.opener.open(bad), { code: 'COHORT_FRAME_AUTH' });
  assert.equal(server.opener.open(f1).toString(), 'b');
  assert.equal(server.opener.open(f2).toString(), 'c');
});

test('frames: a frame from another connection (other nonces) fails', () => {
  const a = handshake();
  const b = handshake();
  assert.throws(() => b.server.opener.open(a.client.sealer.seal(Buffer.from('x'))), { code: 'COHORT_FRAME_AUTH' });
});

test('frames: directions use different keys', () => {
  const k = deriveSessionKeys(keys, Buffer.alloc(32, 1), Buffer.alloc(32, 2));
  const sealed = new FrameSealer(k.clientToServer).seal(Buffer.from('x'));
  assert.throws(() => new FrameOpener(k.serverToClient).open(sealed), { code: 'COHORT_FRAME_AUTH' });
});

test('datagram: sealed with the cluster name as AAD', () => {
  const aad = Buffer.from('cohort');
  const d = sealDatagram(keys.datagram, aad, Buffer.from('hb'));
  assert.equal(openDatagram(keys.datagram, aad, d).toString(), 'hb');
  assert.throws(() => openDatagram(keys.datagram, Buffer.from('other'), d), { code: 'COHORT_DATAGRAM_AUTH' });
  assert.throws(() => openDatagram(other.datagram, aad, d), { code: 'COHORT_DATAGRAM_AUTH' });
});

test('secret: too short is refused with a typed error', () => {
  assert.throws(() => deriveClusterKeys('short'), { code: 'COHORT_SECRET_WEAK' });
});
