import type { BroadcastResult, ClusterChannel, MemberView, MembershipEvent, SendOptions } from '../cluster/types.js';

/** Members that hold sessions: every node except balancers that joined the membership to learn the nodes. */
export function holdsSessions(m: MemberView): boolean {
  return m.meta.role !== 'balancer';
}

/**
 * The cluster as session replication should see it: balancers that joined
 * the membership (role=balancer) are left out of members, membership events
 * and broadcasts, so they never receive deltas or state-transfer requests.
 */
export function sessionMembersView(inner: ClusterChannel): ClusterChannel {
  const members = () => inner.members().filter(holdsSessions);
  return {
    get self() {
      return inner.self;
    },
    members,
    onMembership: (listener: (e: MembershipEvent) => void) => inner.onMembership((e) => {
      if (holdsSessions(e.member)) listener(e);
    }),
    setMeta: (meta) => inner.setMeta(meta),
    handle: (topic, handler) => inner.handle(topic, handler),
    send: (to, topic, payload, options) => inner.send(to, topic, payload, options),
    async broadcast(topic: string, payload, options?: SendOptions): Promise<BroadcastResult> {
      const targets = members();
      const results = await Promise.allSettled(targets.map((m) => inner.send(m.id, topic, payload, options)));
      const ok: string[] = [];
      const failed: Record<string, string> = {};
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') ok.push(targets[i]!.id);
        else failed[targets[i]!.id] = (r.reason as Error)?.message ?? String(r.reason);
      });
      return { ok, failed };
    },
    request: (to, topic, payload, options) => inner.request(to, topic, payload, options),
    counters: () => inner.counters(),
    start: () => inner.start(),
    close: () => inner.close(),
    destroy: () => inner.destroy(),
  };
}
