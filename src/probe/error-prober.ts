/**
 * The sockets and timers of the error probe (policy: src/balancer/error-probe.ts):
 * one unref'd tick scans the balancers' members; a member without a health
 * check that is out after a connection failure is probed with `GET path`;
 * when the policy says so its retry time is cut short (Balancer.endRetryWait),
 * so its next request is the trial.
 */
import { Agent } from 'undici';
import { probeRequest } from '../proxy/health-check.js';
import type { Logger } from 'pino';
import type { Balancer } from '../balancer/balancer.js';
import type { Member } from '../balancer/member.js';
import { ErrorProbePolicy, type ErrorProbeSpec } from '../balancer/error-probe.js';
import type { Clock } from '../util/clock.js';

/** ms between scans for members due a probe. */
const TICK_MS = 250;

export class ErrorProber {
  private readonly policy: ErrorProbePolicy<Member>;
  private readonly agent: Agent;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    spec: ErrorProbeSpec,
    private readonly balancers: () => Iterable<Balancer>,
    private readonly clock: Clock,
    private readonly log: Logger,
    tls: { rejectUnauthorized: boolean; ca: string | undefined },
  ) {
    this.policy = new ErrorProbePolicy(spec);
    this.agent = new Agent({ connections: 2, pipelining: 1, connect: { timeout: spec.timeout * 1000, rejectUnauthorized: tls.rejectUnauthorized, ...(tls.ca ? { ca: tls.ca } : {}) } });
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  /** One scan (also called by tests). */
  tick(): void {
    const now = this.clock.now();
    for (const b of this.balancers()) {
      for (const m of b.members) {
        if (b.hcheckFor(m) !== false) continue; // health checks bring it back (rise), not the probe
        if (this.policy.begin(m, now)) void this.probe(b, m);
      }
    }
  }

  private async probe(b: Balancer, m: Member): Promise<void> {
    const spec = this.policy.spec;
    const { status, failure } = await probeRequest(this.agent, m.url, 'GET', spec.path, spec.timeout, 'cohort-errorprobe');
    const detail = `GET ${spec.path} → ${status ?? failure}`;
    if (this.closed) return;
    const now = this.clock.now();
    const outcome = this.policy.complete(m, status, now);
    if (outcome.kind === 'recover') {
      b.endRetryWait(m, now);
      this.log.info({ balancer: b.name, member: m.route, detail }, 'member answered the error probe: eligible again (its next request is the trial)');
    } else if (outcome.kind !== 'idle') {
      this.log.debug({ balancer: b.name, member: m.route, detail, outcome: outcome.kind }, 'error probe');
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    this.agent.destroy().catch(() => {});
  }
}
