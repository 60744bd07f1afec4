import test from 'node:test';
import assert from 'node:assert/strict';
import { CohortError } from '../../src/errors.js';
import { seededRandom } from '../../src/util/clock.js';
import { FrameDecoder, encodeFrame } from '../../src/cluster/codec.js';
import { deriveClusterKeys, deriveSessionKeys, FrameOpener, FrameSealer } from '../../src/cluster/crypto.js';
import { ClientHandshake, ServerHandshake } from '../../src/cluster/handshake.js';
import { decodeEnvelope, encodeEnvelope, packBatch, unpackBatch } from '../../src/cluster/envelope.js';

const N = 100_000;
const fixedNonce = { bytes: (n: number) => Buffer.alloc(n, 9) };
const keys = deriveClusterKeys('fuzz-secret-0123456789');

function only<T>(fn: () => T, counts: Map<string, number>): void {
  try {
    fn();
    counts.set('ok', (counts.get('ok') ?? 0) + 1);
  } catch (e) {
    if (!(e instanceof CohortError)) throw new Error(`untyped error escaped: ${String(e)}`, { cause: e });
    counts.set(e.code, (counts.get(e.code) ?? 0) + 1);
  }
}

function mutate(rnd: () => number, b: Buffer): Buffer {
  const out = Buffer.from(b);
  const k = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < k && out.length > 0; i++) {
    const op = rnd();
    const at = Math.floor(rnd() * out.length);
    if (op < 0.6) out[at] = Math.floor(rnd() * 256);
    else if (op < 0.8) return out.subarray(0, at);
    else return Buffer.concat([out, Buffer.from([Math.floor(rnd() * 256)])]);
  }
  return out;
}

function randomBytesOf(rnd: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

test(`fuzz: ${N} random and mutated inputs into decoder, handshake, frame opener and batch/envelope parser`, () => {
  const rnd = seededRandom(42);
  const counts = new Map<string, number>();
  const t0 = performance.now();
  // valid material to mutate
  const c = new ClientHandshake(keys);
  const s = new ServerHandshake(keys);
  const hello = c.hello();
  const r1 = s.receive(hello).reply!;
  const r2 = c.receive(r1).reply!;
  const r3 = s.receive(r2);
  const session = r3.session!;
  const validEnv = encodeEnvelope({ t: 'msg', id: 7, topic: 'sessions', ack: 'received', p: { a: [1, 'x', null] } });
  const k = deriveSessionKeys(keys, Buffer.alloc(32, 1), Buffer.alloc(32, 2));
  const batch = packBatch([validEnv, validEnv], 2 * (validEnv.length + 4));
  const sealed = new FrameSealer(k.clientToServer).seal(batch);
  const samples = [encodeFrame(hello), encodeFrame(r1), encodeFrame(r2), encodeFrame(r3.reply!), encodeFrame(sealed), encodeFrame(validEnv)];
  const decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
  let maxBuffered = 0;
  let decoderResets = 0;
  let decoderRef = decoder;
  for (let i = 0; i < N; i++) {
    const base = samples[i % samples.length]!;
    const input = rnd() < 0.3 ? randomBytesOf(rnd, Math.floor(rnd() * 96)) : mutate(rnd, base);
    // 1. decoder (stream): a failure poisons it; start a new one like a new connection would
    only(() => decoderRef.push(input), counts);
    if (rnd() < 0.05) only(() => decoderRef.push(encodeFrame(base)), counts);
    maxBuffered = Math.max(maxBuffered, decoderRef.bufferedBytes);
    let failed = false;
    try {
      decoderRef.push(Buffer.alloc(0));
    } catch {
      failed = true;
    }
    if (failed || i % 1000 === 0) {
      decoderRef = new FrameDecoder({ maxFrameBytes: 64 * 1024 });
      decoderResets++;
    }
    const body = input.subarray(Math.min(4, input.length));
    // 2. handshake, one role per input, fresh state (a new connection)
    const role = i % 3;
    if (role === 0) only(() => new ServerHandshake(keys, fixedNonce).receive(body), counts);
    else if (role === 1) {
      only(() => {
        const sh = new ServerHandshake(keys, fixedNonce);
        sh.receive(hello);
        return sh.receive(body);
      }, counts);
    } else {
      only(() => {
        const ch = new ClientHandshake(keys, fixedNonce);
        ch.hello();
        if (rnd() < 0.5) ch.receive(r1);
        return ch.receive(body);
      }, counts);
    }
    // 3. frame opener: a fresh one (sequence 0) gets to the authentication check; the long-lived one checks order
    only(() => new FrameOpener(k.clientToServer).open(body), counts);
    if (i % 10 === 0) only(() => session.opener.open(body), counts);
    // 4. envelope schema
    only(() => (rnd() < 0.5 ? unpackBatch(rnd() < 0.5 ? body : mutate(rnd, batch)).map(decodeEnvelope) : decodeEnvelope(mutate(rnd, validEnv))), counts);
  }
  const ms = performance.now() - t0;
  console.log(`fuzz: ${N} inputs × 4 targets in ${ms.toFixed(0)} ms; max decoder buffer ${maxBuffered} bytes; decoder resets ${decoderResets}; outcomes ${JSON.stringify(Object.fromEntries(counts))}`);
  assert.ok(maxBuffered <= 64 * 1024 + 4);
});
