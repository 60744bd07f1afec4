/**
 * Static membership (Tomcat's StaticMember): a fixed list of host:port peers,
 * proposed again every `refreshMs` so that peers started later, or restarted,
 * are found. Liveness comes from heartbeats over the channel.
 */
import type { TimerHandle } from '../util/clock.js';
import { parseHostPort } from '../util/address.js';
import { type Address, type DiscoverySink, type MembershipContext, type MembershipService } from './membership.js';

export interface StaticMembershipConfig {
  readonly type: 'static';
  readonly members: readonly string[];
  readonly refreshMs: number;
}

export class StaticMembership implements MembershipService {
  readonly type = 'static';
  private readonly addrs: Address[];
  private timer: TimerHandle | undefined;
  private closed = false;

  constructor(private readonly config: StaticMembershipConfig, private readonly ctx: MembershipContext) {
    this.addrs = config.members.map(parseHostPort);
  }

  async start(sink: DiscoverySink): Promise<void> {
    const round = (): void => {
      if (this.closed) return;
      sink.candidates(this.addrs, 'static');
      this.timer = this.ctx.clock.setTimeout(round, this.config.refreshMs);
      this.timer.unref?.();
    };
    round();
  }

  close(): void {
    this.closed = true;
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
  }
}

export function createStaticMembership(config: StaticMembershipConfig, ctx: MembershipContext): MembershipService {
  return new StaticMembership(config, ctx);
}
