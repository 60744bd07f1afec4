import type { Logger } from 'pino';
import type { Balancer } from '../balancer/balancer.js';
import type { ClusterChannel, MemberView, MembershipEvent } from '../cluster/types.js';
import { MemberState } from '../cluster/types.js';
import { DEFAULTS } from '../config/balancer-schema.js';

/**
 * The balancer learns the nodes (mod_cluster's idea): it joins the cluster's
 * membership as a member without sessions and adds or removes balancer
 * members as nodes join, become ready or leave — no config edit when a node
 * is added. A node publishes in its meta: `role=node`, `http=<its app URL>`,
 * `ready=true` once state transfer is done, and optionally `loadfactor`
 * (1..100), which the balancer applies.
 *
 * Members from the static configuration are never removed by discovery; a
 * discovered member whose route matches a configured one updates nothing but
 * its loadfactor.
 *
 * A reported loadfactor is applied when the node reports a new value (it may
 * change at run time: `loadReport`), not at every meta update, so a value an
 * operator set in the manager holds until the node reports a different one.
 */
export class BalancerDiscovery {
  /** Routes this object added (and may remove). */
  private readonly discovered = new Set<string>();
  /** Route → the loadfactor the node reported last (applied then). */
  private readonly reported = new Map<string, number>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly channel: Pick<ClusterChannel, 'members' | 'onMembership'>,
    private readonly balancer: Balancer,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.unsubscribe = this.channel.onMembership((e) => this.onEvent(e));
    for (const m of this.channel.members()) if (m.state !== MemberState.Gone) this.upsert(m);
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  private onEvent(e: MembershipEvent): void {
    switch (e.type) {
      case 'added':
      case 'back':
      case 'updated':
        this.upsert(e.member);
        break;
      case 'gone':
        this.reported.delete(e.member.route);
        this.remove(e.member, e.reason);
        break;
      case 'suspected':
        break;
    }
  }

  private upsert(node: MemberView): void {
    const meta = node.meta;
    if (meta.role !== 'node' || !meta.http) return;
    const existing = this.balancer.findMember(node.route);
    if (meta.ready !== 'true') {
      // Not ready (state transfer running, or shutting down): no new traffic.
      if (existing && this.discovered.has(node.route)) this.remove(node, 'node is not ready');
      return;
    }
    const lf = Number(meta.loadfactor);
    const loadfactor = Number.isInteger(lf) && lf >= 1 && lf <= 100 ? lf : undefined;
    const newReport = loadfactor !== undefined && this.reported.get(node.route) !== loadfactor;
    if (loadfactor !== undefined) this.reported.set(node.route, loadfactor);
    if (existing) {
      if (newReport && loadfactor !== undefined && existing.loadfactor !== loadfactor) {
        this.log.info({ balancer: this.balancer.name, member: node.route, from: existing.loadfactor, loadfactor }, 'node reported a new loadfactor');
        existing.configure({ loadfactor }, 'discovery');
      }
      if (this.discovered.has(node.route) && existing.url.origin !== new URL(meta.http).origin) {
        // Same route, new address (restarted elsewhere): replace it.
        this.balancer.removeMember(node.route);
        this.discovered.delete(node.route);
      } else return;
    }
    try {
      this.balancer.addMember({
        url: meta.http,
        route: node.route,
        loadfactor: loadfactor ?? 1,
        max: DEFAULTS.max,
        retry: 10,
        lbset: 0,
        status: [],
      });
      this.discovered.add(node.route);
      this.log.info({ balancer: this.balancer.name, member: node.route, url: meta.http }, 'node discovered and added');
    } catch (err) {
      this.log.warn({ member: node.route, err: (err as Error).message }, 'could not add a discovered node');
    }
  }

  private remove(node: MemberView, reason: string): void {
    if (!this.discovered.has(node.route)) return;
    this.discovered.delete(node.route);
    this.balancer.removeMember(node.route);
    this.log.info({ balancer: this.balancer.name, member: node.route, reason }, 'node left; removed');
  }
}
