/**
 * Static membership whose list SIGHUP can replace (`cohort node`,
 * `cluster.members`): like the library's StaticMembership (Tomcat's
 * StaticMember) it proposes every listed address again every `refreshMs`;
 * {@link ReloadableStaticMembers.set} swaps the list and proposes the new one
 * at once. A member removed from the list is no longer dialed; if it is
 * running it stays a member until it leaves or fails (the list says whom to
 * look for, not who may join: the secret or the TLS CA says that).
 */
import { createDnsMembership, createMulticastMembership, MembershipRegistry, parseHostPort, type Address, type ClusterNodeDeps, type DiscoverySink, type MembershipContext, type MembershipService, type StaticMembershipConfig } from '../cluster/index.js';
import type { TimerHandle } from '../util/clock.js';

class ReloadableStaticMembership implements MembershipService {
  readonly type = 'static';
  private timer: TimerHandle | undefined;
  private sink: DiscoverySink | undefined;
  private closed = false;

  constructor(private addrs: Address[], private readonly refreshMs: number, private readonly ctx: MembershipContext) {}

  async start(sink: DiscoverySink): Promise<void> {
    this.sink = sink;
    this.round();
  }

  replace(addrs: Address[]): void {
    this.addrs = addrs;
    if (this.sink && !this.closed) {
      if (this.timer) this.ctx.clock.clearTimeout(this.timer);
      this.round();
    }
  }

  private round(): void {
    if (this.closed || !this.sink) return;
    this.sink.candidates(this.addrs, 'static');
    this.timer = this.ctx.clock.setTimeout(() => this.round(), this.refreshMs);
    this.timer.unref?.();
  }

  close(): void {
    this.closed = true;
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
  }
}

/** The static member list of one node, replaceable at run time. */
export class ReloadableStaticMembers {
  private service: ReloadableStaticMembership | undefined;
  private current: readonly string[];

  constructor(initial: readonly string[]) {
    this.current = [...initial];
  }

  /**
   * A membership registry for the node's cluster: this list as `static`, the library's `dns` and
   * `multicast` with the same typed dependencies the default registry gives them
   * (cluster/channel-deps.ts `defaultMembershipRegistry`; default: the system's DNS and UDP).
   */
  registry(deps: Pick<ClusterNodeDeps, 'dnsResolver' | 'createUdpSocket'> = {}): MembershipRegistry {
    return new MembershipRegistry()
      .register('static', (config: StaticMembershipConfig, ctx: MembershipContext) => {
        this.current = [...config.members];
        this.service = new ReloadableStaticMembership(config.members.map(parseHostPort), config.refreshMs, ctx);
        return this.service;
      })
      .register('multicast', createMulticastMembership, deps.createUdpSocket ? { createUdpSocket: deps.createUdpSocket } : {})
      .register('dns', createDnsMembership, deps.dnsResolver ? { dnsResolver: deps.dnsResolver } : {});
  }

  /** Replaces the list; returns what changed. Addresses are host:port strings already validated by the schema. */
  set(members: readonly string[]): { added: string[]; removed: string[] } {
    const added = members.filter((m) => !this.current.includes(m));
    const removed = this.current.filter((m) => !members.includes(m));
    this.current = [...members];
    this.service?.replace(members.map(parseHostPort));
    return { added, removed };
  }
}
