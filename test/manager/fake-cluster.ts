import type { MemberView, MembershipEvent, PeerCounters } from '../../src/cluster/types.js';
import { MemberState } from '../../src/cluster/types.js';
import type { ClusterView } from '../../src/manager/dashboard-source-cluster.js';

/** A stand-in for the cluster channel: membership driven by the test. */
export class FakeCluster implements ClusterView {
  readonly self = { id: 'lb-self', route: 'lb-1', incarnation: 0, clusterName: 'cohort', channelAddress: { host: '127.0.0.1', port: 1 }, startTime: 0, meta: { role: 'balancer' } };
  private readonly view = new Map<string, MemberView>();
  private readonly listeners = new Set<(e: MembershipEvent) => void>();
  private readonly peerCounters: Record<string, PeerCounters> = {};

  members(): readonly MemberView[] {
    return [...this.view.values()].filter((m) => m.state !== MemberState.Gone);
  }
  onMembership(l: (e: MembershipEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  counters(): Readonly<Record<string, PeerCounters>> {
    return this.peerCounters;
  }

  /** Adds or updates a node and tells listeners. */
  put(route: string, state: MemberState, meta: Record<string, string> = {}, type: MembershipEvent['type'] = 'added'): void {
    const m: MemberView = { id: `id-${route}`, route, incarnation: 1, clusterName: 'cohort', channelAddress: { host: '127.0.0.1', port: 2 }, startTime: 0, meta, state, lastSeen: 0 };
    this.view.set(m.id, m);
    this.peerCounters[m.id] = { messagesIn: 1, messagesOut: 2, bytesIn: 3, bytesOut: 4, authFailures: 0, queueDepth: 0, dropped: 0, rttMs: 0.5 };
    const e = (type === 'gone' || type === 'suspected' ? { type, member: m, reason: 'test' } : { type, member: m }) as MembershipEvent;
    for (const l of this.listeners) l(e);
  }
}
