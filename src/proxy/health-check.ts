import { request as undiciRequest, Agent } from 'undici';
import type { Balancer } from '../balancer/balancer.js';
import type { Member } from '../balancer/member.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from 'pino';

/** What one probe request got: the status (body read and dropped), or why there is none (an error code or message). */
export type ProbeResult = { readonly status: number; readonly failure?: undefined } | { readonly status?: undefined; readonly failure: string };

/**
 * One probe request to a member (a health check, the error probe): `method path`, answered within `timeoutS`
 * seconds (head and body), on the caller's agent. Never throws.
 */
export async function probeRequest(agent: Agent, base: URL, method: 'GET' | 'HEAD' | 'OPTIONS', path: string, timeoutS: number, userAgent: string): Promise<ProbeResult> {
  try {
    const res = await undiciRequest(new URL(path, base), {
      method,
      dispatcher: agent,
      headersTimeout: timeoutS * 1000,
      bodyTimeout: timeoutS * 1000,
      signal: AbortSignal.timeout(timeoutS * 1000),
      headers: { 'user-agent': userAgent },
    });
    await res.body.dump();
    return { status: res.statusCode };
  } catch (err) {
    const e = err as { code?: string; message: string };
    return { failure: e.code ?? e.message };
  }
}

/**
 * Active health checks (mod_proxy_hcheck / HAProxy `check`): for each member
 * with health checks (the balancer's `hcheck`, or the member's own over it), a request to a path every `interval`, with a
 * `timeout`; `fall` failures in a row take it out, `rise` passes bring it
 * back at once (not after `retry`). The counting rules live in
 * Member.recordCheck; this file only owns timers and sockets.
 */
export class HealthChecker {
  private timers = new Map<Member, NodeJS.Timeout>();
  private readonly agent: Agent;
  private closed = false;

  constructor(
    private readonly balancer: Balancer,
    private readonly clock: Clock,
    private readonly log: Logger,
    tls: { rejectUnauthorized: boolean; ca: string | undefined },
  ) {
    this.agent = new Agent({ connections: 4, pipelining: 1, connect: { rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca ? { ca: tls.ca } : {}) } });
  }

  /** (Re)starts checks for the balancer's current members. */
  sync(): void {
    if (this.closed) return;
    const live = new Set(this.balancer.members);
    for (const [m, t] of this.timers) {
      if (!live.has(m) || this.balancer.hcheckFor(m) === false) {
        clearTimeout(t);
        this.timers.delete(m);
      }
    }
    for (const m of live) {
      if (!this.timers.has(m) && this.balancer.hcheckFor(m) !== false) this.schedule(m, 0);
    }
  }

  private schedule(m: Member, delayMs: number): void {
    const t = setTimeout(() => void this.check(m), delayMs);
    t.unref();
    this.timers.set(m, t);
  }

  async check(m: Member): Promise<void> {
    const spec = this.balancer.hcheckFor(m);
    if (spec === false || this.closed || !this.balancer.members.includes(m)) return;
    let ok = false;
    let detail: string;
    const started = this.clock.now();
    const r = await probeRequest(this.agent, m.url, spec.method, spec.path, spec.timeout, 'cohort-hcheck');
    if (r.status !== undefined) {
      ok = spec.expect ? spec.expect.includes(r.status) : r.status >= 200 && r.status < 400;
      detail = `${spec.method} ${spec.path} → ${r.status} in ${Math.round(this.clock.now() - started)} ms`;
    } else {
      detail = `${spec.method} ${spec.path} → ${r.failure}`;
    }
    if (this.closed) return;
    const changed = m.recordCheck(ok, detail, spec.rise, spec.fall, this.clock.now(), Date.now());
    if (changed) this.log.warn({ balancer: this.balancer.name, member: m.route, ok, detail }, ok ? 'member passed health checks' : 'member failed health checks');
    // Check faster while the member's state is in doubt (HAProxy's fastinter idea).
    const inDoubt = (ok && m.checkPasses < spec.rise && m.health !== 'ok') || (!ok && m.checkFails < spec.fall);
    const interval = spec.interval * 1000;
    if (this.balancer.members.includes(m)) this.schedule(m, inDoubt ? Math.min(interval, 1000) : interval);
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.agent.destroy().catch(() => {});
  }
}
