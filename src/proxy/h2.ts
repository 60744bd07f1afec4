import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { STATUS_CODES } from 'node:http';
import { IncomingRequest, PAUSE_BODY, readHead, type ClientSide, type ConnectionHandler, type ResponseSink } from './parse.js';

/**
 * HTTP/2 to clients on TLS listeners (ALPN `h2`): each stream becomes one
 * request on the same pipeline as HTTP/1 (mounts, sticky routing, limits,
 * failover), forwarded to members over the HTTP/1.1 pools. Node's http2
 * session does the framing (nghttp2); this file only adapts a stream to the
 * request path's client side. Cookie crumbs (HTTP/2 splits `cookie`) arrive
 * joined with "; " (Node joins them) before sticky parsing.
 */

/** Names an HTTP/2 response must not carry (RFC 9113 §8.2.2), beyond what the hop-by-hop rules already removed. */
const H2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

export class H2Endpoint {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(
    private handler: ConnectionHandler,
    private readonly now: () => number,
    idleMs: number,
    maxHeaderSize: number,
  ) {
    // A plain (h2c) server object that never listens: TLS listeners hand it the sockets that chose h2.
    // The header list is bounded like an HTTP/1 head (limits.maxheadersize): larger ones are refused by nghttp2.
    this.server = http2.createServer({ maxSessionMemory: 16, settings: { maxHeaderListSize: maxHeaderSize } });
    this.server.setTimeout(idleMs, () => {});
    this.server.on('session', (s: http2.ServerHttp2Session) => {
      this.sessions.add(s);
      s.on('close', () => this.sessions.delete(s));
      s.on('error', () => {});
      s.setTimeout(idleMs, () => s.close());
    });
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  setHandler(h: ConnectionHandler): void {
    this.handler = h;
  }

  /** Serves a TLS socket whose ALPN chose h2. */
  accept(socket: TLSSocket): void {
    this.server.emit('connection', socket);
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  /** Graceful: GOAWAY to every session (in-flight streams finish). */
  close(): void {
    for (const s of this.sessions) s.close();
  }

  destroy(): void {
    for (const s of this.sessions) s.destroy();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => {});
    const method = String(headers[':method'] ?? '');
    const path = String(headers[':path'] ?? '');
    const authority = headers[':authority'] ?? headers.host;
    const raw: string[] = [];
    if (authority !== undefined && headers.host === undefined) raw.push('host', String(authority));
    for (const name of Object.keys(headers)) {
      if (name[0] === ':') continue;
      const v = headers[name];
      if (Array.isArray(v)) for (const x of v) raw.push(name, x);
      else if (v !== undefined) raw.push(name, String(v));
    }
    const head0 = readHead(method, path, 2, 0, raw, false, true);
    // A body of unknown length goes to the member chunked.
    const chunked = !stream.endAfterHeaders && head0.contentLength < 0;
    const head = { ...head0, chunked };
    const req = new IncomingRequest(head, this.now());
    const side = new H2Side(stream);
    if (req.hasBody) {
      stream.on('data', (c: Buffer) => req.body(c));
      stream.on('end', () => req.end());
    }
    stream.on('aborted', () => req.fail('CLIENT_BODY'));
    stream.on('close', () => {
      if (!side.finished) this.handler.onClientGone(side, req);
    });
    this.handler.onRequest(side, req);
  }
}

/** One HTTP/2 stream as the request path's client side. */
class H2Side implements ClientSide {
  readonly remoteAddress: string;
  /** nghttp2 checks less than llhttp strict: validate.ts checks header characters. */
  readonly headerCharsChecked = false;
  forwardingLines: { readonly host: string | undefined; readonly text: string } | undefined;
  readonly proto = 'https' as const;
  onDrain: (() => void) | undefined;
  finished = false;
  private pauseMask = 0;

  constructor(readonly stream: http2.ServerHttp2Stream) {
    this.remoteAddress = stream.session?.socket?.remoteAddress ?? '';
    stream.on('drain', () => this.onDrain?.());
  }

  pause(reason: number): void {
    if (this.pauseMask === 0) this.stream.pause();
    this.pauseMask |= reason;
  }

  unpause(reason: number): void {
    if (this.pauseMask === 0) return;
    this.pauseMask &= ~reason;
    if (this.pauseMask === 0) this.stream.resume();
  }

  destroy(): void {
    this.finished = true;
    this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  }

  done(req: IncomingRequest): void {
    this.finished = true;
    req.detach();
    this.unpause(PAUSE_BODY);
    // A request body nobody read: the stream is reset (HTTP/2 needs no connection close for that) —
    // after the response is out, so that the reset does not discard it.
    if (req.ended || this.stream.closed) return;
    const reset = () => this.stream.close(http2.constants.NGHTTP2_NO_ERROR);
    if (this.stream.writableFinished) reset();
    else this.stream.once('finish', reset);
  }

  responseFor(req: IncomingRequest): ResponseSink {
    return new H2Writer(this.stream, req);
  }
}

class H2Writer implements ResponseSink {
  /** HTTP/2 frames are written as they come: nothing is held back. */
  flush(): void {}

  headSent = false;
  bytes = 0;
  readonly closeAfter = false;
  private noBody = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly req: IncomingRequest,
  ) {}

  writeContinue(): void {
    // Node's HTTP/2 server answers Expect: 100-continue itself.
  }

  writeEarlyHints(links: readonly string[]): void {
    if (this.headSent || links.length === 0 || this.stream.closed) return;
    try {
      this.stream.additionalHeaders({ ':status': 103, link: [...links] });
    } catch {
      // early hints are optional
    }
  }

  writeHead(status: number, _reason: string, headers: readonly string[], contentLength: string | undefined): void {
    this.noBody = this.req.head.method === 'HEAD' || status === 204 || status === 304;
    const out: http2.OutgoingHttpHeaders = { ':status': status };
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (H2_FORBIDDEN.has(name)) continue;
      const value = headers[i + 1]!;
      const prev = out[name];
      if (prev === undefined) out[name] = value;
      else if (name === 'set-cookie') out[name] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
      else out[name] = `${String(prev)}, ${value}`;
    }
    if (contentLength !== undefined && status !== 204) out['content-length'] = contentLength;
    this.headSent = true;
    if (this.stream.closed || this.stream.destroyed) return;
    this.stream.respond(out, { endStream: this.noBody });
  }

  write(chunk: Buffer): boolean {
    if (this.noBody || this.stream.closed) return true;
    this.bytes += chunk.length;
    return this.stream.write(chunk);
  }

  end(): boolean {
    if (!this.noBody && !this.stream.closed) this.stream.end();
    return true;
  }

  plain(status: number, body: string, _closeAfter: boolean, extra?: Record<string, string>): void {
    const headers: string[] = ['content-type', 'text/plain; charset=utf-8'];
    if (extra !== undefined) for (const k of Object.keys(extra)) headers.push(k, extra[k]!);
    const len = Buffer.byteLength(body);
    this.writeHead(status, STATUS_CODES[status] ?? '', headers, String(len));
    if (!this.noBody && !this.stream.closed) {
      this.bytes += len;
      this.stream.end(body);
    }
  }
}
