/**
 * write-batch.ts: the writes of one turn of the event loop leave together.
 * On real loopback sockets: held writes reach the peer intact and in order
 * once the turn is over, back-pressure still reports a full socket, end()
 * and flushWrites() let held bytes out (a destroy right after flushWrites
 * still delivers them; without it they are lost — which is why the client
 * connection flushes before it cuts a connection).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { flushWrites, holdWrites } from '../../src/proxy/write-batch.js';

async function pair(): Promise<{ a: net.Socket; received: () => Buffer; closed: Promise<void>; close: () => Promise<void> }> {
  const chunks: Buffer[] = [];
  let closed!: () => void;
  const closedP = new Promise<void>((r) => (closed = r));
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => closed());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const a = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  a.on('error', () => {});
  await once(a, 'connect');
  return {
    a,
    received: () => Buffer.concat(chunks),
    closed: closedP,
    close: async () => {
      a.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

test('held writes stay in the socket during the turn and reach the peer in order after it', async () => {
  const p = await pair();
  try {
    for (const part of ['one ', 'two ', 'three']) {
      holdWrites(p.a);
      p.a.write(part);
    }
    assert.equal(p.a.writableCorked, 1, 'corked once, however many writes');
    assert.equal(p.a.writableLength, 'one two three'.length, 'nothing handed to the kernel yet');
    await tick();
    assert.equal(p.a.writableCorked, 0);
    while (p.received().length < 13) await new Promise((r) => setTimeout(r, 5));
    assert.equal(p.received().toString(), 'one two three');
  } finally {
    await p.close();
  }
});

test('a socket corked by its caller is left to that caller (a synchronous cork/uncork section flushes at once)', async () => {
  const p = await pair();
  try {
    p.a.cork();
    holdWrites(p.a);
    p.a.write('x');
    assert.equal(p.a.writableCorked, 1);
    p.a.uncork();
    assert.equal(p.a.writableCorked, 0);
    assert.equal(p.a.writableLength, 0, 'written at the uncork, not held to the end of the turn');
  } finally {
    await p.close();
  }
});

test('back-pressure: write() still returns false past the high-water mark while held', async () => {
  const p = await pair();
  try {
    holdWrites(p.a);
    assert.equal(p.a.write(Buffer.alloc(p.a.writableHighWaterMark + 1)), false);
    const drained = once(p.a, 'drain');
    await tick();
    await drained;
  } finally {
    await p.close();
  }
});

/** What the peer received of `text`, written while held, once `finish` has ended or cut the socket. */
async function delivered(text: string, finish: (s: net.Socket) => void): Promise<string> {
  const p = await pair();
  try {
    holdWrites(p.a);
    p.a.write(text);
    finish(p.a);
    await p.closed;
    return p.received().toString();
  } finally {
    await p.close();
  }
}

test('end() lets held bytes out; flushWrites() before destroy() delivers them, a bare destroy() drops them', async () => {
  assert.equal(await delivered('ended', (s) => s.end()), 'ended');
  assert.equal(await delivered('flushed', (s) => {
    flushWrites(s);
    s.destroy();
  }), 'flushed');
  assert.equal(await delivered('dropped', (s) => s.destroy()), '', 'this is what ClientConnection.destroy() prevents by flushing first');
});
