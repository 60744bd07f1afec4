import net from 'node:net';
import tls from 'node:tls';
import type { Member } from '../balancer/member.js';
import { createParser, HTTPParser, type NativeParser, type ParseError } from './llhttp.js';
import { holdWrites } from './write-batch.js';
import { isName } from './header-names.js';

/**
 * The member side of the engine: pooled keep-alive connections per member
 * and the response parser (llhttp, strict) for every framing — Content-Length,
 * chunked with trailers (trailers are read and dropped), close-delimited,
 * 1xx interim answers, 204/304 and HEAD without a body. A connection goes
 * back to its pool only after an exchange that ended cleanly: the request
 * fully written, the response complete, keep-alive on both sides, no stray
 * bytes. Times in ms.
 */

/** Upstream connection settings shared by all member pools. */
export interface UpstreamSettings {
  readonly connectTimeoutMs: number;
  readonly firstByteTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Most connections per member (also bounded by the member's `max`). */
  readonly connections: number;
  readonly rejectUnauthorized: boolean;
  readonly ca: string | undefined;
  readonly maxHeaderSize: number;
}

/** What an exchange hears from its member connection. */
export interface ResponseHandler {
  /** Connected (or reused): write the request now. */
  onConnected(conn: MemberConnection): void;
  /** A 1xx other than 101. */
  onInformational(status: number, headers: string[]): void;
  /** The final response head. */
  onResponseHead(status: number, reason: string, headers: string[], keepAlive: boolean): void;
  onResponseData(chunk: Buffer): void;
  onResponseEnd(): void;
  /** One read from the member was parsed (what it produced may now be written out). */
  onReadEnd(): void;
  /** The attempt failed: `code` as classified by outcome.ts; `responseBytes` of the response had arrived. */
  onFailure(code: string, message: string, responseBytes: number): void;
}

/** How often idle pool connections are checked against their keep-alive, ms. */
const IDLE_SWEEP_MS = 250;

/** A member's advertised `Keep-Alive: timeout=N` is trusted up to this margin, ms (its idle close may race our reuse). */
const KEEPALIVE_MARGIN_MS = 1000;

type Phase = 'connect' | 'head' | 'body' | 'idle';

/**
 * One read buffer for every plain member socket (net's `onread`): llhttp copies
 * body bytes out and hands headers over as strings, so nothing keeps a view
 * into it past the read. Saves an allocation per read (measured ≈ +19 % req/s
 * in the prototypes, REFERENCE.md).
 */
const SHARED_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export class MemberConnection {
  readonly socket: net.Socket;
  private readonly parser: NativeParser;
  private handler: ResponseHandler | undefined;
  /** This connection carried an exchange before the current one. */
  reused = false;
  private phase: Phase = 'connect';
  private headRequest = false;
  private informational = false;
  private keepAlive = false;
  private responseBytes = 0;
  private requestWritten = false;
  private complete = false;
  /** The exchange asked to stop reading (client back-pressure). */
  private paused = false;
  /** performance.now() of the last resume. */
  private resumedAt = Number.NEGATIVE_INFINITY;
  /** `Keep-Alive: timeout=` of the member's last response, ms. */
  private memberKeepAliveMs = Number.POSITIVE_INFINITY;
  /** Header pairs flushed before headers-complete. */
  private acc: string[] = [];
  closed = false;
  /** The socket timeout now set, ms (-1: none): set again only when a phase needs another one. */
  private armedMs = -1;
  /** performance.now() when the connection went back to its pool. */
  private idleSince = 0;
  /** How long it may stay idle in the pool and still be reused, ms. */
  private idleLimitMs = 0;

  constructor(
    private readonly pool: MemberPool,
    member: Member,
    private readonly settings: UpstreamSettings,
  ) {
    const url = member.url;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    this.socket = url.protocol === 'https:'
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: settings.rejectUnauthorized, ...(settings.ca !== undefined ? { ca: settings.ca } : {}) })
      : net.connect({ host, port, onread: { buffer: SHARED_READ_BUFFER, callback: (n: number, buf: Uint8Array) => {
        this.onData(Buffer.from(buf.buffer, buf.byteOffset, n));
        return true;
      } } });
    this.socket.setNoDelay(true);
    this.arm(settings.connectTimeoutMs);
    this.parser = createParser(HTTPParser.RESPONSE, settings.maxHeaderSize, {
      // Headers flushed before headers-complete (many of them, or after an earlier message's
      // trailers); once the head is complete, what comes here are trailers: read and dropped.
      onHeaders: (headers) => {
        if (this.phase !== 'body') for (const h of headers) this.acc.push(h);
      },
      onHeadersComplete: (_maj, _min, headers, _m, _u, status, reason, _up, keepAlive) => {
        if (headers === undefined) {
          headers = this.acc;
          this.acc = [];
        }
        return this.onHead(status ?? 0, reason ?? '', headers, keepAlive);
      },
      onBody: (chunk) => {
        this.responseBytes += chunk.length;
        this.handler?.onResponseData(chunk);
      },
      onMessageComplete: () => this.onComplete(),
    });
    this.socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      this.phase = 'head';
      this.arm(settings.firstByteTimeoutMs);
      this.handler?.onConnected(this);
    });
    if (url.protocol === 'https:') this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('timeout', () => this.onTimeout());
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.fail(err.code ?? 'ECONNRESET', err.message));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('close', () => this.onClose());
  }

  /** Starts an exchange on this connection (new or idle). */
  start(handler: ResponseHandler, headRequest: boolean): void {
    this.handler = handler;
    this.headRequest = headRequest;
    this.responseBytes = 0;
    this.requestWritten = false;
    this.complete = false;
    this.informational = false;
    this.paused = false;
    if (this.phase === 'idle') {
      this.phase = 'head';
      // The request written next restarts the socket's timer (net refreshes it on every read and
      // write), so a timeout of the same length as the last one need not be set again.
      this.arm(this.settings.firstByteTimeoutMs);
      handler.onConnected(this);
    }
  }

  /**
   * Sets the socket timeout for a phase, unless it is already that long: the
   * defaults give first byte and idle the same length, and setting a socket
   * timeout allocates a timer each time (three per request, measured).
   */
  private arm(ms: number): void {
    if (ms === this.armedMs) return;
    this.armedMs = ms;
    this.socket.setTimeout(ms);
  }

  /** Restarts the current timeout from now (after a pause, the time paused was not idleness). */
  private rearm(ms: number): void {
    this.armedMs = ms;
    this.socket.setTimeout(ms);
  }

  /** Idle in the pool for longer than its keep-alive allows (ours, or the member's `Keep-Alive: timeout=` less a margin). */
  expired(now: number): boolean {
    return now - this.idleSince >= this.idleLimitMs;
  }

  /** Header values are latin1 strings (as llhttp hands them over): written back byte for byte. */
  write(data: string | Buffer, encoding: BufferEncoding = 'latin1'): boolean {
    holdWrites(this.socket);
    return typeof data === 'string' ? this.socket.write(data, encoding) : this.socket.write(data);
  }

  /** The whole request (head and body) was written. */
  requestDone(): void {
    this.requestWritten = true;
    if (this.complete) this.release();
  }

  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    this.paused = false;
    this.resumedAt = performance.now();
    // Idleness counts from here: the time spent paused was the client's, not the member's.
    if (this.phase === 'body') this.rearm(this.settings.idleTimeoutMs);
    this.socket.resume();
  }

  /** Closes the connection if `handler`'s exchange is still on it (not released to the pool). */
  closeIfOwnedBy(handler: ResponseHandler): void {
    if (this.handler === handler) this.abandon();
  }

  /** The exchange gives up on this connection (its client left, or it failed): it is closed, never reused. */
  abandon(): void {
    this.handler = undefined;
    this.socket.destroy();
  }

  private onHead(status: number, reason: string, headers: string[], keepAlive: boolean): number {
    if (status < 200 && status !== 101) {
      this.informational = true;
      this.handler?.onInformational(status, headers);
      return 1;
    }
    if (status === 101) {
      // Only upgrade.ts asks for protocol switches, on connections of its own.
      this.fail('HPE_UNEXPECTED_101', 'member switched protocols without being asked');
      return 1;
    }
    this.keepAlive = keepAlive;
    this.memberKeepAliveMs = keepAliveTimeoutOf(headers);
    this.phase = 'body';
    this.arm(this.settings.idleTimeoutMs);
    this.handler?.onResponseHead(status, reason, headers, keepAlive);
    return this.headRequest ? 1 : 0;
  }

  private onComplete(): void {
    if (this.informational) {
      this.informational = false;
      return;
    }
    this.complete = true;
    const h = this.handler;
    // Back to the pool (or closed) before the exchange hears of the end: an exchange that ends
    // while the connection is still its own (request body not all sent) closes it.
    if (!this.keepAlive) {
      this.handler = undefined;
      this.socket.destroy();
    } else if (this.requestWritten) this.release();
    h?.onResponseEnd();
  }

  private release(): void {
    this.handler = undefined;
    if (this.closed || this.socket.destroyed) return;
    this.reused = true;
    this.phase = 'idle';
    if (this.paused) this.resume();
    // The keep-alive limit is checked when the connection is taken again and by the pool's sweep
    // (MemberPool.closeExpired), not by a timer per release.
    this.idleSince = performance.now();
    this.idleLimitMs = Math.max(1, Math.min(this.settings.keepAliveTimeoutMs, this.memberKeepAliveMs - KEEPALIVE_MARGIN_MS));
    this.pool.release(this);
  }

  private onData(d: Buffer): void {
    if (this.handler === undefined) {
      // Bytes nobody asked for (on an idle connection, or after the exchange was abandoned).
      this.socket.destroy();
      return;
    }
    const h = this.handler;
    const r = this.parser.execute(d);
    if (typeof r !== 'number') {
      const e = r as ParseError;
      this.fail(e.code ?? 'HPE_UNKNOWN', e.reason ?? e.message);
    }
    h.onReadEnd();
  }

  private onTimeout(): void {
    switch (this.phase) {
      case 'connect':
        return this.fail('CONNECT_TIMEOUT', `no connection within ${this.settings.connectTimeoutMs} ms`);
      case 'head':
        return this.fail('HEADERS_TIMEOUT', `no response head within ${this.settings.firstByteTimeoutMs} ms`);
      case 'body':
        // A client that stops reading pauses us: back-pressure is not idleness (nor is the time
        // since a resume in the same turn of the event loop as this timer).
        if (this.paused || performance.now() - this.resumedAt < this.settings.idleTimeoutMs) {
          this.rearm(this.settings.idleTimeoutMs);
          return;
        }
        return this.fail('BODY_TIMEOUT', `response body idle for ${this.settings.idleTimeoutMs} ms`);
      case 'idle': {
        // The socket timer still runs the last exchange's timeout: an idle connection may stay until its keep-alive limit.
        const left = this.idleLimitMs - (performance.now() - this.idleSince);
        if (left >= 1) {
          this.rearm(Math.ceil(left));
          return;
        }
        this.socket.destroy();
      }
    }
  }

  private onEnd(): void {
    if (this.handler !== undefined && this.phase === 'body') {
      // Close-delimited body: its end is the end of the response.
      const r = this.parser.finish();
      if (r !== undefined) {
        this.fail((r as ParseError).code ?? 'ECONNRESET', 'member closed the connection mid-response');
        return;
      }
      if (this.complete) {
        this.socket.destroy();
        return;
      }
    }
    this.fail('ECONNRESET', 'member closed the connection');
  }

  private fail(code: string, message: string): void {
    const h = this.handler;
    this.handler = undefined;
    this.socket.destroy();
    h?.onFailure(code, message, this.responseBytes);
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    const h = this.handler;
    this.handler = undefined;
    h?.onFailure('ECONNRESET', 'member connection closed', this.responseBytes);
    this.pool.closed(this);
    this.parser.close?.();
  }
}

/** Reads `timeout=N` (seconds) of a Keep-Alive response header, in ms. */
function keepAliveTimeoutOf(headers: string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (isName(headers[i]!, 'keep-alive')) {
      const m = /timeout=(\d+)/i.exec(headers[i + 1]!);
      if (m) return Number(m[1]) * 1000;
    }
  }
  return Number.POSITIVE_INFINITY;
}

/** One member's connections: idle ones (most recent first), a count of open ones, and exchanges waiting for one. */
export class MemberPool {
  private readonly idle: MemberConnection[] = [];
  private open = 0;
  private readonly waiting: { handler: ResponseHandler; headRequest: boolean }[] = [];
  private closing = false;

  constructor(
    readonly member: Member,
    private settings: UpstreamSettings,
  ) {}

  private get limit(): number {
    return Math.max(1, Math.min(this.settings.connections, this.member.max));
  }

  /** Runs an exchange on an idle connection, a new one (`fresh` forces one), or when one frees up. */
  dispatch(handler: ResponseHandler, headRequest: boolean, fresh = false): void {
    if (!fresh && this.idle.length > 0) {
      const now = performance.now();
      let c: MemberConnection | undefined;
      while ((c = this.idle.pop()) !== undefined) {
        if (c.expired(now)) {
          c.abandon();
          continue;
        }
        c.start(handler, headRequest);
        return;
      }
    }
    if (this.open >= this.limit && !fresh) {
      this.waiting.push({ handler, headRequest });
      return;
    }
    this.connect(handler, headRequest);
  }

  private connect(handler: ResponseHandler, headRequest: boolean): void {
    this.open++;
    const c = new MemberConnection(this, this.member, this.settings);
    c.start(handler, headRequest);
  }

  release(c: MemberConnection): void {
    if (this.closing) {
      c.abandon();
      return;
    }
    const w = this.waiting.shift();
    if (w !== undefined) c.start(w.handler, w.headRequest);
    else this.idle.push(c);
  }

  closed(c: MemberConnection): void {
    this.open--;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    const w = this.waiting.shift();
    if (w !== undefined && !this.closing) this.connect(w.handler, w.headRequest);
  }

  /** Closes idle connections past their keep-alive (the pool set's sweep). */
  closeExpired(now: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i]!;
      if (c.expired(now)) {
        this.idle.splice(i, 1);
        c.abandon();
      }
    }
  }

  /** Drops a waiting exchange (its client left). */
  cancel(handler: ResponseHandler): void {
    const i = this.waiting.findIndex((w) => w.handler === handler);
    if (i >= 0) this.waiting.splice(i, 1);
  }

  updateSettings(s: UpstreamSettings): void {
    this.settings = s;
  }

  /** Closes idle connections now and busy ones as they finish. */
  close(): void {
    this.closing = true;
    for (const c of this.idle.splice(0)) c.abandon();
  }

  get openConnections(): number {
    return this.open;
  }
}

/** One pool per member; pools of removed members are closed. */
export class PoolSet {
  private readonly pools = new Map<Member, MemberPool>();
  private sweeper: NodeJS.Timeout | undefined;
  constructor(private settings: UpstreamSettings) {}

  get(member: Member): MemberPool {
    let p = this.pools.get(member);
    if (p === undefined) {
      p = new MemberPool(member, this.settings);
      this.pools.set(member, p);
      this.sweeper ??= setInterval(() => this.sweep(), IDLE_SWEEP_MS).unref();
    }
    return p;
  }

  /** Closes idle connections past their keep-alive: at most IDLE_SWEEP_MS late (a connection past it is never reused). */
  private sweep(): void {
    const now = performance.now();
    for (const p of this.pools.values()) p.closeExpired(now);
  }

  /** Closes the pools of members no longer configured. */
  prune(live: ReadonlySet<Member>): void {
    for (const [member, pool] of this.pools) {
      if (!live.has(member)) {
        this.pools.delete(member);
        pool.close();
      }
    }
  }

  updateSettings(settings: UpstreamSettings): void {
    this.settings = settings;
    // New settings apply to connections opened from now on.
    for (const p of this.pools.values()) p.updateSettings(settings);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
  }
}
