/**
 * DNS membership (the Kubernetes headless-service case): a name resolved every
 * `intervalMs` (A, AAAA or SRV). Each address found is only a candidate: the
 * node verifies it over the authenticated channel before it becomes a member.
 * A DNS answer alone never makes a member, and an address that disappears from
 * DNS is not removed (liveness is the channel's business).
 */
import { promises as dns } from 'node:dns';
import { CohortError } from '../errors.js';
import type { TimerHandle } from '../util/clock.js';
import type { Address, DiscoverySink, MembershipContext, MembershipService } from './membership.js';

export type DnsRecordType = 'A' | 'AAAA' | 'SRV';

/** Resolves a name to channel addresses. Injectable (deps.dnsResolver) so tests can fake DNS. */
export type DnsResolver = (name: string, rrtype: DnsRecordType, defaultPort: number) => Promise<Address[]>;

export const systemDnsResolver: DnsResolver = async (name, rrtype, defaultPort) => {
  if (rrtype === 'SRV') return (await dns.resolveSrv(name)).map((r) => ({ host: r.name, port: r.port }));
  const hosts = rrtype === 'AAAA' ? await dns.resolve6(name) : await dns.resolve4(name);
  return hosts.map((host) => ({ host, port: defaultPort }));
};

export interface DnsMembershipConfig {
  readonly type: 'dns';
  readonly name: string;
  readonly rrtype: DnsRecordType;
  readonly port?: number | undefined;
  readonly intervalMs: number;
}

export class DnsMembership implements MembershipService {
  readonly type = 'dns';
  private timer: TimerHandle | undefined;
  private closed = false;
  private readonly resolver: DnsResolver;

  constructor(private readonly config: DnsMembershipConfig, private readonly ctx: MembershipContext) {
    this.resolver = (ctx.deps['dnsResolver'] as DnsResolver | undefined) ?? systemDnsResolver;
  }

  async start(sink: DiscoverySink): Promise<void> {
    const port = this.config.port ?? this.ctx.self().channelAddress.port;
    const round = async (): Promise<void> => {
      if (this.closed) return;
      try {
        const addrs = await this.resolver(this.config.name, this.config.rrtype, port);
        if (!this.closed) sink.candidates(addrs, `dns ${this.config.name}`);
      } catch (err) {
        sink.error(new CohortError('COHORT_DNS_FAILED', `resolving ${this.config.rrtype} ${this.config.name} failed: ${(err as Error).message}`, { cause: err }));
      }
      if (this.closed) return;
      this.timer = this.ctx.clock.setTimeout(() => void round(), this.config.intervalMs);
      this.timer.unref?.();
    };
    await round();
  }

  close(): void {
    this.closed = true;
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
  }
}

export function createDnsMembership(config: DnsMembershipConfig, ctx: MembershipContext): MembershipService {
  return new DnsMembership(config, ctx);
}
