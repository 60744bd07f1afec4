import type { Logger } from 'pino';
import type { Member } from '../balancer/member.js';
import type { Decision } from '../balancer/picker.js';
import type { StickyResult } from '../balancer/sticky.js';
import type { Clock } from '../util/clock.js';
import type { AccessLog } from './access-log.js';
import { upstreamPath, type Mount, type MountTable } from './mount.js';
import { classifyFailure, failureAnswer, isIdempotent, retrySafe, staleReplay, type Classified, type FailureAnswer } from './outcome.js';
import type { BodySink, ClientSide, IncomingRequest, ResponseSink } from './parse.js';
import { PAUSE_BODY } from './parse.js';
import { pick } from './pick.js';
import { clientFromChain, forwardingLines, headerLines, memberHeaders, responseHeadersForClient, type ReverseRule } from './rewrite.js';
import { routeOf } from './route.js';
import { isName } from './header-names.js';
import type { MemberConnection, PoolSet, ResponseHandler } from './upstream.js';

/**
 * Forwarding one request: pick a member, write the request on a pooled
 * connection, stream the answer back, fail over when the attempt failed and
 * a retry is safe and within budget. One Exchange per client request; one
 * Attempt per try on a member (late callbacks of a finished attempt are
 * ignored). Outcomes go to the balancer through `report` only.
 */

export interface ForwardDeps {
  readonly clock: Clock;
  readonly pools: PoolSet;
  readonly log: Logger;
  readonly accessLog: AccessLog | undefined;
  readonly isTrusted: (ip: string) => boolean;
  /** Bodies up to this size (bytes) are buffered so that the request can be retried. */
  readonly bufferBodyLimit: number;
  readonly onFinish?: (e: FinishedExchange) => void;
}

export interface FinishedExchange {
  readonly balancer: string;
  readonly member: string | undefined;
  readonly status: number;
  readonly durationMs: number;
  readonly upstreamMs: number | undefined;
  readonly attempts: number;
}

type BodyMode = 'none' | 'buffer' | 'stream';

/** One try of an exchange on one member: the member connection's handler. */
class Attempt implements ResponseHandler {
  upstream: MemberConnection | undefined;
  constructor(
    readonly ex: Exchange,
    readonly member: Member,
  ) {}

  private get live(): boolean {
    return this.ex.current === this && !this.ex.done;
  }

  onConnected(conn: MemberConnection): void {
    if (!this.live) return conn.abandon();
    this.upstream = conn;
    this.ex.send(this, conn);
  }

  onInformational(status: number, headers: string[]): void {
    if (this.live && status === 103) this.ex.earlyHints(headers);
  }

  onResponseHead(status: number, reason: string, headers: string[]): void {
    if (this.live) this.ex.responseHead(this, status, reason, headers);
  }

  onResponseData(chunk: Buffer): void {
    if (this.live) this.ex.responseData(this, chunk);
  }

  onResponseEnd(): void {
    if (this.live) this.ex.responseEnd();
  }

  onReadEnd(): void {
    if (this.live) this.ex.writer.flush();
  }

  onFailure(code: string, message: string, responseBytes: number): void {
    if (this.live) this.ex.attemptFailed(this, code, message, responseBytes);
  }
}

export class Exchange implements BodySink {
  readonly startedAt: number;
  readonly writer: ResponseSink;
  readonly balancer;
  attempts = 0;
  current: Attempt | undefined;
  member: Member | undefined;
  lastMember: Member | undefined;
  decision: Decision | undefined;
  sticky: StickyResult | undefined;
  exclude: Set<Member> | undefined;
  explainParts: string[] | undefined;
  reverse: ReverseRule | undefined;
  done = false;
  status = 0;
  upstreamMs: number | undefined;
  private attemptStartedAt = 0;
  private readonly path: string;
  /** The member request head after the request line and Host (headers and framing, ending in the blank line). */
  private readonly headRest: string;
  private readonly mode: BodyMode;
  private body: Buffer | undefined;
  private bodyChunks: Buffer[] | undefined;
  /** A byte of a streamed body went to a member: it cannot be sent again. */
  private bodyStarted = false;
  /** Streamed body bytes sent to members. */
  private bytesOut = 0;
  private expectContinue: boolean;
  private lastFailure: FailureAnswer | undefined;
  /** A stale keep-alive connection was already replayed once. */
  private replayed = false;

  constructor(
    readonly deps: ForwardDeps,
    readonly conn: ClientSide,
    readonly req: IncomingRequest,
    readonly mount: Mount,
    mounts: MountTable,
    target: string,
    explain: boolean,
  ) {
    // From the request's arrival (a pipelined request's wait behind earlier ones included, as a client sees it).
    this.startedAt = req.startedAt;
    this.writer = conn.responseFor(req);
    this.balancer = mount.balancer;
    const head = req.head;
    this.path = upstreamPath(mount, target);
    this.sticky = routeOf(head, target, mount.balancer);
    if (explain) this.explainParts = [];
    if (mount.reverse) this.reverse = mounts.reverseRule(mount);
    const ip = conn.remoteAddress;
    const info = { clientIp: ip, trusted: deps.isTrusted(ip), proto: conn.proto, host: head.host, preserveHost: mount.preserveHost };
    const kept: string[] = [];
    const client = memberHeaders(head.rawHeaders, info, false, kept);
    let rest = headerLines(kept) + forwardingLines(info, client, conn);
    if (head.chunked) rest += 'transfer-encoding: chunked\r\n';
    this.headRest = `${rest}\r\n`;
    this.expectContinue = head.expect === '100-continue';
    this.mode = !req.hasBody ? 'none' : !this.expectContinue && !head.chunked && head.contentLength <= deps.bufferBodyLimit ? 'buffer' : 'stream';
  }

  start(): void {
    this.balancer.requestStarted(this.startedAt);
    // A body that already failed to parse (with its head, in one read) is never forwarded.
    if (this.req.error !== undefined) return this.fail(400, 'request body was malformed or incomplete');
    if (this.mode === 'buffer') {
      // Small bodies are read whole first, so that a failed attempt can be retried elsewhere.
      this.bodyChunks = [];
      this.req.attach(this);
      return;
    }
    // Expect: 100-continue is answered once a member was picked, so that a client whose request
    // nobody can take gets its final status without sending the body (RFC 9110 §10.1.1).
    if (this.mode === 'stream') {
      this.req.hold();
      this.conn.pause(PAUSE_BODY);
    }
    this.attempt();
  }

  // --- the request body (BodySink) ---
  onBodyData(chunk: Buffer): void {
    if (this.bodyChunks !== undefined) {
      this.bodyChunks.push(chunk);
      return;
    }
    const up = this.current?.upstream;
    if (up === undefined) return;
    this.bodyStarted = true;
    this.bytesOut += chunk.length;
    let ok: boolean;
    if (this.req.head.chunked) {
      up.socket.cork();
      up.write(`${chunk.length.toString(16)}\r\n`);
      up.write(chunk);
      ok = up.write('\r\n');
      up.socket.uncork();
    } else ok = up.write(chunk);
    if (!ok) {
      this.conn.pause(PAUSE_BODY);
      up.socket.once('drain', () => this.conn.unpause(PAUSE_BODY));
    }
  }

  onBodyEnd(): void {
    if (this.bodyChunks !== undefined) {
      this.body = this.bodyChunks.length === 1 ? this.bodyChunks[0]! : Buffer.concat(this.bodyChunks);
      this.bodyChunks = undefined;
      this.req.detach();
      this.attempt();
      return;
    }
    const up = this.current?.upstream;
    if (up === undefined) return;
    if (this.req.head.chunked) up.write('0\r\n\r\n');
    up.requestDone();
  }

  onBodyError(code: string): void {
    if (this.done) return;
    this.bodyChunks = undefined;
    // The client's fault, not the member's: its attempt is dropped, its slot freed by finish().
    this.dropAttempt();
    this.deps.log.info({ client: this.conn.remoteAddress, code }, 'request body malformed or incomplete');
    this.fail(400, 'request body was malformed or incomplete');
  }

  // --- attempts ---
  private attempt(): void {
    pick(this.balancer, this.sticky?.route, this.exclude, (d) => this.dispatch(d), (err) => this.fail(500, `internal error: ${err.message}`));
  }

  private dispatch(d: Decision): void {
    if (this.done) {
      if (d.kind === 'pick') this.balancer.report(d.member, { kind: 'finished', bytesIn: 0, bytesOut: 0 });
      return;
    }
    this.decision = d;
    if (d.kind !== 'pick') {
      const last = this.lastFailure;
      if (last !== undefined) this.fail(last.status, `${last.detail}; no other member: ${d.detail}`, last.retryAfter);
      else this.fail(503, d.detail, true);
      return;
    }
    this.attempts++;
    this.explainParts?.push(`${d.member.route}: ${d.reason}`);
    this.run(d.member, false);
  }

  /** Sends the request to `member` (holding its slot); `fresh` forces a new connection. */
  private run(member: Member, fresh: boolean): void {
    this.member = member;
    if (this.expectContinue) {
      this.expectContinue = false;
      this.writer.writeContinue();
    }
    this.balancer.report(member, { kind: 'dispatched', bytesOut: this.body?.length ?? 0 });
    this.attemptStartedAt = this.deps.clock.now();
    const a = new Attempt(this, member);
    this.current = a;
    this.deps.pools.get(member).dispatch(a, this.req.head.method === 'HEAD', fresh);
  }

  /** The member connection is ready: write the request. */
  send(a: Attempt, up: MemberConnection): void {
    const m = a.member;
    const head = this.req.head;
    // ProxyPreserveHost keeps the client's Host in the forwarded headers (an HTTP/1.0 client may have sent none).
    const host = this.mount.preserveHost && head.host !== undefined ? '' : `host: ${m.url.host}\r\n`;
    const text = `${head.method} ${this.path} HTTP/1.1\r\n${host}${this.headRest}`;
    if (this.req.error !== undefined) {
      up.abandon();
      return this.onBodyError(this.req.error);
    }
    if (this.mode === 'stream') {
      up.write(text, 'latin1');
      // Chunks parsed so far flow now, later ones as they arrive; the client socket reads again.
      this.req.attach(this);
      this.conn.unpause(PAUSE_BODY);
      return;
    }
    if (this.body !== undefined) {
      up.socket.cork();
      up.write(text, 'latin1');
      up.write(this.body);
      up.socket.uncork();
    } else up.write(text, 'latin1');
    up.requestDone();
  }

  earlyHints(headers: string[]): void {
    const links: string[] = [];
    for (let i = 0; i < headers.length; i += 2) if (isName(headers[i]!, 'link')) links.push(headers[i + 1]!);
    this.writer.writeEarlyHints(links);
  }

  responseHead(a: Attempt, status: number, reason: string, raw: string[]): void {
    const now = this.deps.clock.now();
    this.upstreamMs = now - this.attemptStartedAt;
    const failed = this.balancer.report(a.member, { kind: 'response', status, latencyMs: this.upstreamMs }, now);
    if (failed) {
      // failonstatus: drop this answer and try another member, if that is safe.
      const f = classifyFailure('COHORT_FAILONSTATUS', `answered ${status}`);
      if (this.mayRetry(f)) {
        a.upstream?.abandon();
        this.retryAfterFailure(a.member, f, failureAnswer(f, a.member.route, status));
        return;
      }
    }
    this.status = status;
    const headers = responseHeadersForClient(raw, this.reverse, this.originOf);
    if (this.explainParts !== undefined) headers.push('x-cohort-explain', this.explainText());
    this.writer.writeHead(status, reason, headers, takeContentLength(headers));
  }

  responseData(a: Attempt, chunk: Buffer): void {
    if (!this.writer.write(chunk)) {
      const up = a.upstream!;
      up.pause();
      this.conn.onDrain = () => {
        this.conn.onDrain = undefined;
        up.resume();
      };
    }
  }

  responseEnd(): void {
    this.finish(this.writer.end());
  }

  private mayRetry(f: Classified): boolean {
    const safe = retrySafe({
      failure: f,
      responseStarted: this.writer.headSent,
      attempts: this.attempts,
      maxattempts: this.balancer.maxattempts,
      hasBody: this.req.hasBody,
      bodyReplayable: this.replayable,
      idempotent: isIdempotent(this.req.head.method),
    });
    return safe && this.balancer.grantRetry();
  }

  private get replayable(): boolean {
    return !this.req.hasBody || this.body !== undefined || !this.bodyStarted;
  }

  /** The attempt failed before or during the response. */
  attemptFailed(a: Attempt, code: string, message: string, responseBytes: number): void {
    const member = a.member;
    this.current = undefined;
    const headSent = this.writer.headSent;
    if (!headSent && code !== 'CLIENT_BODY' && staleReplay({ code, reused: a.upstream?.reused ?? false, responseBytes, bodyReplayable: this.replayable, hasBody: this.req.hasBody, idempotent: isIdempotent(this.req.head.method), replayed: this.replayed })) {
      // A keep-alive connection the member had closed: once more on a fresh connection, same slot.
      this.replayed = true;
      if (this.mode === 'stream') this.req.hold();
      this.balancer.report(member, { kind: 'retried' });
      this.run(member, true);
      return;
    }
    const f = classifyFailure(code, message);
    this.explainParts?.push(`${member.route} failed: ${code}`);
    if (headSent) {
      // Mid-response: the client can only see the connection cut.
      this.balancer.report(member, { kind: 'failed', failure: f });
      this.member = undefined;
      this.lastMember = member;
      this.deps.log.warn({ member: member.route, code, err: message }, 'member failed mid-response');
      this.conn.destroy();
      this.finish(false);
      return;
    }
    const answer = failureAnswer(f, member.route);
    if (f.source !== 'client' && this.mayRetry(f)) {
      this.retryAfterFailure(member, f, answer);
      return;
    }
    this.balancer.report(member, { kind: 'failed', failure: f });
    this.member = undefined;
    this.lastMember = member;
    this.fail(answer.status, answer.detail, answer.retryAfter);
  }

  private retryAfterFailure(member: Member, f: Classified, answer: FailureAnswer): void {
    this.current = undefined;
    this.balancer.report(member, { kind: 'failed', failure: f });
    this.balancer.report(member, { kind: 'retried' });
    this.member = undefined;
    this.lastMember = member;
    (this.exclude ??= new Set()).add(member);
    // If no other member can take it, the client gets this failure's answer, not a bare "no member".
    this.lastFailure = answer;
    this.deps.log.info({ member: member.route, code: f.code, attempt: this.attempts }, 'retrying on another member');
    if (this.mode === 'stream') {
      this.req.hold();
      this.conn.pause(PAUSE_BODY);
    }
    this.attempt();
  }

  fail(status: number, detail: string, retryAfter = false): void {
    if (this.done) return;
    this.status = status;
    if (status >= 500) this.deps.log.warn({ balancer: this.balancer.name, status, detail, url: this.req.head.url }, 'request failed');
    if (this.writer.headSent) {
      this.conn.destroy();
      this.finish(false);
      return;
    }
    const extra: Record<string, string> = {};
    if (retryAfter) extra['retry-after'] = '1';
    if (this.explainParts !== undefined) extra['x-cohort-explain'] = this.explainText();
    // The unread rest of a body must not be parsed as further requests: such a connection ends.
    const close = this.req.hasBody && !this.req.ended;
    this.writer.plain(status, `${statusText(status)}: ${detail}\n`, close, extra);
    this.finish(!close);
  }

  /** The client left: free the slot, stop the member's work; the member did nothing wrong. */
  clientGone(): void {
    if (this.done) return;
    this.dropAttempt();
    this.finish(false);
  }

  /** Stops the current attempt: its member connection is closed (or its wait for one cancelled). */
  private dropAttempt(): void {
    const a = this.current;
    if (a === undefined) return;
    this.current = undefined;
    if (a.upstream !== undefined) a.upstream.abandon();
    else this.deps.pools.get(a.member).cancel(a);
  }

  /** The balancer's origin as the client sees it, for ProxyPassReverse (asked only when a header needs it). */
  private readonly originOf = (): string => {
    const host = this.req.head.host;
    return host ? `${this.conn.proto}://${host}` : '';
  };

  explainText(): string {
    const d = this.decision;
    const parts = [
      `route=${this.sticky ? `${this.sticky.route} (${this.sticky.source})` : '-'}`,
      `member=${this.member?.route ?? '-'}`,
      `reason=${d?.kind === 'pick' ? d.reason : d?.kind ?? '-'}`,
      `attempts=${this.attempts}`,
    ];
    if (d) parts.push(`detail=${d.detail}`);
    if (this.explainParts!.length > 0) parts.push(`history=${this.explainParts!.join(' | ')}`);
    return parts.join('; ').replace(/[^\t\x20-\x7e]/g, '?');
  }

  private finish(reusable: boolean): void {
    if (this.done) return;
    this.done = true;
    // A member connection still ours (e.g. the member answered before the request body was all sent)
    // can never be reused cleanly: it is closed. One already back in its pool is left alone.
    this.current?.upstream?.closeIfOwnedBy(this.current);
    this.current = undefined;
    this.conn.onDrain = undefined;
    const member = this.member;
    if (member !== undefined) {
      this.balancer.report(member, { kind: 'finished', bytesIn: this.writer.bytes, bytesOut: this.bytesOut });
      this.member = undefined;
      this.lastMember = member;
    }
    const deps = this.deps;
    const durationMs = deps.clock.now() - this.startedAt;
    const status = this.status;
    deps.onFinish?.({ balancer: this.balancer.name, member: this.lastMember?.route, status, durationMs, upstreamMs: this.upstreamMs, attempts: this.attempts });
    const head = this.req.head;
    deps.accessLog?.write({
      method: head.method,
      url: head.url,
      status,
      balancer: this.balancer.name,
      member: this.lastMember?.route,
      route: this.sticky?.route,
      reason: this.decision?.kind === 'pick' ? this.decision.reason : this.decision?.kind,
      attempts: this.attempts,
      upstreamMs: this.upstreamMs,
      ms: durationMs,
      bytes: this.writer.bytes,
      client: clientFromChain(this.conn.remoteAddress, head.rawHeaders, deps.isTrusted),
      sessionParam: this.balancer.sticky.param,
      sessionSep: this.balancer.sticky.sep,
      rawHeaders: head.rawHeaders,
      httpVersion: `${head.versionMajor}.${head.versionMinor}`,
    });
    // Last: the member slot is free before the next pipelined request on this connection is picked.
    this.conn.done(this.req, reusable);
  }
}

/** Removes the member's Content-Length from the client headers and returns it (the writer frames the body). */
function takeContentLength(headers: string[]): string | undefined {
  for (let i = 0; i < headers.length; i += 2) {
    if (isName(headers[i]!, 'content-length')) {
      const v = headers[i + 1];
      headers.splice(i, 2);
      return v;
    }
  }
  return undefined;
}

function statusText(status: number): string {
  switch (status) {
    case 502: return 'Bad Gateway';
    case 503: return 'Service Unavailable';
    case 504: return 'Gateway Timeout';
    case 400: return 'Bad Request';
    default: return String(status);
  }
}
