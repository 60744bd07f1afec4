/**
 * Hostile cluster traffic on a real node's channel (issue 7): replayed
 * frames, a whole recorded session replayed, frames sealed by an outsider,
 * oversized frames, connections that never read. Each is rejected, the
 * connection closed and the event counted; the node keeps working and its
 * memory stays bounded.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { ClusterNode, ClusterErrorEvent, Envelope } from '../../src/cluster/index.js';
import { deriveClusterKeys, encodeFrame, FrameSealer } from '../../src/cluster/index.js';
import { Connection, type CloseReason } from '../../src/cluster/connection.js';
import { deriveSessionKeys } from '../../src/cluster/crypto.js';
import { systemClock } from '../../src/util/clock.js';
import { startNode, addr, until, SECRET } from './helpers.js';

const nodes: ClusterNode[] = [];
const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
async function node(route: string, opts: Record<string, unknown> = {}): Promise<ClusterNode> {
  const n = await startNode(route, opts);
  nodes.push(n);
  return n;
}
test.afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const n of nodes.splice(0)) n.destroy();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

function errorsOf(n: ClusterNode): ClusterErrorEvent[] {
  const out: ClusterErrorEvent[] = [];
  n.onError((e) => out.push(e));
  return out;
}

/** A listener that accepts and never answers: the address a raw member advertises, so the node's dial back just waits. */
async function silentAddress(): Promise<{ host: string; port: number }> {
  const s = net.createServer((c) => sockets.push(c));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { host: '127.0.0.1', port: (s.address() as net.AddressInfo).port };
}

function connectRaw(n: ClusterNode): Promise<net.Socket> {
  const s = net.connect(n.self.channelAddress.port, '127.0.0.1');
  sockets.push(s);
  // Resets by the node are the expected outcome here.
  s.on('error', () => undefined);
  return new Promise((r) => s.once('connect', () => r(s)));
}

/** Resolves when the node has closed `s` (reads and discards whatever it still sends). */
function closedByNode(s: net.Socket, ms = 2000): Promise<void> {
  s.resume();
  return until(() => s.destroyed || s.readableEnded, ms, 'connection closed by the node');
}

interface Insider {
  readonly socket: net.Socket;
  /** Every buffer this side wrote, handshake included, in order. */
  readonly written: Buffer[];
  readonly received: Envelope[];
  closed: CloseReason | undefined;
  readonly conn: Connection;
}

/** A raw member holding the secret: does the handshake with the real Connection code and says hello. */
async function insider(n: ClusterNode, route = 'raw'): Promise<Insider> {
  const socket = await connectRaw(n);
  const written: Buffer[] = [];
  const write = socket.write.bind(socket) as (b: Buffer) => boolean;
  (socket as { write: (b: Buffer) => boolean }).write = (b: Buffer) => (written.push(Buffer.from(b)), write(b));
  const channelAddress = await silentAddress();
  const me: Insider = {
    socket,
    written,
    received: [],
    closed: undefined,
    conn: new Connection({
      role: 'client', socket, security: { kind: 'secret', keys: deriveClusterKeys(SECRET) }, clock: systemClock, maxFrameBytes: 1 << 24, handshakeTimeoutMs: 2000,
      handlers: {
        onOpen: (c) => c.send({ t: 'hello', member: { id: `id-${route}`, route, incarnation: 0, clusterName: 'cohort', channelAddress, startTime: Date.now(), meta: {} } }),
        onEnvelope: (_c, env) => void me.received.push(env),
        onClose: (_c, reason) => void (me.closed = reason),
      },
    }),
  };
  me.conn.start();
  await until(() => me.received.some((e) => e.t === 'hello'), 3000, 'hello from the node');
  return me;
}

test('hostile: a replayed frame on the same connection is rejected (sequence), the connection closed and counted', async () => {
  const a = await node('a');
  const errors = errorsOf(a);
  const raw = await insider(a);
  assert.equal(a.members().length, 1, 'the insider is a member');
  const before = a.stats().authFailures;
  // The last thing written is the sealed hello frame (sequence 0): send it again.
  raw.socket.write(raw.written.at(-1)!);
  await until(() => a.stats().authFailures > before, 2000, 'replay counted');
  await until(() => raw.closed !== undefined, 2000, 'connection closed by the node');
  assert.ok(errors.some((e) => e.code === 'COHORT_FRAME_REPLAY'), JSON.stringify(errors.map((e) => e.code)));
  // Still serving: a member can join and talk.
  const b = await node('b', { membership: { type: 'static', members: [addr(a)] } });
  await until(() => b.members().some((m) => m.route === 'a'), 3000, 'b joins after the replay');
});

test('hostile: a whole recorded session replayed on a new connection fails the handshake (fresh server nonce) and is counted', async () => {
  const a = await node('a');
  const errors = errorsOf(a);
  const raw = await insider(a);
  const recorded = Buffer.concat(raw.written);
  raw.conn.close('local');
  const before = a.stats().authFailures;
  const s = await connectRaw(a);
  s.write(recorded);
  await until(() => a.stats().authFailures > before, 2000, 'replayed handshake counted');
  await closedByNode(s);
  assert.ok(errors.some((e) => e.code === 'COHORT_HANDSHAKE_AUTH'));
  assert.ok(!a.members().some((m) => m.route === 'raw' && m.state === 'alive' && a.stats().connections > 1));
});

test('hostile: a frame sealed by an outsider (other key) inside an established connection is rejected, closed, counted', async () => {
  const a = await node('a');
  const errors = errorsOf(a);
  const raw = await insider(a);
  const before = a.stats().authFailures;
  const other = deriveSessionKeys(deriveClusterKeys('an-outsider-secret-0123456789'), Buffer.alloc(32, 1), Buffer.alloc(32, 2));
  // Sequence 1 is the next one the node expects, so only the authentication can fail.
  const sealer = new FrameSealer(other.clientToServer);
  sealer.seal(Buffer.from('{}'));
  raw.socket.write(encodeFrame(sealer.seal(Buffer.from(JSON.stringify({ t: 'hb', inc: 99 })))));
  await until(() => a.stats().authFailures > before, 2000, 'forged frame counted');
  await until(() => raw.closed !== undefined, 2000, 'closed');
  assert.ok(errors.some((e) => e.code === 'COHORT_FRAME_AUTH'), JSON.stringify(errors.map((e) => e.code)));
});

test('hostile: oversized frames are refused from the header alone, before and after authentication', async () => {
  const a = await node('a', { limits: { maxFrameBytes: 64 * 1024 } });
  const errors = errorsOf(a);
  const heap0 = process.memoryUsage().heapUsed;
  // Outsider: a 4 GiB announcement, then bytes that would be its body.
  const s = await connectRaw(a);
  const before = a.stats().authFailures;
  s.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  s.write(Buffer.alloc(256 * 1024, 1));
  await until(() => a.stats().authFailures > before, 2000, 'oversized pre-auth frame counted');
  await closedByNode(s);
  // Insider: a frame over the limit on an authenticated connection is a protocol error.
  const raw = await insider(a);
  const p0 = a.stats().protocolErrors;
  raw.socket.write(Buffer.from([0x00, 0x10, 0x00, 0x00]));
  await until(() => a.stats().protocolErrors > p0, 2000, 'oversized frame from a member counted');
  await until(() => raw.closed !== undefined, 2000, 'closed');
  assert.ok(errors.filter((e) => e.code === 'COHORT_FRAME_TOO_LARGE').length >= 2);
  assert.ok(process.memoryUsage().heapUsed - heap0 < 32 * 1024 * 1024);
});

test('hostile: 200 connections that never read or write are closed at the handshake timeout, counted, nothing left', async () => {
  const a = await node('a', { timing: { handshakeTimeoutMs: 300 } });
  const before = a.stats().handshakeAborted;
  const socks = await Promise.all(Array.from({ length: 200 }, () => connectRaw(a)));
  for (const s of socks) s.pause();
  await until(() => a.stats().connections === 0, 5000, 'all idle outsiders closed');
  assert.ok(a.stats().handshakeAborted - before >= 200, `handshakeAborted ${a.stats().handshakeAborted - before}`);
  // And one that says hello but never reads the challenge (nor anything else): same end.
  const s = await connectRaw(a);
  s.pause();
  s.write(encodeFrame(Buffer.concat([Buffer.from('COHO'), Buffer.from([1, 1]), Buffer.alloc(32, 5)])));
  await until(() => a.stats().connections === 0, 3000, 'hello-only outsider closed');
});

test('hostile: a member that sends requests and never reads the answers: the node bounds what it buffers for it, closes and counts', async () => {
  const LIMIT = 256 * 1024;
  const a = await node('a', { limits: { maxQueueBytes: LIMIT } });
  const errors = errorsOf(a);
  a.handle('echo', (_from, p) => p);
  const raw = await insider(a);
  raw.socket.pause();
  // 2,000 requests of 16 KiB each: 32 MiB of answers that nobody reads.
  const payload = 'x'.repeat(16 * 1024);
  const conns = (a as unknown as { conns: Set<Connection> }).conns;
  let maxBuffered = 0;
  const sample = setInterval(() => {
    for (const c of conns) maxBuffered = Math.max(maxBuffered, c.bufferedBytes);
  }, 1);
  const d0 = a.stats().dropped;
  try {
    for (let i = 0; i < 2000 && raw.closed === undefined && !raw.socket.destroyed; i++) {
      raw.conn.send({ t: 'req', id: i + 1, topic: 'echo', p: payload });
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => a.stats().dropped > d0, 5000, 'overflow counted');
    await until(() => ![...conns].some((c) => c.remote.endsWith(`:${raw.socket.localPort}`)), 5000, 'the node closed the connection');
  } finally {
    clearInterval(sample);
  }
  assert.ok(errors.some((e) => e.code === 'COHORT_QUEUE_FULL'), JSON.stringify(errors.map((e) => e.code)));
  assert.ok(maxBuffered <= LIMIT + 64 * 1024, `the node buffered up to ${maxBuffered} bytes for a reader that never reads (limit ${LIMIT})`);
  // The node still works for others.
  const b = await node('b', { membership: { type: 'static', members: [addr(a)] } });
  await until(() => b.members().some((m) => m.route === 'a'), 3000, 'b joins');
  assert.deepEqual(await b.request(a.self.id, 'echo', 'hi'), 'hi');
});
