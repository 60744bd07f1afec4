import { STATUS_CODES } from 'node:http';
import type { ClientConnection, IncomingRequest, ResponseSink } from './parse.js';
import { holdWrites } from './write-batch.js';

/**
 * Writes one response to a client connection: the head with the framing the
 * client can read (the member's Content-Length as given; otherwise chunked
 * to HTTP/1.1 clients and close-delimited to HTTP/1.0 ones), the body with
 * back-pressure (write() says when to pause the member), and the end. Says
 * afterwards whether the connection may carry another request.
 *
 * The head is held until the first body bytes, the end, or the end of the
 * member read that produced it (flush()): a small response goes out as one
 * buffer in one write() — one syscall, one wake-up of the client. The writes
 * of a turn of the event loop leave together (write-batch.ts).
 */
export class ResponseWriter implements ResponseSink {
  headSent = false;
  /** Body bytes written (after decoding the member's framing). */
  bytes = 0;
  private chunked = false;
  private noBody = false;
  /** The head, not written yet (latin1). */
  private pendingHead: string | undefined;
  /** The connection ends after this response. */
  closeAfter: boolean;

  constructor(
    private readonly conn: ClientConnection,
    private readonly req: IncomingRequest,
  ) {
    this.closeAfter = !req.head.keepAlive;
  }

  /** `HTTP/1.1 100 Continue` (Expect: 100-continue, once a member was picked). */
  writeContinue(): void {
    if (!this.headSent && this.conn.socket.writable) this.conn.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  }

  /** A 103 Early Hints with the member's Link headers (HTTP/1.1 clients only). */
  writeEarlyHints(links: readonly string[]): void {
    if (this.headSent || links.length === 0 || this.req.head.versionMinor === 0) return;
    let h = 'HTTP/1.1 103 Early Hints\r\n';
    for (const l of links) h += `link: ${l}\r\n`;
    this.conn.socket.write(`${h}\r\n`);
  }

  /**
   * Writes the head. `headers` are the client's response headers without
   * framing ones; `contentLength` is the member's, if it sent one; `closeAfter`
   * forces `Connection: close`.
   */
  writeHead(status: number, reason: string, headers: readonly string[], contentLength: string | undefined, closeAfter = false): void {
    const head = this.req.head;
    this.noBody = head.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    let framing = '';
    if (contentLength !== undefined) framing = `content-length: ${contentLength}\r\n`;
    else if (!this.noBody) {
      if (head.versionMinor >= 1) {
        this.chunked = true;
        framing = 'transfer-encoding: chunked\r\n';
      } else this.closeAfter = true;
    } else if (status !== 204 && status !== 304 && head.method !== 'HEAD') framing = 'content-length: 0\r\n';
    if (closeAfter) this.closeAfter = true;
    if (this.closeAfter) framing += 'connection: close\r\n';
    else if (head.versionMinor === 0) framing += 'connection: keep-alive\r\n';
    let text = `HTTP/1.1 ${status} ${reason || STATUS_CODES[status] || ''}\r\n`;
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    this.headSent = true;
    this.conn.responding = true;
    this.pendingHead = `${text}${framing}\r\n`;
  }

  /** Writes a head still held (the member read that produced it ended without body bytes). */
  flush(): void {
    const h = this.pendingHead;
    if (h === undefined) return;
    this.pendingHead = undefined;
    holdWrites(this.conn.socket);
    this.conn.socket.write(h, 'latin1');
  }

  /** The held head followed by `chunk` (framed as one chunk when chunked), as one buffer. */
  private withHead(head: string, chunk: Buffer, chunked: boolean): Buffer {
    const prefix = chunked ? `${head}${chunk.length.toString(16)}\r\n` : head;
    const out = Buffer.allocUnsafe(prefix.length + chunk.length + (chunked ? 2 : 0));
    out.write(prefix, 0, 'latin1');
    chunk.copy(out, prefix.length);
    if (chunked) out.write('\r\n', prefix.length + chunk.length, 'latin1');
    return out;
  }

  /** Writes body bytes; false when the client's socket is full (pause the source until onDrain). */
  write(chunk: Buffer): boolean {
    if (this.noBody || chunk.length === 0) return true;
    this.bytes += chunk.length;
    const s = this.conn.socket;
    holdWrites(s);
    const head = this.pendingHead;
    if (head !== undefined) {
      this.pendingHead = undefined;
      return s.write(this.withHead(head, chunk, this.chunked));
    }
    if (!this.chunked) return s.write(chunk);
    s.cork();
    s.write(`${chunk.length.toString(16)}\r\n`);
    s.write(chunk);
    const ok = s.write('\r\n');
    s.uncork();
    return ok;
  }

  /** Ends the body. Returns whether the connection may carry the next request. */
  end(): boolean {
    const last = this.chunked && !this.noBody ? '0\r\n\r\n' : '';
    const head = this.pendingHead;
    this.pendingHead = undefined;
    holdWrites(this.conn.socket);
    if (head !== undefined) this.conn.socket.write(head + last, 'latin1');
    else if (last !== '') this.conn.socket.write(last, 'latin1');
    return !this.closeAfter;
  }

  /** A complete small answer of the balancer's own (errors, 404, 503 …). */
  plain(status: number, body: string, closeAfter: boolean, extra?: Record<string, string>): void {
    const headers: string[] = ['content-type', 'text/plain; charset=utf-8'];
    if (extra !== undefined) for (const k of Object.keys(extra)) headers.push(k, extra[k]!);
    const len = Buffer.byteLength(body);
    this.writeHead(status, STATUS_CODES[status] ?? '', headers, String(len), closeAfter);
    const head = this.pendingHead!;
    this.pendingHead = undefined;
    if (this.req.head.method !== 'HEAD') {
      this.bytes += len;
      this.conn.socket.write(len === body.length ? head + body : Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]), 'latin1');
    } else this.conn.socket.write(head, 'latin1');
  }
}
