/**
 * DNS membership (the Kubernetes headless-service case): a name resolved every
 * `intervalMs` (A, AAAA, both, or SRV). Each address found is only a candidate: the
 * node verifies it over the authenticated channel before it becomes a member.
 * A DNS answer alone never makes a member, and an address that disappears from
 * DNS is not removed (liveness is the channel's business).
 */
import { promises as dns } from 'node:dns';
import { CohortError } from '../errors.js';
import type { TimerHandle } from '../util/clock.js';
import { addressKey, type Address, type DiscoverySink, type MembershipContext, type MembershipService } from './membership.js';

export type DnsRecordType = 'A' | 'AAAA' | 'SRV';
/**
 * What the service asks for each round: one record type, or `A+AAAA` — both
 * address families, resolved in parallel and merged. In that mode a family
 * the name has no records of (ENODATA) is simply empty; the round fails only
 * if both lookups fail, and a failure of one family other than ENODATA is
 * reported while the other family's addresses are still used.
 */
export type DnsQueryType = DnsRecordType | 'A+AAAA';

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
  readonly rrtype: DnsQueryType;
  readonly port?: number | undefined;
  readonly intervalMs: number;
}

export class DnsMembership implements MembershipService {
  readonly type = 'dns';
  private timer: TimerHandle | undefined;
  private closed = false;
  private readonly resolver: DnsResolver;

  constructor(private readonly config: DnsMembershipConfig, private readonly ctx: MembershipContext<DnsMembershipDeps>) {
    this.resolver = ctx.deps.dnsResolver ?? systemDnsResolver;
  }

  async start(sink: DiscoverySink): Promise<void> {
    const port = this.config.port ?? this.ctx.self().channelAddress.port;
    const round = async (): Promise<void> => {
      if (this.closed) return;
      const types: readonly DnsRecordType[] = this.config.rrtype === 'A+AAAA' ? ['A', 'AAAA'] : [this.config.rrtype];
      const results = await Promise.allSettled(types.map((t) => this.resolver(this.config.name, t, port)));
      if (this.closed) return;
      const found = new Map<string, Address>();
      const failed: { type: DnsRecordType; err: unknown }[] = [];
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') for (const a of r.value) found.set(addressKey(a), a);
        else failed.push({ type: types[i]!, err: r.reason });
      });
      if (failed.length < types.length) sink.candidates([...found.values()], `dns ${this.config.name}`);
      // With both families, a name that has only one of them answers ENODATA for the other: not a failure.
      const reported = failed.length === types.length ? failed : failed.filter((f) => (f.err as { code?: unknown } | undefined)?.code !== 'ENODATA');
      if (reported.length > 0) {
        const what = reported.map((f) => (types.length > 1 ? `${f.type}: ` : '') + ((f.err as Error | undefined)?.message ?? String(f.err))).join('; ');
        sink.error(new CohortError('COHORT_DNS_FAILED', `resolving ${this.config.rrtype} ${this.config.name} failed: ${what}`, { cause: reported[0]!.err }));
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

/** What the DNS service takes besides its config. */
export interface DnsMembershipDeps {
  /** Default: node:dns (systemDnsResolver). */
  readonly dnsResolver?: DnsResolver;
}

export function createDnsMembership(config: DnsMembershipConfig, ctx: MembershipContext<DnsMembershipDeps>): MembershipService {
  return new DnsMembership(config, ctx);
}
