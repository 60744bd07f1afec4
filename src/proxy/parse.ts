import type { Socket } from 'node:net';
import { createParser, HTTPParser, METHODS, type NativeParser, type ParseError } from './llhttp.js';
import { ResponseWriter } from './stream.js';
import { isName } from './header-names.js';
import type { ForwardingCache } from './rewrite.js';
import { flushWrites } from './write-batch.js';

/**
 * The client side of the engine: one ClientConnection per accepted socket,
 * fed by its 'data' events into Node's llhttp (strict). It turns bytes into
 * request heads and body chunks, keeps pipelined requests in order (one
 * exchange at a time per connection, RFC 9112 §9.3.2), and stops reading at
 * the first thing it must not act on: a parse error (answered 400/431),
 * a request after `Connection: close`, an upgrade, a refused request.
 * Back-pressure: the socket is paused while any reason to pause holds.
 */

/** A parsed request head, with the header values the request path needs read once. */
export interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly versionMajor: number;
  readonly versionMinor: number;
  /** [name, value, name, value, …] as sent. */
  readonly rawHeaders: string[];
  readonly upgrade: boolean;
  /** llhttp's verdict: the connection may carry another request after this one. */
  readonly keepAlive: boolean;
  readonly host: string | undefined;
  /** Cookie header values joined with "; " (HTTP/2 crumbs alike). */
  readonly cookie: string | undefined;
  /** -1: none. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /** The Expect header, lower-cased; undefined when absent. */
  readonly expect: string | undefined;
  readonly explain: boolean;
  readonly upgradeProtocol: string | undefined;
}

/** Where a request's body goes once an exchange takes it. */
export interface BodySink {
  onBodyData(chunk: Buffer): void;
  onBodyEnd(): void;
  /** The body was malformed (bad chunk) or the client closed before it was complete. */
  onBodyError(code: string): void;
}

export class IncomingRequest {
  /** Body chunks parsed before an exchange took them (bounded by one socket read: the socket pauses). */
  pending: Buffer[] | undefined;
  /** The whole body was parsed. */
  ended = false;
  error: string | undefined;
  sink: BodySink | undefined;
  /** The exchange serving this request (told when the client leaves). */
  exchange: { clientGone(): void } | undefined;
  /** Bytes of the connection after an upgrade request's head (the first tunnel bytes). */
  upgradeHead: Buffer | undefined;
  readonly hasBody: boolean;

  constructor(
    readonly head: RequestHead,
    readonly startedAt: number,
  ) {
    this.hasBody = head.chunked || head.contentLength > 0;
    if (!this.hasBody) this.ended = true;
  }

  /** Hands the body to `sink`: the chunks parsed so far at once, later ones as they arrive. */
  attach(sink: BodySink): void {
    this.sink = sink;
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) for (const c of pending) sink.onBodyData(c);
    if (this.error !== undefined) sink.onBodyError(this.error);
    else if (this.ended && this.hasBody) sink.onBodyEnd();
  }

  /** Keeps later chunks pending again (an attempt failed; the next one attaches anew). */
  hold(): void {
    this.sink = undefined;
  }

  /** Stops delivering body chunks (the exchange is over); later ones are dropped. */
  detach(): void {
    this.sink = undefined;
    this.pending = undefined;
  }

  body(chunk: Buffer): void {
    if (this.sink !== undefined) this.sink.onBodyData(chunk);
    else (this.pending ??= []).push(chunk);
  }

  end(): void {
    this.ended = true;
    if (this.hasBody) this.sink?.onBodyEnd();
  }

  fail(code: string): void {
    if (this.ended || this.error !== undefined) return;
    this.error = code;
    this.sink?.onBodyError(code);
  }
}

/** How the answer to one request is written to its client (HTTP/1 connection or HTTP/2 stream). */
export interface ResponseSink {
  readonly headSent: boolean;
  /** Body bytes written. */
  readonly bytes: number;
  /** The connection ends after this response (HTTP/1). */
  readonly closeAfter: boolean;
  writeContinue(): void;
  writeEarlyHints(links: readonly string[]): void;
  /** The head; `headers` without framing, `contentLength` the member's (if any). */
  writeHead(status: number, reason: string, headers: readonly string[], contentLength: string | undefined, closeAfter?: boolean): void;
  /** Body bytes; false when the client is full (wait for the client side's onDrain). */
  write(chunk: Buffer): boolean;
  /** Ends the body; returns whether the client connection may carry another request. */
  end(): boolean;
  /** Writes what is held back (a head waiting for body bytes of the same member read). */
  flush(): void;
  /** A complete small answer of the balancer's own. */
  plain(status: number, body: string, closeAfter: boolean, extra?: Record<string, string>): void;
}

/**
 * What the request path needs of the client side of one request: an HTTP/1 connection or an HTTP/2 stream
 * (which also keeps the forwarding lines last made for it: rewrite.ts forwardingLines).
 */
export interface ClientSide extends ForwardingCache {
  readonly remoteAddress: string;
  /** Header names and values were checked by the parser (llhttp strict) as validate.ts would. */
  readonly headerCharsChecked: boolean;
  readonly proto: 'http' | 'https';
  /** Called when the client can take more response bytes. */
  onDrain: (() => void) | undefined;
  pause(reason: number): void;
  unpause(reason: number): void;
  /** Cuts the client off (mid-response failures). */
  destroy(): void;
  /** The exchange for `req` is over; `reusable`: the response was complete and framed. */
  done(req: IncomingRequest, reusable: boolean): void;
  /** The writer for `req`'s response. */
  responseFor(req: IncomingRequest): ResponseSink;
}

export interface ConnectionHandler {
  /** It is `req`'s turn on `conn` (earlier requests on it are answered). */
  onRequest(conn: ClientSide, req: IncomingRequest): void;
  /** The connection closed while `req` was being served. */
  onClientGone(conn: ClientSide, req: IncomingRequest): void;
  /** A malformed head was refused (logging). */
  onRefused(conn: ClientSide, status: number, code: string): void;
}

/** Pause reasons (bits). */
export const PAUSE_BODY = 1;
export const PAUSE_PIPELINE = 2;

/** What the connection's next turn is: a request, or a refusal of a head that did not parse. */
type Turn = IncomingRequest | { readonly status: number; readonly code: string };

export interface ClientLimits {
  readonly maxHeaderSize: number;
  /** Answer a client's FIN by aborting the exchange in flight (abortonclose) instead of finishing it. */
  readonly abortOnClose: boolean;
}

export class ClientConnection implements ClientSide {
  private readonly parser: NativeParser;
  private readonly turns: Turn[] = [];
  /** The request being served; undefined between requests. */
  active: IncomingRequest | undefined;
  /** The request whose body llhttp is parsing now (may be queued behind `active`). */
  private parsing: IncomingRequest | undefined;
  private acc: string[] = [];
  private accUrl = '';
  private inBody = false;
  /** The request being parsed said Connection: close (or is HTTP/1.0 without keep-alive): reading stops after its body. */
  private lastOnConnection = false;
  /** Nothing more is read from this socket: after Connection: close, an upgrade, an error, the client's FIN. */
  stopped = false;
  /** After an upgrade: bytes go to the socket's own stream (the tunnel pipes it), not to the parser. */
  private tunnel = false;
  private pauseMask = 0;
  /** Monotonic ms since a head began arriving (0: none pending); checked against timeouts.headers. */
  headStartedAt: number;
  /** Monotonic ms since the connection became idle between requests (0: not idle). */
  idleSince = 0;
  /** The client sent its FIN. */
  clientEnded = false;
  /** Set by the response writer: a response was started on the socket for `active`. */
  responding = false;
  readonly remoteAddress: string;
  readonly headerCharsChecked = true;
  forwardingLines: { readonly host: string | undefined; readonly text: string } | undefined;
  /** Called when the socket drains (the response writer's back-pressure). */
  onDrain: (() => void) | undefined;

  constructor(
    readonly socket: Socket,
    readonly proto: 'http' | 'https',
    private handler: ConnectionHandler,
    private readonly limits: ClientLimits,
    private readonly now: () => number,
    setReader?: (cb: (n: number, buf: Uint8Array) => boolean) => void,
  ) {
    this.remoteAddress = socket.remoteAddress ?? '';
    this.headStartedAt = now();
    this.parser = createParser(HTTPParser.REQUEST, limits.maxHeaderSize, {
      onMessageBegin: () => {
        this.headStartedAt = this.now();
        this.idleSince = 0;
      },
      onHeaders: (headers, url) => {
        if (this.inBody) return; // trailers: not forwarded
        for (const h of headers) this.acc.push(h);
        this.accUrl += url;
      },
      onHeadersComplete: (major, minor, headers, method, url, _s, _m, upgrade, keepAlive) => this.headersComplete(major, minor, headers, method, url, upgrade, keepAlive),
      onBody: (chunk) => this.parsing?.body(chunk),
      onMessageComplete: () => {
        const req = this.parsing;
        this.parsing = undefined;
        this.inBody = false;
        if (this.lastOnConnection) this.stopped = true;
        req?.end();
      },
    });
    socket.setNoDelay(true);
    // Plain listeners read into one shared buffer (accept.ts); TLS sockets emit 'data'.
    if (setReader !== undefined) setReader((n, buf) => this.onRead(n, buf));
    else socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('drain', () => this.onDrain?.());
    socket.on('end', () => this.onEnd());
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
  }

  responseFor(req: IncomingRequest): ResponseSink {
    return new ResponseWriter(this, req);
  }

  /** Swaps the handler (a reload builds a new request path; open connections move to it). */
  setHandler(h: ConnectionHandler): void {
    this.handler = h;
  }

  private headersComplete(major: number, minor: number, headers: string[] | undefined, method: number | undefined, url: string | undefined, upgrade: boolean, keepAlive: boolean): number {
    if (headers === undefined) {
      headers = this.acc;
      this.acc = [];
    }
    if (url === undefined || url === '') {
      url = this.accUrl;
    }
    this.accUrl = '';
    this.headStartedAt = 0;
    const head = readHead(METHODS[method ?? -1] ?? 'UNKNOWN', url, major, minor, headers, upgrade, keepAlive);
    const req = new IncomingRequest(head, this.now());
    this.parsing = req.ended ? undefined : req;
    this.inBody = !req.ended;
    this.turns.push(req);
    // Nothing after a request that switches protocols is read, nor after the body of one that ends the connection.
    if (upgrade) this.stopped = true;
    else if (!keepAlive) {
      if (req.ended) this.stopped = true;
      else this.lastOnConnection = true;
    }
    return 0;
  }

  /** A read into the shared buffer: parsed at once; after an upgrade, copied into the socket's stream for the tunnel. */
  private onRead(n: number, buf: Uint8Array): boolean {
    if (this.tunnel) return this.socket.push(Buffer.from(buf.subarray(0, n)));
    this.onData(Buffer.from(buf.buffer, buf.byteOffset, n));
    return true;
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return;
    const r = this.parser.execute(chunk);
    if (typeof r !== 'number') {
      if (!this.stopped || !(r as ParseError).code?.startsWith('HPE_CLOSED')) this.parseFailed(r as ParseError);
      else this.stopped = true;
    } else {
      const last = this.turns.at(-1);
      if (this.stopped && last instanceof IncomingRequest && last.head.upgrade && r < chunk.length) last.upgradeHead = Buffer.from(chunk.subarray(r));
    }
    this.next();
    if (this.turns.length > 0) this.pause(PAUSE_PIPELINE);
  }

  private parseFailed(err: ParseError): void {
    this.stopped = true;
    const code = err.code ?? 'HPE_UNKNOWN';
    if (this.parsing !== undefined) {
      // The head was fine; its body is not (a bad chunk): that request fails, nothing more is read.
      this.parsing.fail(code);
      this.parsing = undefined;
      return;
    }
    this.turns.push({ status: code === 'HPE_HEADER_OVERFLOW' ? 431 : 400, code });
  }

  /** Starts the next turn if none is being served. */
  private next(): void {
    while (this.active === undefined && this.turns.length > 0) {
      const t = this.turns.shift()!;
      if (!(t instanceof IncomingRequest)) {
        this.handler.onRefused(this, t.status, t.code);
        this.refuse(t.status, t.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request');
        return;
      }
      if (this.socket.destroyed) return;
      this.active = t;
      this.responding = false;
      this.handler.onRequest(this, t);
    }
    if (this.turns.length === 0) this.unpause(PAUSE_PIPELINE);
  }

  /**
   * The exchange for `req` is over. `reusable`: the response was complete
   * and framed, so the connection may carry the next request.
   */
  done(req: IncomingRequest, reusable: boolean): void {
    if (this.active !== req) return;
    req.detach();
    this.active = undefined;
    this.responding = false;
    this.unpause(PAUSE_BODY);
    // A body left unread would be parsed as the next request: the connection ends instead.
    if (!reusable || !req.ended || req.error !== undefined) {
      this.stopped = true;
      this.turns.length = 0;
    }
    if (this.stopped && this.turns.length === 0) {
      this.endSoon();
      return;
    }
    this.idleSince = this.turns.length === 0 ? this.now() : 0;
    this.next();
  }

  /** Writes a plain refusal and ends the connection (nothing after it is read). */
  refuse(status: number, text: string, extra = ''): void {
    this.stopped = true;
    this.turns.length = 0;
    const body = `${status} ${text}\n`;
    if (this.socket.writable) {
      this.socket.write(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`);
    }
    this.endSoon();
  }

  /** Ends the socket once written; destroyed after a grace period if the peer never closes. */
  endSoon(): void {
    const s = this.socket;
    if (s.destroyed) return;
    s.end();
    setTimeout(() => s.destroy(), 1000).unref();
  }

  pause(reason: number): void {
    if (this.pauseMask === 0) this.socket.pause();
    this.pauseMask |= reason;
  }

  unpause(reason: number): void {
    if (this.pauseMask === 0) return;
    this.pauseMask &= ~reason;
    if (this.pauseMask === 0 && !this.socket.destroyed) this.socket.resume();
  }

  /** Takes the socket away from the parser (upgrades): no more data events reach it. */
  detachSocket(): void {
    this.stopped = true;
    this.tunnel = true;
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('drain');
    this.socket.removeAllListeners('end');
    this.unpause(0xff);
  }

  private onEnd(): void {
    this.clientEnded = true;
    this.parsing?.fail('CLIENT_BODY');
    this.parsing = undefined;
    this.stopped = true;
    if (this.active === undefined && this.turns.length === 0) {
      this.socket.end();
      return;
    }
    if (this.limits.abortOnClose) this.socket.destroy();
  }

  private onClose(): void {
    this.stopped = true;
    this.parsing?.fail('CLIENT_BODY');
    this.parsing = undefined;
    this.turns.length = 0;
    const a = this.active;
    if (a !== undefined) this.handler.onClientGone(this, a);
    this.parser.close?.();
  }

  destroy(): void {
    // What this turn wrote (e.g. an earlier pipelined response, complete) leaves before the cut.
    flushWrites(this.socket);
    this.socket.destroy();
  }
}

/** Reads the header values the request path needs in one pass over the raw headers. */
export function readHead(method: string, url: string, major: number, minor: number, raw: string[], upgrade: boolean, keepAlive: boolean): RequestHead {
  let host: string | undefined;
  let cookie: string | undefined;
  let contentLength = -1;
  let chunked = false;
  let expect: string | undefined;
  let explain = false;
  let upgradeProtocol: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 4:
        if (isName(name, 'host')) host ??= raw[i + 1];
        break;
      case 6:
        if (isName(name, 'cookie')) cookie = cookie === undefined ? raw[i + 1] : `${cookie}; ${raw[i + 1]}`;
        else if (isName(name, 'expect')) expect = raw[i + 1]!.trim().toLowerCase();
        break;
      case 7:
        if (isName(name, 'upgrade')) upgradeProtocol = raw[i + 1];
        break;
      case 14:
        if (isName(name, 'content-length')) contentLength = Number(raw[i + 1]!.trim());
        break;
      case 16:
        if (isName(name, 'x-cohort-explain')) explain = true;
        break;
      case 17:
        if (isName(name, 'transfer-encoding')) chunked = true;
        break;
    }
  }
  return { method, url, versionMajor: major, versionMinor: minor, rawHeaders: raw, upgrade, keepAlive, host, cookie, contentLength, chunked, expect, explain, upgradeProtocol };
}
