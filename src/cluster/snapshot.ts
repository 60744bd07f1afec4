/**
 * Builds the snapshot of the members view: as JSON (admin API, dashboard) and as a text table
 * (`cohort members`). Reads the same in-memory state as everything else.
 */
import type { MemberInfo, MemberView, MembershipEvent, PeerCounters } from './types.js';

export interface ClusterStats {
  /** Connections closed because a handshake or frame failed authentication (outsiders included). */
  readonly authFailures: number;
  /** Connections that hung up during the handshake. */
  readonly handshakeAborted: number;
  /** Authenticated peers that sent an invalid envelope or frame. */
  readonly protocolErrors: number;
  /** Identities refused (route conflicts), either way. */
  readonly refused: number;
  /** Connections refused because the peer speaks another cluster protocol version (COHORT_CLUSTER_VERSION), either way. */
  readonly versionRefused: number;
  /** Messages dropped because a send queue was full. */
  readonly dropped: number;
  readonly connections: number;
  /** Acks and responses awaited. */
  readonly pending: number;
}

export interface TimedEvent {
  /** Wall-clock ms since epoch. */
  readonly at: number;
  readonly event: MembershipEvent;
}

export interface ClusterSnapshot {
  readonly self: MemberInfo;
  readonly state: string;
  readonly members: ReadonlyArray<MemberView & { readonly counters?: PeerCounters }>;
  readonly stats: ClusterStats;
  readonly events: ReadonlyArray<{ readonly at: number; readonly type: string; readonly id: string; readonly route: string; readonly reason?: string }>;
}

export function buildSnapshot(
  self: MemberInfo,
  state: string,
  members: readonly MemberView[],
  counters: Readonly<Record<string, PeerCounters>>,
  stats: ClusterStats,
  ring: readonly TimedEvent[],
): ClusterSnapshot {
  return {
    self,
    state,
    members: members.map((m) => (counters[m.id] ? { ...m, counters: counters[m.id]! } : { ...m })),
    stats,
    events: ring.map((e) => ({ at: e.at, type: e.event.type, id: e.event.member.id, route: e.event.member.route, ...('reason' in e.event ? { reason: e.event.reason } : {}) })),
  };
}

/** Formats a snapshot as the table `cohort members` prints. */
export function formatMembersTable(s: ClusterSnapshot): string {
  const rows: string[][] = [['ROUTE', 'ID', 'STATE', 'ADDRESS', 'INC', 'RTT ms', 'MSG IN/OUT', 'BYTES IN/OUT', 'AUTH FAIL', 'QUEUE', 'DROPPED']];
  rows.push([s.self.route, s.self.id.slice(0, 8), 'self', `${s.self.channelAddress.host}:${s.self.channelAddress.port}`, String(s.self.incarnation), '-', '-', '-', '-', '-', '-']);
  for (const m of [...s.members].sort((a, b) => a.route.localeCompare(b.route))) {
    const c = m.counters;
    rows.push([
      m.route,
      m.id.slice(0, 8),
      m.state,
      `${m.channelAddress.host}:${m.channelAddress.port}`,
      String(m.incarnation),
      c?.rttMs === undefined ? '-' : c.rttMs.toFixed(1),
      c ? `${c.messagesIn}/${c.messagesOut}` : '-',
      c ? `${c.bytesIn}/${c.bytesOut}` : '-',
      c ? String(c.authFailures) : '-',
      c ? String(c.queueDepth) : '-',
      c ? String(c.dropped) : '-',
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  lines.push(`cluster ${s.self.clusterName}: ${s.members.filter((m) => m.state !== 'gone').length} peers; auth failures ${s.stats.authFailures}, dropped ${s.stats.dropped}`);
  return lines.join('\n');
}

/** The node-wide counters its parts increment (a mutable part of {@link ClusterStats}). */
export type ChannelCounters = { -readonly [K in 'authFailures' | 'handshakeAborted' | 'protocolErrors' | 'refused' | 'versionRefused' | 'dropped']: number };
