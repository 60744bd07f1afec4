import { STATUS_CODES } from 'node:http';
import type { ClientConnection, IncomingRequest, ResponseSink } from './parse.js';

/**
 * Writes one response to a client connection: the head with the framing the
 * client can read (the member's Content-Length as given; otherwise chunked
 * to HTTP/1.1 clients and close-delimited to HTTP/1.0 ones), the body with
 * back-pressure (write() says when to pause the member), and the end. Says
 * afterwards whether the connection may carry another request.
 */
function uncork(s: { uncork(): void; writableCorked: number }): void {
  if (s.writableCorked > 0) s.uncork();
}

export class ResponseWriter implements ResponseSink {
  headSent = false;
  /** Body bytes written (after decoding the member's framing). */
  bytes = 0;
  private chunked = false;
  private noBody = false;
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
    // The head goes out with the body bytes of the same read (one writev, not two writes).
    const s = this.conn.socket;
    s.cork();
    s.write(`${text}${framing}\r\n`, 'latin1');
    process.nextTick(uncork, s);
  }

  /** Writes body bytes; false when the client's socket is full (pause the source until onDrain). */
  write(chunk: Buffer): boolean {
    if (this.noBody || chunk.length === 0) return true;
    this.bytes += chunk.length;
    const s = this.conn.socket;
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
    if (this.chunked && !this.noBody) this.conn.socket.write('0\r\n\r\n');
    return !this.closeAfter;
  }

  /** A complete small answer of the balancer's own (errors, 404, 503 …). */
  plain(status: number, body: string, closeAfter: boolean, extra?: Record<string, string>): void {
    const headers: string[] = ['content-type', 'text/plain; charset=utf-8'];
    if (extra !== undefined) for (const k of Object.keys(extra)) headers.push(k, extra[k]!);
    this.writeHead(status, STATUS_CODES[status] ?? '', headers, String(Buffer.byteLength(body)), closeAfter);
    if (this.req.head.method !== 'HEAD') {
      this.bytes += Buffer.byteLength(body);
      this.conn.socket.write(body);
    }
  }
}
