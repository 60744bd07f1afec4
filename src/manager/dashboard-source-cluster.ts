import type { ClusterChannel, MemberView, MembershipEvent } from '../cluster/types.js';
import type { Clock } from '../util/clock.js';
import type { DashboardSource, HistoryEntry } from './dashboard-source.js';
import { CLUSTER_PANEL_SCRIPT } from './dashboard-panel-cluster.js';

/** What the cluster panel reads: the narrow part of the cluster contract. */
export type ClusterView = Pick<ClusterChannel, 'self' | 'members' | 'onMembership' | 'counters'>;

/**
 * Node meta keys the panel shows when nodes publish them (besides the
 * contract's `role`, `http`, `ready`, `load`): `sessions` (count),
 * `replicationLagMs`, `transfer` (state-transfer progress, e.g. "120/500").
 */
export const NODE_META_SHOWN = ['role', 'http', 'ready', 'load', 'loadfactor', 'sessions', 'replicationLagMs', 'transfer'] as const;

export interface NodeRow {
  readonly id: string;
  readonly route: string;
  readonly state: string;
  readonly incarnation: number;
  readonly self: boolean;
  readonly meta: Readonly<Record<string, string>>;
  readonly lastSeenAgoMs: number | null;
  readonly rttMs: number | null;
  readonly queueDepth: number | null;
  readonly messagesIn: number | null;
  readonly messagesOut: number | null;
}

function pickMeta(meta: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of NODE_META_SHOWN) if (meta[k] !== undefined) out[k] = meta[k];
  return out;
}

/**
 * The session cluster as the balancer sees it (it joins the membership to
 * learn the nodes): every node, its state (alive, suspect, gone), readiness
 * and what it publishes, the channel's per-peer round trip and queue, and
 * the history of membership changes. The channel may appear after the
 * manager starts (the balancer joins the cluster in its own start()), so it
 * is looked up lazily.
 */
export class ClusterSource implements DashboardSource {
  readonly id = 'cluster';
  readonly title = 'Session cluster';
  readonly clientScript = CLUSTER_PANEL_SCRIPT;
  readonly history: HistoryEntry[] = [];
  private readonly listeners = new Set<(type: string, data: unknown) => void>();
  private attached: ClusterView | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Members last seen gone, kept (for the picture) until the history forgets them. */
  private readonly gone = new Map<string, MemberView>();

  constructor(
    private readonly channel: () => ClusterView | undefined,
    private readonly clock: Clock,
    private readonly historyLimit: number,
    private readonly wallNow: () => number = Date.now,
  ) {
    this.attach();
  }

  private attach(): void {
    const ch = this.channel();
    if (!ch || ch === this.attached) return;
    this.unsubscribe?.();
    this.attached = ch;
    this.unsubscribe = ch.onMembership((e) => this.onEvent(e));
  }

  private onEvent(e: MembershipEvent): void {
    const m = e.member;
    if (e.type === 'gone') this.gone.set(m.id, m);
    else this.gone.delete(m.id);
    const why = 'reason' in e ? ` (${e.reason})` : '';
    const entry: HistoryEntry = { at: this.wallNow(), balancer: this.attached?.self.clusterName ?? 'cluster', kind: 'transition', member: m.route, to: m.state, text: `${m.route}: ${e.type}${why}` };
    this.history.push(entry);
    if (this.history.length > this.historyLimit) this.history.splice(0, this.history.length - this.historyLimit);
    this.emit('state', { entry, ...this.view() });
  }

  private emit(type: string, data: unknown): void {
    for (const l of this.listeners) l(type, data);
  }

  private view(): { attached: boolean; cluster: string | null; nodes: NodeRow[] } {
    const ch = this.attached;
    if (!ch) return { attached: false, cluster: null, nodes: [] };
    const now = this.clock.now();
    const counters = ch.counters();
    const self = ch.self;
    const rows: NodeRow[] = [
      { id: self.id, route: self.route, state: 'alive', incarnation: self.incarnation, self: true, meta: pickMeta(self.meta), lastSeenAgoMs: 0, rttMs: null, queueDepth: null, messagesIn: null, messagesOut: null },
    ];
    const live = ch.members();
    const ids = new Set(live.map((m) => m.id));
    for (const m of [...live, ...[...this.gone.values()].filter((g) => !ids.has(g.id))]) {
      const c = counters[m.id];
      rows.push({
        id: m.id, route: m.route, state: m.state, incarnation: m.incarnation, self: false, meta: pickMeta(m.meta),
        lastSeenAgoMs: Math.max(0, Math.round(now - m.lastSeen)),
        rttMs: c?.rttMs ?? null, queueDepth: c?.queueDepth ?? null, messagesIn: c?.messagesIn ?? null, messagesOut: c?.messagesOut ?? null,
      });
    }
    return { attached: true, cluster: self.clusterName, nodes: rows };
  }

  snapshot() {
    this.attach();
    return { ...this.view(), history: this.history };
  }

  tick(): void {
    this.attach();
    if (this.attached) this.emit('sample', { at: this.wallNow(), ...this.view() });
  }

  subscribe(listener: (type: string, data: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.listeners.clear();
  }
}
