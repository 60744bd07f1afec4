import type { Socket } from 'node:net';

/**
 * The writes of one turn of the event loop leave together. A socket the
 * request path writes to is corked until the I/O callbacks of this turn have
 * run (a setImmediate, node's check phase), then uncorked: its writes of the
 * turn go out in one system call, and the writes to every socket go out back
 * to back — so a peer that sleeps between requests (the client's load
 * generator, a member's event loop) is woken once for the batch instead of
 * once per exchange. Waking a process on another core inside a socket write
 * was 12 % of the engine's CPU samples (docs/performance.md); batching the
 * writes gave +21 % requests/s and −18 % CPU per request in an interleaved A/B.
 *
 * Back-pressure is unchanged: a corked socket buffers in its Writable, and
 * write() still returns false past the high-water mark. `end()` uncorks by
 * itself; before a socket is destroyed, `flushWrites()` hands what it holds
 * to the socket first, as an unbatched write would have done.
 */
let held: Socket[] = [];
let spare: Socket[] = [];
let scheduled = false;

function release(): void {
  scheduled = false;
  const list = held;
  held = spare;
  spare = list;
  for (let i = 0; i < list.length; i++) {
    const s = list[i]!;
    // Not ours any more when end() or flushWrites() uncorked it already (uncork of an uncorked socket does nothing).
    if (s.writableCorked !== 0) s.uncork();
  }
  list.length = 0;
}

/** Corks `socket` until the end of this turn of the event loop, unless it is corked already (by this or a caller). */
export function holdWrites(socket: Socket): void {
  if (socket.writableCorked !== 0) return;
  socket.cork();
  held.push(socket);
  if (!scheduled) {
    scheduled = true;
    setImmediate(release);
  }
}

/** Writes out at once what `socket` holds (before destroying it: an earlier complete response still leaves). */
export function flushWrites(socket: Socket): void {
  while (socket.writableCorked !== 0) socket.uncork();
}
