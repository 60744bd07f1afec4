import type { ClusterChannel, MemberView, MembershipEvent } from '../cluster/types.js';
import { clusterEventTone } from './history-tone.js';
import { MemberState } from '../cluster/types.js';
import { parseSeenMembers, SEEN_META_KEY, type SeenMembers, type SeenState } from '../cluster/seen-members.js';
import type { Clock } from '../util/clock.js';
import type { DashboardSource, HistoryEntry } from './dashboard-source.js';
import { CLUSTER_PANEL_SCRIPT } from './dashboard-panel-cluster.js';
import { membershipMatrix, type MembershipMatrix } from './membership-matrix.js';

/** What the cluster panel reads: the narrow part of the cluster contract. */
export type ClusterView = Pick<ClusterChannel, 'self' | 'members' | 'onMembership' | 'counters'>;

/**
 * Node meta keys the panel shows when nodes publish them (besides the
 * contract's `role`, `http`, `ready`, `load`): `loadfactor`, `sessions`
 * (count), `replicationLagMs`, `transfer` ('running', then a summary such as
 * "500 sessions in 80 ms") and `transferProgress` ("received/total"
 * sessions). What a node sees of the membership (`sees`) is drawn as the
 * matrix instead.
 */
export const NODE_META_SHOWN = ['role', 'http', 'ready', 'load', 'loadfactor', 'sessions', 'replicationLagMs', 'transfer', 'transferProgress'] as const;

/** A node's state transfer, read from its meta: running (with progress) or finished. */
export interface TransferView {
  readonly state: 'running' | 'done' | 'incomplete';
  /** Sessions received so far. */
  readonly received: number;
  /** Sessions announced by the peers; 0 until the first page arrived. */
  readonly total: number;
  /** The node's own words (`transfer` meta). */
  readonly text: string;
}

/** Parses `transfer` and `transferProgress` meta; null when the node reports no transfer. Pure. */
export function parseTransfer(meta: Readonly<Record<string, string>>): TransferView | null {
  const text = meta.transfer;
  if (text === undefined || text === 'none') return null;
  const m = /^(\d{1,12})\/(\d{1,12})$/.exec(meta.transferProgress ?? '');
  const received = m ? Number(m[1]) : 0;
  const total = m ? Number(m[2]) : 0;
  const state = text === 'running' ? 'running' : text.includes('incomplete') ? 'incomplete' : 'done';
  return { state, received, total: Math.max(total, state === 'done' ? received : 0), text };
}

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
  /** State transfer (running with progress, or finished), when the node reports one. */
  readonly transfer: TransferView | null;
}

export interface ClusterPanelView {
  readonly attached: boolean;
  readonly cluster: string | null;
  readonly nodes: NodeRow[];
  /** Each node and what it sees of the membership. */
  readonly matrix: MembershipMatrix;
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
  /** Member id → its `ready` meta, to put readiness changes (not every meta update) in the history. */
  private readonly readiness = new Map<string, string | undefined>();

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
    const wasReady = this.readiness.get(m.id);
    if (e.type === 'gone') this.readiness.delete(m.id);
    else this.readiness.set(m.id, m.meta.ready);
    if (e.type === 'updated') {
      // Meta changes (sessions, lag, transfer progress, its view…) redraw the panel; only readiness is history.
      if (m.meta.role === 'node' && wasReady !== m.meta.ready && (wasReady !== undefined || m.meta.ready === 'true')) {
        this.record(m, m.meta.ready === 'true' ? 'ready' : 'not ready');
      } else {
        this.emit('update', this.view());
      }
      return;
    }
    const why = 'reason' in e ? ` (${e.reason})` : '';
    this.record(m, `${e.type}${why}`);
  }

  private record(m: MemberView, what: string): void {
    const entry: HistoryEntry = { at: this.wallNow(), balancer: this.attached?.self.clusterName ?? 'cluster', kind: 'transition', member: m.route, to: m.state, tone: clusterEventTone(what), text: `${m.route}: ${what}` };
    this.history.push(entry);
    if (this.history.length > this.historyLimit) this.history.splice(0, this.history.length - this.historyLimit);
    this.emit('state', { entry, ...this.view() });
  }

  private emit(type: string, data: unknown): void {
    for (const l of this.listeners) l(type, data);
  }

  private view(): ClusterPanelView {
    const ch = this.attached;
    if (!ch) return { attached: false, cluster: null, nodes: [], matrix: { columns: [], rows: [] } };
    const now = this.clock.now();
    const counters = ch.counters();
    const self = ch.self;
    const rows: NodeRow[] = [
      { id: self.id, route: self.route, state: 'alive', incarnation: self.incarnation, self: true, meta: pickMeta(self.meta), lastSeenAgoMs: 0, rttMs: null, queueDepth: null, messagesIn: null, messagesOut: null, transfer: null },
    ];
    const live = ch.members();
    const ids = new Set(live.map((m) => m.id));
    const all = [...live, ...[...this.gone.values()].filter((g) => !ids.has(g.id))];
    for (const m of all) {
      const c = counters[m.id];
      rows.push({
        id: m.id, route: m.route, state: m.state, incarnation: m.incarnation, self: false, meta: pickMeta(m.meta),
        lastSeenAgoMs: Math.max(0, Math.round(now - m.lastSeen)),
        rttMs: c?.rttMs ?? null, queueDepth: c?.queueDepth ?? null, messagesIn: c?.messagesIn ?? null, messagesOut: c?.messagesOut ?? null,
        transfer: parseTransfer(m.meta),
      });
    }
    // This balancer's own view comes from its channel, the others' from what they publish.
    const own: SeenMembers = { members: new Map(live.filter((m) => m.state !== MemberState.Gone).map((m) => [m.route, m.state as SeenState])), omitted: 0 };
    const matrix = membershipMatrix([
      { route: self.route, state: MemberState.Alive, self: true, sees: own },
      ...all.map((m) => ({ route: m.route, state: m.state, self: false, sees: parseSeenMembers(m.meta[SEEN_META_KEY]) })),
    ]);
    return { attached: true, cluster: self.clusterName, nodes: rows, matrix };
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
