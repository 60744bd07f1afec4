import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Balancer } from '../balancer/balancer.js';
import { MemberFlag, MemberHealth } from '../balancer/member.js';
import type { FinishedExchange } from '../proxy/forward.js';

/**
 * Prometheus metrics for the balancer, in a Registry owned by this object
 * (never prom-client's global one, so two balancers can live in one
 * process). Counters and gauges are read from the members' own counters at
 * scrape time — the same model the page and the API show; the latency
 * histogram and per-status counter are fed by the proxy's onFinish callback.
 * Every name is documented in docs/metrics.md.
 */
export const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const HEALTH_STATES = Object.values(MemberHealth);
const FLAGS = Object.values(MemberFlag);

export class BalancerMetrics {
  readonly registry = new Registry();
  private readonly duration: Histogram<'balancer' | 'member'>;
  private readonly responses: Counter<'balancer' | 'member' | 'code'>;

  /** `now`: the balancers' monotonic clock (ms), for the `usable` gauge. */
  constructor(balancers: () => Iterable<Balancer>, now: () => number = () => performance.now()) {
    const reg = this.registry;
    // prom-client's process_* and nodejs_* metrics (CPU, memory, event-loop lag, GC, handles), in this registry.
    collectDefaultMetrics({ register: reg });
    const memberCounter = (name: string, help: string, read: (m: Balancer['members'][number]) => number) =>
      new Counter({
        name, help, labelNames: ['balancer', 'member'] as const, registers: [reg],
        collect() {
          this.reset();
          for (const b of balancers()) for (const m of b.members) this.inc({ balancer: b.name, member: m.route }, read(m));
        },
      });
    memberCounter('cohort_balancer_member_requests_total', 'Requests sent to the member (attempts, including retries).', (m) => m.counters.requests);
    memberCounter('cohort_balancer_member_errors_total', 'Failed attempts on the member (connect error, reset, timeout, failonstatus).', (m) => m.counters.errors);
    memberCounter('cohort_balancer_member_retries_total', 'Attempts on the member that were retries of a failed attempt elsewhere.', (m) => m.counters.retries);
    memberCounter('cohort_balancer_member_sent_bytes_total', 'Request body bytes sent to the member.', (m) => m.counters.bytesOut);
    memberCounter('cohort_balancer_member_received_bytes_total', 'Response body bytes received from the member.', (m) => m.counters.bytesIn);

    new Gauge({
      name: 'cohort_balancer_member_busy', help: 'Requests in flight to the member now.', labelNames: ['balancer', 'member'] as const, registers: [reg],
      collect() {
        this.reset();
        for (const b of balancers()) for (const m of b.members) this.set({ balancer: b.name, member: m.route }, m.busy);
      },
    });
    new Gauge({
      name: 'cohort_balancer_member_loadfactor', help: 'The member\'s configured or operator-set loadfactor (1..100).', labelNames: ['balancer', 'member'] as const, registers: [reg],
      collect() {
        this.reset();
        for (const b of balancers()) for (const m of b.members) this.set({ balancer: b.name, member: m.route }, m.loadfactor);
      },
    });
    new Gauge({
      name: 'cohort_balancer_member_health', help: 'Member health: 1 for its current state (ok, error, check-failed, ejected), 0 for the others.', labelNames: ['balancer', 'member', 'state'] as const, registers: [reg],
      collect() {
        this.reset();
        for (const b of balancers()) for (const m of b.members) for (const s of HEALTH_STATES) this.set({ balancer: b.name, member: m.route, state: s }, m.health === s ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cohort_balancer_member_flag', help: 'Operator flags: 1 when set (disabled, drain, hot-standby, ignore-errors, stopped).', labelNames: ['balancer', 'member', 'flag'] as const, registers: [reg],
      collect() {
        this.reset();
        for (const b of balancers()) for (const m of b.members) for (const f of FLAGS) this.set({ balancer: b.name, member: m.route, flag: f }, m.flags.has(f) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cohort_balancer_member_usable', help: '1 when the member may take a new request now.', labelNames: ['balancer', 'member'] as const, registers: [reg],
      collect() {
        this.reset();
        const t = now();
        for (const b of balancers()) for (const m of b.members) this.set({ balancer: b.name, member: m.route }, m.usable(t) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'cohort_balancer_queued', help: 'Requests waiting for a free member slot now.', labelNames: ['balancer'] as const, registers: [reg],
      collect() {
        this.reset();
        for (const b of balancers()) this.set({ balancer: b.name }, b.queued);
      },
    });
    new Counter({
      name: 'cohort_balancer_unavailable_total', help: 'Requests answered 503 because no member could serve them.', labelNames: ['balancer'] as const, registers: [reg],
      collect() {
        this.reset();
        for (const b of balancers()) this.inc({ balancer: b.name }, b.unavailable);
      },
    });
    new Counter({
      name: 'cohort_balancer_queue_timeouts_total', help: 'Queued requests that waited `timeout` seconds without a free slot.', labelNames: ['balancer'] as const, registers: [reg],
      collect() {
        this.reset();
        for (const b of balancers()) this.inc({ balancer: b.name }, b.queueTimeouts);
      },
    });
    this.duration = new Histogram({
      name: 'cohort_balancer_request_duration_seconds', help: 'Client request duration through the balancer, by the member that answered last ("none" when none did).',
      labelNames: ['balancer', 'member'] as const, buckets: LATENCY_BUCKETS_S, registers: [reg],
    });
    this.responses = new Counter({
      name: 'cohort_balancer_responses_total', help: 'Responses to clients by status class (2xx, 3xx, 4xx, 5xx) and member.',
      labelNames: ['balancer', 'member', 'code'] as const, registers: [reg],
    });
  }

  /** Per-request hook (BalancerServer's onFinish). */
  observe(e: FinishedExchange): void {
    const member = e.member ?? 'none';
    this.duration.observe({ balancer: e.balancer, member }, e.durationMs / 1000);
    this.responses.inc({ balancer: e.balancer, member, code: `${Math.floor(e.status / 100)}xx` });
  }

  /** The text exposition format. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
