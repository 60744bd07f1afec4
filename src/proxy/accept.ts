import net from 'node:net';

/**
 * Accepting plain client connections with one shared read buffer (net's
 * `onread`), as the member sockets do: no Buffer is allocated per read and
 * no Readable stream machinery runs per read — llhttp copies what it keeps
 * (header strings, body chunks), so nothing holds a view into the buffer
 * past the read. Measured on the peer harness's load (raw prototypes,
 * docs/performance.md): +10–15 % requests/s per core.
 *
 * Node gives `onread` only to sockets built from options, not to the ones a
 * `net.Server` accepts; so once the server listens, its accept callback (the
 * listening handle's `onconnection`, the hook net.Server itself installs) is
 * replaced by one that wraps each accepted handle in a Socket built with
 * `onread`. If the handle does not look as expected (another Node), the
 * server's own 'connection' event is used instead, with ordinary reads.
 */

/** Called with each read: `n` bytes at the start of `buf` (valid until it returns). Return false to stop reading (back-pressure). */
export type ReadCallback = (n: number, buf: Uint8Array) => boolean;

/** One accepted socket; `setReader` must be called before the current turn of the event loop ends. */
export type OnAccepted = (socket: net.Socket, setReader: ((cb: ReadCallback) => void) | undefined) => void;

const SHARED_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

interface ListeningHandle {
  onconnection?: (err: number, clientHandle: unknown) => void;
}

/**
 * Delivers `server`'s accepted connections to `onAccepted`. Call after the
 * server listens. Returns false when only ordinary reads are possible here.
 */
export function acceptWithReadBuffer(server: net.Server, allowHalfOpen: boolean, onAccepted: OnAccepted, onError: (err: Error) => void): boolean {
  const handle = (server as unknown as { _handle?: ListeningHandle | null })._handle;
  if (handle === null || handle === undefined || typeof handle.onconnection !== 'function') {
    server.on('connection', (s: net.Socket) => onAccepted(s, undefined));
    return false;
  }
  handle.onconnection = (err: number, clientHandle: unknown) => {
    if (err) {
      onError(Object.assign(new Error(`accept failed (${err})`), { errno: err, syscall: 'accept' }));
      return;
    }
    let reader: ReadCallback = () => true;
    const socket = new net.Socket({
      handle: clientHandle,
      allowHalfOpen,
      readable: true,
      writable: true,
      onread: { buffer: SHARED_READ_BUFFER, callback: (n: number, buf: Uint8Array) => reader(n, buf) },
    } as net.SocketConstructorOpts);
    onAccepted(socket, (cb) => {
      reader = cb;
    });
  };
  return true;
}
