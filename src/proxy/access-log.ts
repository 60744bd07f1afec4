import { openSync, write, writeSync, closeSync } from 'node:fs';
import type { Logger } from 'pino';

/**
 * The access log, cheap enough to leave on: one line per exchange, formatted
 * by hand (no object spread, no generic serializer), copied into a
 * preallocated buffer that is written asynchronously in large writes
 * (LineWriter below) and flushed at least every FLUSH_MS. Two formats: `json` (the
 * fields pino wrote before, same names) and `combined` (httpd's
 * LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"").
 * Session ids in URLs (`;jsessionid=` path parameters and query values) are
 * masked, their route suffix kept.
 */

/** One access log entry: what the request path knows when an exchange finishes. */
export interface AccessEntry {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly balancer: string;
  readonly member: string | undefined;
  readonly route: string | undefined;
  readonly reason: string | undefined;
  readonly attempts: number;
  readonly upstreamMs: number | undefined;
  /** Monotonic ms from the head to the end of the exchange. */
  readonly ms: number;
  /** Response body bytes sent to the client. */
  readonly bytes: number;
  /** The client: the connection's peer, or the first untrusted address of X-Forwarded-For when the peer is a trusted proxy. */
  readonly client: string;
  /** The sticky parameter name whose values are masked in `url` (e.g. "jsessionid"), and its route separator. */
  readonly sessionParam: string;
  readonly sessionSep: string;
  /** The request's raw headers (read only by the combined format: Referer, User-Agent) and version. */
  readonly rawHeaders: readonly string[];
  readonly httpVersion: string;
}

export interface AccessLog {
  write(e: AccessEntry): void;
  /** Writes out what is buffered. */
  flush(): void;
  /** Writes out what is buffered, synchronously (at exit). */
  close?(): void;
}

export type AccessLogFormat = 'json' | 'combined';

/** Buffered bytes that trigger a write; the buffer size; the longest a line waits, ms. */
// 128 KiB writes: at 30k lines/s (about 7 MB/s) that is some 55 writes a second; each asynchronous write costs
// the event loop a request to libuv's pool and a completion callback (in profiles with 32 KiB writes, the
// writes' share of the CPU was as large as formatting the lines).
const MIN_WRITE_BYTES = 128 * 1024;
const BUFFER_BYTES = 512 * 1024;
const FLUSH_MS = 500;
/** Lines kept while the destination is slower than the traffic; beyond this they are dropped (and counted). */
const MAX_BACKLOG_BYTES = 64 * 1024 * 1024;

/**
 * Appends lines to a preallocated buffer and writes it out asynchronously
 * (fs.write in libuv's pool) once MIN_WRITE_BYTES are in, while the next
 * lines fill a second buffer. Why not sonic-boom (pino's destination): it
 * appends to a string and measures it with Buffer.byteLength on every
 * write, which costs more per line the fuller its buffer — measured at about
 * a third more CPU per request with the log on.
 */
class LineWriter {
  private buf = Buffer.allocUnsafe(BUFFER_BYTES);
  private spare = Buffer.allocUnsafe(BUFFER_BYTES);
  private used = 0;
  private writing = false;
  /** Lines that did not fit while a write was in flight. */
  private backlog: Buffer[] = [];
  private backlogBytes = 0;
  dropped = 0;

  /** Swapped by a reopen (logrotate); an in-flight write keeps the descriptor it started on. */
  constructor(public fd: number) {}

  /** An asynchronous write is in flight. */
  get busy(): boolean {
    return this.writing;
  }

  /** `ascii`: the line has only ASCII characters (copied as latin1, a byte per character, no UTF-8 encoding). */
  append(line: string, ascii = false): void {
    const most = ascii ? line.length : line.length * 3;
    // Order: the buffer holds older lines than the backlog; while a backlog exists, lines join it.
    if (this.backlog.length === 0 && this.used + most > this.buf.length) this.flush();
    if (this.backlog.length > 0 || this.used + most > this.buf.length) {
      if (this.backlogBytes > MAX_BACKLOG_BYTES) {
        this.dropped++;
        return;
      }
      const b = Buffer.from(line);
      this.backlog.push(b);
      this.backlogBytes += b.length;
      return;
    }
    this.used += ascii ? this.buf.write(line, this.used, 'latin1') : this.buf.write(line, this.used);
    if (this.used >= MIN_WRITE_BYTES) this.flush();
  }

  /** Starts writing what is buffered, oldest first (unless a write is in flight; it continues when that one ends). */
  flush(): void {
    if (this.writing) return;
    if (this.used > 0) {
      const b = this.buf;
      const n = this.used;
      this.buf = this.spare;
      this.spare = b;
      this.used = 0;
      this.out(b, 0, n);
      return;
    }
    if (this.backlog.length > 0) {
      const b = Buffer.concat(this.backlog);
      this.backlog = [];
      this.backlogBytes = 0;
      this.out(b, 0, b.length);
    }
  }

  private out(b: Buffer, from: number, to: number): void {
    this.writing = true;
    write(this.fd, b, from, to - from, null, (err, written) => {
      if (err && (err as NodeJS.ErrnoException).code === 'EAGAIN') {
        setTimeout(() => this.out(b, from, to), 10).unref();
        return;
      }
      if (!err && from + written < to) return this.out(b, from + written, to);
      this.writing = false;
      if (this.used >= MIN_WRITE_BYTES || this.backlog.length > 0) this.flush();
    });
  }

  /**
   * Writes everything left synchronously (at exit). A write still in flight
   * carries older lines; it completes in the kernel, possibly after these.
   */
  flushSync(): void {
    const parts = [this.buf.subarray(0, this.used), ...this.backlog];
    this.backlog = [];
    this.used = 0;
    for (const p of parts) {
      let off = 0;
      while (off < p.length) {
        try {
          off += writeSync(this.fd, p, off, p.length - off);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        }
      }
    }
  }
}

/** An access log on a pino logger (one JSON object per exchange): tests and embedders that bring their own logger. */
export function pinoAccessLog(logger: Logger): AccessLog {
  return {
    write: (e) => logger.info({
      method: e.method, url: maskSessionIds(e.url, e.sessionParam, e.sessionSep), status: e.status, balancer: e.balancer, member: e.member, route: e.route,
      reason: e.reason, attempts: e.attempts, upstreamMs: e.upstreamMs, ms: Math.round(e.ms * 1000) / 1000, bytes: e.bytes, client: e.client,
    }),
    flush: () => logger.flush?.(),
  };
}

/** The engine's own access log to a file descriptor (1 = stdout) or a file path. */
export class BufferedAccessLog implements AccessLog {
  private readonly dest: LineWriter;
  private readonly ownFd: boolean;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private lastSecond = -1;
  private isoPrefix = '';
  private clfTime = '';

  private readonly path: string | undefined;

  constructor(destination: string | number, private readonly format: AccessLogFormat = 'json') {
    this.ownFd = typeof destination === 'string';
    this.path = typeof destination === 'string' ? destination : undefined;
    this.dest = new LineWriter(typeof destination === 'string' ? openSync(destination, 'a') : destination);
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  write(e: AccessEntry): void {
    // Combined lines escape everything outside printable ASCII (clfEscape); JSON lines are ASCII unless a field was not.
    if (this.format === 'json') {
      nonAscii = false;
      const line = this.json(e);
      this.dest.append(line, !nonAscii);
    } else this.dest.append(this.combined(e), true);
  }

  private json(e: AccessEntry): string {
    const now = Date.now();
    this.refreshTime(now);
    const ms = String(now % 1000).padStart(3, '0');
    let line = `{"level":30,"time":"${this.isoPrefix}${ms}Z","name":"cohort-access","method":${str(e.method)},"url":${str(maskSessionIds(e.url, e.sessionParam, e.sessionSep))},"status":${e.status},"balancer":${str(e.balancer)}`;
    if (e.member !== undefined) line += `,"member":${str(e.member)}`;
    if (e.route !== undefined) line += `,"route":${str(e.route)}`;
    if (e.reason !== undefined) line += `,"reason":${str(e.reason)}`;
    line += `,"attempts":${e.attempts}`;
    if (e.upstreamMs !== undefined) line += `,"upstreamMs":${ms3(e.upstreamMs)}`;
    return `${line},"ms":${ms3(e.ms)},"bytes":${e.bytes},"client":${str(e.client)}}\n`;
  }

  private combined(e: AccessEntry): string {
    this.refreshTime(Date.now());
    const referer = header(e.rawHeaders, 'referer') ?? '-';
    const agent = header(e.rawHeaders, 'user-agent') ?? '-';
    const request = `${e.method} ${maskSessionIds(e.url, e.sessionParam, e.sessionSep)} HTTP/${e.httpVersion}`;
    return `${e.client} - - [${this.clfTime}] "${clfEscape(request)}" ${e.status} ${e.bytes === 0 ? '-' : e.bytes} "${clfEscape(referer)}" "${clfEscape(agent)}"\n`;
  }

  /** Formats the time once per second, not once per line. */
  private refreshTime(now: number): void {
    const second = Math.floor(now / 1000);
    if (second === this.lastSecond) return;
    this.lastSecond = second;
    const d = new Date(second * 1000);
    this.isoPrefix = d.toISOString().slice(0, 20);
    this.clfTime = clfDate(d);
  }

  flush(): void {
    this.dest.flush();
  }

  /** Lines dropped because the destination could not keep up (more than 64 MiB behind). */
  get dropped(): number {
    return this.dest.dropped;
  }

  /**
   * Opens the file again by its path (after logrotate moved it: SIGUSR2) and writes on there; the old
   * descriptor is closed once no write is in flight. Throws when the path cannot be opened (the caller
   * warns and the log goes on into the old file). A no-op for stdout.
   */
  reopen(): void {
    if (this.path === undefined || this.closed) return;
    const fd = openSync(this.path, 'a');
    const old = this.dest.fd;
    this.dest.flush();
    this.dest.fd = fd;
    const closeOld = (): void => {
      if (this.dest.busy) {
        setTimeout(closeOld, 10).unref();
        return;
      }
      closeSync(old);
    };
    closeOld();
  }

  /** Writes everything out synchronously and stops the timer. */
  close(): void {
    clearInterval(this.timer);
    this.dest.flushSync();
    // A file of our own is closed, unless a write is still in flight (then it closes with the process).
    if (this.ownFd && !this.closed && !this.dest.busy) {
      this.closed = true;
      closeSync(this.dest.fd);
    }
  }
}

const NEEDS_ESCAPE = /["\\\x00-\x1f\x7f-\uffff]/;

/** A JSON string literal; JSON.stringify only when a character needs escaping. */
/** Set by str() when a field of the line being formatted has a character outside ASCII. */
let nonAscii = false;

function str(s: string): string {
  if (!needsEscape(s)) return `"${s}"`;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      nonAscii = true;
      break;
    }
  }
  return JSON.stringify(s);
}

/** NEEDS_ESCAPE.test(s) without the regular expression machinery (short ASCII fields on every line). */
function needsEscape(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x7f) return true;
  }
  return false;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * `String(round3(n))` from integers: the same text (at most three decimals,
 * no trailing zeros), without V8's shortest-double printing, which was the
 * largest cost of a JSON line.
 */
export function ms3(n: number): string {
  const t = Math.round(n * 1000);
  if (!(t >= 0 && t <= Number.MAX_SAFE_INTEGER)) return String(round3(n));
  const int = Math.floor(t / 1000);
  let frac = t - int * 1000;
  if (frac === 0) return `${int}`;
  let digits = 3;
  while (frac % 10 === 0) {
    frac /= 10;
    digits--;
  }
  return `${int}.${`${frac}`.padStart(digits, '0')}`;
}

/** httpd escapes quotes, backslashes and control characters in logged request lines and headers. */
function clfEscape(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(/["\\]/g, (c) => `\\${c}`).replace(/[\x00-\x1f\x7f-\uffff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`) : s;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `10/Oct/2000:13:55:36 +0000` (UTC, as httpd prints it with TZ=UTC). */
export function clfDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function header(raw: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === lower.length && raw[i]!.toLowerCase() === lower) return raw[i + 1];
  return undefined;
}

/** One compiled pattern per sticky parameter name. */
const MASKS = new Map<string, RegExp>();

/**
 * Masks session ids in a URL: the value of `;param=` path parameters and of
 * `param=` query parameters (case-insensitive) becomes `*`, keeping what follows
 * the route separator ("ABC123.tc1" → "*.tc1"), so the log still shows where
 * a session was routed without giving anyone its id.
 */
export function maskSessionIds(url: string, param: string, sep = '.'): string {
  if (param === '' || url.indexOf('=') < 0) return url;
  let re = MASKS.get(param);
  if (re === undefined) {
    re = new RegExp(`([;?&]${param.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=)([^;?&#/]*)`, 'gi');
    MASKS.set(param, re);
  }
  return url.replace(re, (_all, lead: string, value: string) => {
    const dot = value.indexOf(sep);
    return `${lead}*${dot >= 0 ? value.slice(dot) : ''}`;
  });
}
