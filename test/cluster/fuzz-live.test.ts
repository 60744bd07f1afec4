/**
 * Fuzzed cluster frames against a live node (issue 7, "Hostile cluster
 * traffic"): a real ClusterNode on a real TCP port with a legitimate peer,
 * and a raw client built from the project's own codec, handshake, crypto and
 * envelope modules.
 *
 *  (a) Outsider: random and mutated bytes before authentication, one
 *      connection each. Every connection is closed; the node counts each as an
 *      authentication failure, a version refusal (a handshake message of another
 *      protocol version) or an aborted handshake, exactly as a local
 *      replay of the same bytes through FrameDecoder + ServerHandshake predicts.
 *  (b) Insider: a real authenticated handshake with the shared secret, then
 *      sealed frames whose plaintext is fuzzed (random bytes, truncated
 *      batches, wrong envelope types, huge record lengths), oversized frame
 *      headers, unsealed and tampered frames — before and after saying hello.
 *      Each closes only that connection, with one protocol error or one
 *      authentication failure counted.
 *
 * Throughout, the legitimate peer stays alive and messages keep flowing both
 * ways, and nothing reaches the process as an uncaught error.
 *
 * Seeded: the seed is printed; rerun with COHORT_FUZZ_SEED=<seed> to reproduce.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { seededRandom } from '../../src/util/clock.js';
import type { ClusterNode, ClusterErrorEvent, Envelope } from '../../src/cluster/index.js';
import { FrameDecoder, encodeFrame } from '../../src/cluster/codec.js';
import { deriveClusterKeys, deriveSessionKeys, FrameSealer, type ClusterKeys } from '../../src/cluster/crypto.js';
import { ClientHandshake, ProtocolVersionError, ServerHandshake, type SecureSession } from '../../src/cluster/handshake.js';
import { decodeEnvelope, encodeEnvelope, packBatch, unpackBatch } from '../../src/cluster/envelope.js';
import { startNode, addr, until, SECRET } from './helpers.js';

const OUTSIDER_CONNECTIONS = 200;
const INSIDER_CONNECTIONS = 200;
const MAX_FRAME = 256 * 1024;
// A fixed default keeps CI reproducible; COHORT_FUZZ_SEED=random (or a number) explores other inputs.
const SEED_ENV = process.env['COHORT_FUZZ_SEED'];
const SEED = SEED_ENV === undefined ? 20261126 : SEED_ENV === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(SEED_ENV);
const WAIT_MS = 10_000;

type Rnd = () => number;

function bytes(rnd: Rnd, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

function pick<T>(rnd: Rnd, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

/** 1–4 byte flips, a truncation or an appended byte. */
function mutate(rnd: Rnd, b: Buffer): Buffer {
  const out = Buffer.from(b);
  const k = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < k && out.length > 0; i++) {
    const op = rnd();
    const at = Math.floor(rnd() * out.length);
    if (op < 0.6) out[at] = out[at]! ^ (1 + Math.floor(rnd() * 255));
    else if (op < 0.8) return out.subarray(0, at);
    else return Buffer.concat([out, Buffer.from([Math.floor(rnd() * 256)])]);
  }
  return out;
}

function batchOf(...envs: Buffer[]): Buffer {
  return packBatch(envs, envs.reduce((n, e) => n + e.length + 4, 0));
}

/** A raw TCP client that splits what the node sends into frames. */
class RawClient {
  readonly decoder = new FrameDecoder({ maxFrameBytes: 1 << 24 });
  readonly frames: Buffer[] = [];
  closed = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      for (const f of this.decoder.push(d)) this.frames.push(f);
    });
    // The node resetting the connection is an expected outcome here.
    socket.on('error', () => undefined);
    socket.on('close', () => void (this.closed = true));
  }

  static connect(port: number): Promise<RawClient> {
    const s = net.connect(port, '127.0.0.1');
    const c = new RawClient(s);
    return new Promise((res, rej) => {
      s.once('connect', () => res(c));
      s.once('error', rej);
    });
  }

  write(b: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(b);
  }

  async nextFrame(what: string): Promise<Buffer> {
    await until(() => this.frames.length > 0 || this.closed, WAIT_MS, what);
    const f = this.frames.shift();
    if (!f) throw new Error(`connection closed while waiting for ${what}`);
    return f;
  }

  /** The real client side of the secret handshake; resolves with the session's sealer and opener. */
  async handshake(keys: ClusterKeys): Promise<SecureSession> {
    const hs = new ClientHandshake(keys);
    this.write(encodeFrame(hs.hello()));
    this.write(encodeFrame(hs.receive(await this.nextFrame('the challenge')).reply!));
    const done = hs.receive(await this.nextFrame("the node's proof"));
    assert.ok(done.session, 'handshake completed');
    return done.session;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * What the node must do with `input` sent by an unauthenticated client that
 * then half-closes: the same decoder and server handshake, run locally.
 * 'auth': a frame or handshake message fails (counted as authFailures);
 * 'version': a handshake message of another protocol version (counted as versionRefused);
 * 'aborted': nothing failed before EOF (counted as handshakeAborted).
 */
function predictOutsider(input: Buffer, keys: ClusterKeys): 'auth' | 'version' | 'aborted' {
  const dec = new FrameDecoder({ maxFrameBytes: MAX_FRAME });
  const hs = new ServerHandshake(keys);
  try {
    for (const f of dec.push(input)) {
      // a completed handshake is impossible without the node's nonce; treat it as a test bug
      if (hs.receive(f).session) throw new Error('fuzz input completed a handshake');
    }
  } catch (err) {
    if ((err as Error).message === 'fuzz input completed a handshake') throw err;
    return err instanceof ProtocolVersionError ? 'version' : 'auth';
  }
  return 'aborted';
}

/** Whether the node must close an authenticated connection with a protocol error on this plaintext. */
function protocolViolation(plain: Buffer, identified: boolean): boolean {
  let envs: Envelope[];
  try {
    envs = unpackBatch(plain).map(decodeEnvelope);
  } catch {
    return true;
  }
  const first = envs[0]!;
  // Before hello only hello/refuse/leave are understood; after it, a second hello is refused.
  if (!identified) return !['hello', 'refuse', 'leave'].includes(first.t);
  return first.t === 'hello';
}

function helloOf(member: { id: string; route: string; port: number }): Buffer {
  return encodeEnvelope({ t: 'hello', member: { id: member.id, route: member.route, incarnation: 0, clusterName: 'cohort', channelAddress: { host: '127.0.0.1', port: member.port }, startTime: Date.now(), meta: {} } });
}

/** Envelopes that are valid JSON but not a valid envelope (or not valid here). */
function wrongEnvelope(rnd: Rnd, identified: boolean, hello: Buffer): Buffer {
  const options: unknown[] = [
    { t: 'bogus' },
    { t: 'msg', id: 1, topic: 't', ack: 'none', p: 1, extra: true },
    { t: 'msg', id: -1, topic: 't', ack: 'none', p: 1 },
    { t: 'msg', id: 1, topic: 'x'.repeat(300), ack: 'none', p: 1 },
    { t: 'msg', id: 1, topic: 't', ack: 'maybe', p: 1 },
    { t: 'hb', inc: 'one' },
    { t: 'ack', id: 1.5, ok: true },
    { t: 'meta', inc: 0, meta: { k: 7 } },
    { t: 'hello', member: { id: '' } },
    { t: 'hello', member: { id: 'x', route: 'y', incarnation: 0, clusterName: 'cohort', channelAddress: { host: 'h', port: 70000 }, startTime: 0, meta: {} } },
    [],
    null,
    'hello',
    42,
    { __proto__: { t: 'hello' } },
    { constructor: { prototype: { polluted: true } }, t: 'leave' },
  ];
  if (!identified) {
    // well-formed, but not before hello
    options.push({ t: 'hb', inc: 1 }, { t: 'msg', id: 1, topic: 't', ack: 'received', p: { a: 1 } }, { t: 'req', id: 2, topic: 't', p: null }, { t: 'ack', id: 3, ok: true });
  } else {
    options.push('second-hello');
  }
  const o = pick(rnd, options);
  if (o === 'second-hello') return hello;
  return Buffer.from(JSON.stringify(o) ?? 'undefined');
}

interface InsiderCase {
  readonly kind: string;
  readonly identified: boolean;
  readonly expect: 'auth' | 'protocol';
  /** Raw bytes to write after the handshake (and hello), given this connection's sealer. */
  readonly build: (sealer: FrameSealer) => Buffer;
}

function insiderCase(rnd: Rnd, identified: boolean, hello: Buffer, keys: ClusterKeys): InsiderCase {
  const valid = encodeEnvelope({ t: 'msg', id: 7, topic: 'fuzz', ack: 'none', p: { a: [1, 'x', null] } });
  const sealed = (plain: Buffer) => (s: FrameSealer) => encodeFrame(s.seal(plain));
  const protocol = (kind: string, gen: () => Buffer): InsiderCase => {
    for (let i = 0; i < 1000; i++) {
      const plain = gen();
      if (protocolViolation(plain, identified)) return { kind, identified, expect: 'protocol', build: sealed(plain) };
    }
    throw new Error(`could not generate a ${kind} case`);
  };
  const kinds = ['random-plaintext', 'mutated-batch', 'truncated-batch', 'wrong-envelope', 'huge-record', 'huge-frame', 'unsealed', 'tampered', 'skipped-sequence', 'wrong-key'];
  const kind = pick(rnd, kinds);
  switch (kind) {
    case 'random-plaintext':
      return protocol(kind, () => bytes(rnd, Math.floor(rnd() * 512)));
    case 'mutated-batch':
      return protocol(kind, () => mutate(rnd, batchOf(valid, valid)));
    case 'truncated-batch':
      return protocol(kind, () => {
        const b = batchOf(...Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => valid));
        return b.subarray(0, Math.floor(rnd() * b.length));
      });
    case 'wrong-envelope':
      return protocol(kind, () => batchOf(wrongEnvelope(rnd, identified, hello)));
    case 'huge-record':
      return protocol(kind, () => {
        const b = batchOf(valid);
        b.writeUInt32BE(pick(rnd, [0xffffffff, 0x7fffffff, MAX_FRAME * 2, valid.length + 1 + Math.floor(rnd() * 1000)]), 0);
        return b;
      });
    case 'huge-frame': {
      // A header announcing more than the node accepts: refused before a byte of body is buffered.
      const len = MAX_FRAME + 1 + Math.floor(rnd() * (0xffffffff - MAX_FRAME - 1));
      const head = Buffer.alloc(4);
      head.writeUInt32BE(len, 0);
      const tail = bytes(rnd, Math.floor(rnd() * 64));
      return { kind, identified, expect: identified ? 'protocol' : 'auth', build: () => Buffer.concat([head, tail]) };
    }
    case 'unsealed':
      // A perfectly valid batch, sent in the clear: the opener reads garbage as sequence and tag.
      return { kind, identified, expect: 'auth', build: () => encodeFrame(pick(rnd, [batchOf(valid), batchOf(valid, valid), bytes(rnd, Math.floor(rnd() * 23))])) };
    case 'tampered':
      return {
        kind, identified, expect: 'auth', build: (s) => {
          const body = s.seal(batchOf(valid));
          const at = Math.floor(rnd() * body.length);
          body[at] = body[at]! ^ (1 << Math.floor(rnd() * 8));
          return encodeFrame(body);
        },
      };
    case 'skipped-sequence':
      return {
        kind, identified, expect: 'auth', build: (s) => {
          const skip = 1 + Math.floor(rnd() * 3);
          for (let i = 0; i < skip; i++) s.seal(Buffer.alloc(1));
          return encodeFrame(s.seal(batchOf(valid)));
        },
      };
    default: {
      // Sealed under another connection's key (right secret, other nonces): fails authentication.
      const other = deriveSessionKeys(keys, bytes(rnd, 32), bytes(rnd, 32));
      return {
        kind, identified, expect: 'auth', build: (s) => {
          const o = new FrameSealer(other.clientToServer);
          // keep the sequence the node expects, so only the key is wrong
          const pre = s.seal(Buffer.alloc(0)).readBigUInt64BE(0);
          for (let i = 0n; i < pre; i++) o.seal(Buffer.alloc(0));
          return encodeFrame(o.seal(batchOf(valid)));
        },
      };
    }
  }
}

test(`fuzz (live node): ${OUTSIDER_CONNECTIONS} outsider and ${INSIDER_CONNECTIONS} authenticated connections with fuzzed frames; each closed and counted, the real peer unaffected`, { timeout: 120_000 }, async (t) => {
  console.log(`fuzz-live: seed ${SEED} (rerun with COHORT_FUZZ_SEED=${SEED})`);
  const rnd = seededRandom(SEED);
  const keys = deriveClusterKeys(SECRET);
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => void uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const nodes: ClusterNode[] = [];
  const clients: RawClient[] = [];
  const servers: net.Server[] = [];
  const silentSockets: net.Socket[] = [];
  let flow: NodeJS.Timeout | undefined;
  t.after(async () => {
    if (flow) clearInterval(flow);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    for (const c of clients) c.destroy();
    for (const s of silentSockets) s.destroy();
    for (const n of nodes) n.destroy();
    for (const s of servers) await new Promise((r) => s.close(r));
  });

  const a = await startNode('a', { limits: { maxFrameBytes: MAX_FRAME } });
  nodes.push(a);
  const b = await startNode('b', { membership: { type: 'static', members: [addr(a)] } });
  nodes.push(b);
  await until(() => a.members().some((m) => m.route === 'b' && m.state === 'alive') && b.members().some((m) => m.route === 'a' && m.state === 'alive'), WAIT_MS, 'a and b to see each other');
  const errors: ClusterErrorEvent[] = [];
  a.onError((e) => void errors.push(e));
  a.handle('flow', (_from, p) => p);
  b.handle('flow', (_from, p) => p);

  // Messages keep flowing between the legitimate pair during the whole run.
  let flowOk = 0;
  const flowFailures: string[] = [];
  let inFlight = false;
  flow = setInterval(() => {
    if (inFlight) return;
    inFlight = true;
    const i = flowOk;
    Promise.all([a.request(b.self.id, 'flow', i, { timeoutMs: 5000 }), b.send(a.self.id, 'flow', i, { mode: 'applied', timeoutMs: 5000 })])
      .then(([echo]) => {
        if (echo !== i) flowFailures.push(`echo ${String(echo)} for ${i}`);
        flowOk++;
      }, (err: Error) => void flowFailures.push(err.message))
      .finally(() => void (inFlight = false));
  }, 20);
  const port = a.self.channelAddress.port;
  const s0 = a.stats();

  // ---- (a) outsiders: fuzzed bytes before authentication ----
  const valid = new ClientHandshake(keys);
  const helloFrame = encodeFrame(valid.hello());
  const seeds = [
    helloFrame,
    Buffer.concat([helloFrame, encodeFrame(Buffer.concat([Buffer.from('COHO'), Buffer.from([1, 3]), Buffer.alloc(32, 7)]))]),
    encodeFrame(Buffer.concat([Buffer.from('COHO'), Buffer.from([1, 3]), Buffer.alloc(32, 7)])),
    encodeFrame(new FrameSealer(deriveSessionKeys(keys, Buffer.alloc(32, 1), Buffer.alloc(32, 2)).clientToServer).seal(batchOf(encodeEnvelope({ t: 'hb', inc: 0 })))),
  ];
  let predictedAuth = 0;
  let predictedAborted = 0;
  let predictedVersion = 0;
  let outsiderBytes = 0;
  for (let i = 0; i < OUTSIDER_CONNECTIONS; i++) {
    const r = rnd();
    let input: Buffer;
    if (r < 0.3) input = bytes(rnd, Math.floor(rnd() * 128));
    else if (r < 0.4) {
      // a huge announced length, with or without a body
      const head = Buffer.alloc(4);
      head.writeUInt32BE(MAX_FRAME + 1 + Math.floor(rnd() * (0xffffffff - MAX_FRAME - 1)), 0);
      input = Buffer.concat([head, bytes(rnd, Math.floor(rnd() * 64))]);
    } else if (r < 0.5) input = encodeFrame(bytes(rnd, Math.floor(rnd() * 256)));
    else input = mutate(rnd, pick(rnd, seeds));
    const expect = predictOutsider(input, keys);
    if (expect === 'auth') predictedAuth++;
    else if (expect === 'version') predictedVersion++;
    else predictedAborted++;
    outsiderBytes += input.length;
    const before = a.stats();
    const c = await RawClient.connect(port);
    clients.push(c);
    c.write(input);
    c.socket.end();
    try {
      await until(() => c.closed, WAIT_MS, 'the node to close the outsider connection');
      if (expect === 'auth') await until(() => a.stats().authFailures > before.authFailures, WAIT_MS, 'the authentication failure to be counted');
      if (expect === 'version') await until(() => a.stats().versionRefused > before.versionRefused, WAIT_MS, 'the version refusal to be counted');
    } catch (err) {
      throw new Error(`seed ${SEED}, outsider #${i} (${input.toString('hex').slice(0, 200)}), expected ${expect}: ${(err as Error).message}`);
    }
    clients.pop();
  }
  await until(() => a.stats().connections <= 2 || a.stats().handshakeAborted - s0.handshakeAborted >= predictedAborted, WAIT_MS, 'outsider connections gone');
  const s1 = a.stats();
  const outsider = {
    connections: OUTSIDER_CONNECTIONS,
    bytes: outsiderBytes,
    authFailures: s1.authFailures - s0.authFailures,
    handshakeAborted: s1.handshakeAborted - s0.handshakeAborted,
    protocolErrors: s1.protocolErrors - s0.protocolErrors,
    versionRefused: s1.versionRefused - s0.versionRefused,
  };
  console.log(`fuzz-live (a) outsiders: ${JSON.stringify(outsider)}; predicted auth ${predictedAuth}, aborted ${predictedAborted}`);
  assert.equal(outsider.authFailures, predictedAuth, `seed ${SEED}: authentication failures`);
  assert.equal(outsider.versionRefused, predictedVersion, `seed ${SEED}: version refusals`);
  // Aborted handshakes are at least ours (a reconnect between a and b under load would add one).
  assert.ok(outsider.handshakeAborted >= predictedAborted, `seed ${SEED}: aborted ${outsider.handshakeAborted} < predicted ${predictedAborted}`);
  assert.equal(outsider.protocolErrors, 0, `seed ${SEED}: no outsider gets as far as a protocol error`);
  assert.ok(!a.members().some((m) => m.route !== 'b'), 'no outsider became a member');

  // ---- (b) insiders: authenticated with the secret, then fuzzed sealed frames ----
  // The insider's advertised channel address accepts and never answers, so the node's dials to it just wait.
  const silent = net.createServer((s) => void silentSockets.push(s));
  servers.push(silent);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = (silent.address() as net.AddressInfo).port;
  const byKind = new Map<string, number>();
  let expectAuth = 0;
  let expectProtocol = 0;
  let fuzzFrames = 0;
  for (let i = 0; i < INSIDER_CONNECTIONS; i++) {
    const identified = rnd() < 0.3;
    // A fresh identity per connection: one fake member's suspicion or departure never touches another case.
    const hello = helloOf({ id: `fuzz-insider-${i}`, route: `fuzz-${i}`, port: silentPort });
    const kase = insiderCase(rnd, identified, hello, keys);
    const label = `${kase.kind}${identified ? ' (after hello)' : ''}`;
    byKind.set(label, (byKind.get(label) ?? 0) + 1);
    const c = await RawClient.connect(port);
    clients.push(c);
    try {
      const session = await c.handshake(keys);
      if (identified) {
        c.write(encodeFrame(session.sealer.seal(batchOf(hello))));
        const reply = unpackBatch(session.opener.open(await c.nextFrame("the node's hello"))).map(decodeEnvelope);
        assert.equal(reply[0]?.t, 'hello', `seed ${SEED}: the node answers the insider's hello`);
      }
      const before = a.stats();
      c.write(kase.build(session.sealer));
      fuzzFrames++;
      await until(() => c.closed, WAIT_MS, 'the node to close the insider connection');
      if (kase.expect === 'auth') {
        expectAuth++;
        await until(() => a.stats().authFailures === before.authFailures + 1, WAIT_MS, 'one authentication failure counted');
      } else {
        expectProtocol++;
        await until(() => a.stats().protocolErrors === before.protocolErrors + 1, WAIT_MS, 'one protocol error counted');
      }
    } catch (err) {
      throw new Error(`seed ${SEED}, insider #${i} ${label}, expected ${kase.expect}: ${(err as Error).message}`);
    }
    clients.pop();
  }
  const s2 = a.stats();
  const insider = {
    connections: INSIDER_CONNECTIONS,
    fuzzedFrames: fuzzFrames,
    authFailures: s2.authFailures - s1.authFailures,
    protocolErrors: s2.protocolErrors - s1.protocolErrors,
  };
  console.log(`fuzz-live (b) insiders: ${JSON.stringify(insider)}; expected auth ${expectAuth}, protocol ${expectProtocol}; cases ${JSON.stringify(Object.fromEntries([...byKind].sort()))}`);
  assert.equal(insider.authFailures, expectAuth, `seed ${SEED}: authentication failures`);
  assert.equal(insider.protocolErrors, expectProtocol, `seed ${SEED}: protocol errors`);

  // One error event per closed-and-counted connection, all with stable codes.
  const codes = new Map<string, number>();
  for (const e of errors.filter((x) => x.remote !== undefined)) codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
  console.log(`fuzz-live: error events by code ${JSON.stringify(Object.fromEntries([...codes].sort()))}`);
  const connErrors = errors.filter((e) => e.remote !== undefined);
  assert.equal(connErrors.length, outsider.authFailures + outsider.versionRefused + insider.authFailures + insider.protocolErrors, `seed ${SEED}: one error event per counted connection`);
  for (const code of codes.keys()) assert.match(code, /^COHORT_[A-Z_]+$/);
  assert.ok(errors.every((e) => e.peer !== b.self.id), 'no error was charged to the legitimate peer');

  // The legitimate peer is alive on both sides and traffic still flows.
  assert.ok(a.members().some((m) => m.id === b.self.id && m.state === 'alive'), 'a still sees b alive');
  assert.ok(b.members().some((m) => m.id === a.self.id && m.state === 'alive'), 'b still sees a alive');
  const flowed = flowOk;
  await until(() => flowOk >= flowed + 3, WAIT_MS, 'messages to keep flowing between a and b');
  assert.deepEqual(await a.request(b.self.id, 'flow', 'after'), 'after');
  assert.deepEqual(flowFailures, [], `seed ${SEED}: messages between a and b failed`);
  console.log(`fuzz-live: ${flowOk} request/applied-send round trips between a and b during the run, none failed`);
  assert.deepEqual(uncaught, [], 'no uncaught exception or unhandled rejection');
});
