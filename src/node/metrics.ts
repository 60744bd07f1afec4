import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { RegistryLike } from './app-metrics.js';
import type { ClusterNode } from '../cluster/index.js';
import type { RedisStats, ReplicatedSessionManager } from '../sessions/index.js';

/**
 * Prometheus metrics of a cluster node, in a Registry owned by this object.
 * Everything is read at scrape time from the cluster node and the session
 * manager — the same state `/.cohort/health` and `cohort members` show —
 * so the request path pays nothing. Names are documented in docs/metrics.md.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  /** prom-client's process and Node.js metrics (process_*, nodejs_*), unless the app's registry has them. */
  readonly defaults = new Registry();
  /** The app's prom-client default registry, merged into the output when it holds metrics (src/node/app-metrics.ts). */
  app: RegistryLike | undefined;

  constructor(
    route: string,
    cluster: () => ClusterNode | undefined,
    sessions: () => ReplicatedSessionManager | undefined,
    ready: () => boolean,
    lag: () => number | undefined = () => undefined,
    redis: () => RedisStats | undefined = () => undefined,
  ) {
    const reg = this.registry;
    reg.setDefaultLabels({ node: route });
    this.defaults.setDefaultLabels({ node: route });
    collectDefaultMetrics({ register: this.defaults });
    new Gauge({
      name: 'cohort_node_ready', help: '1 when the node is ready (state transfer done, taking traffic), else 0.', registers: [reg],
      collect() { this.set(ready() ? 1 : 0); },
    });
    new Gauge({
      name: 'cohort_node_replication_lag_seconds', help: 'Half the round trip of a probe through the same per-peer queue as the session deltas, to the slowest session peer.', registers: [reg],
      collect() { const l = lag(); if (l !== undefined) this.set(l / 1000); },
    });
    new Gauge({
      name: 'cohort_node_members', help: 'Members this node sees, by state (alive, suspect).', labelNames: ['state'] as const, registers: [reg],
      collect() {
        this.reset();
        const counts: Record<string, number> = { alive: 0, suspect: 0 };
        for (const m of cluster()?.members() ?? []) counts[m.state] = (counts[m.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
    type PeerCounters = ReturnType<ClusterNode['counters']>[string];
    /** Calls `emit(peerRoute, value)` for every peer with a value. */
    const eachPeer = (read: (c: PeerCounters) => number | undefined, emit: (peer: string, v: number) => void) => {
      const c = cluster();
      if (!c) return;
      const routes = new Map(c.members().map((m) => [m.id, m.route]));
      for (const [id, counters] of Object.entries(c.counters())) {
        const v = read(counters);
        if (v !== undefined) emit(routes.get(id) ?? id, v);
      }
    };
    const peer = (name: string, help: string, read: (c: PeerCounters) => number | undefined, type: 'counter' | 'gauge') => {
      if (type === 'counter') {
        new Counter({ name, help, labelNames: ['peer'] as const, registers: [reg], collect() { this.reset(); eachPeer(read, (p, v) => this.inc({ peer: p }, v)); } });
      } else {
        new Gauge({ name, help, labelNames: ['peer'] as const, registers: [reg], collect() { this.reset(); eachPeer(read, (p, v) => this.set({ peer: p }, v)); } });
      }
    };
    peer('cohort_node_peer_messages_received_total', 'Cluster messages received from the peer.', (c) => c.messagesIn, 'counter');
    peer('cohort_node_peer_messages_sent_total', 'Cluster messages sent to the peer.', (c) => c.messagesOut, 'counter');
    peer('cohort_node_peer_received_bytes_total', 'Cluster bytes received from the peer.', (c) => c.bytesIn, 'counter');
    peer('cohort_node_peer_sent_bytes_total', 'Cluster bytes sent to the peer.', (c) => c.bytesOut, 'counter');
    peer('cohort_node_peer_auth_failures_total', 'Frames or handshakes from the peer\'s address that failed authentication.', (c) => c.authFailures, 'counter');
    peer('cohort_node_peer_dropped_total', 'Messages to the peer dropped because its send queue was full.', (c) => c.dropped, 'counter');
    peer('cohort_node_peer_queue_depth', 'Messages waiting in the send queue to the peer.', (c) => c.queueDepth, 'gauge');
    peer('cohort_node_peer_rtt_seconds', 'Smoothed round-trip time to the peer.', (c) => (c.rttMs === undefined ? undefined : c.rttMs / 1000), 'gauge');
    new Counter({
      name: 'cohort_node_auth_failures_total', help: 'Connections closed because a handshake or frame failed authentication (outsiders included).', registers: [reg],
      collect() {
        this.reset();
        const c = cluster();
        if (c) this.inc(c.stats().authFailures);
      },
    });
    new Counter({
      name: 'cohort_node_cluster_refused_total', help: 'Cluster connections or identities refused, by reason: route (route conflict), version (another cluster protocol version).', labelNames: ['reason'] as const, registers: [reg],
      collect() {
        this.reset();
        const c = cluster();
        if (!c) return;
        const s = c.stats();
        this.inc({ reason: 'route' }, s.refused);
        this.inc({ reason: 'version' }, s.versionRefused);
      },
    });
    const sessionGauge = (name: string, help: string, read: (s: ReturnType<ReplicatedSessionManager['getStats']>) => number) =>
      new Gauge({ name, help, registers: [reg], collect() { const s = sessions(); if (s) this.set(read(s.getStats())); } });
    const sessionCounter = (name: string, help: string, read: (s: ReturnType<ReplicatedSessionManager['getStats']>) => number) =>
      new Counter({ name, help, registers: [reg], collect() { this.reset(); const s = sessions(); if (s) this.inc(read(s.getStats())); } });
    sessionGauge('cohort_node_sessions', 'Sessions this node holds (owned and copies).', (s) => s.sessions);
    sessionGauge('cohort_node_sessions_owned', 'Sessions this node owns.', (s) => s.owned);
    sessionCounter('cohort_node_deltas_sent_total', 'Session deltas sent to peers.', (s) => s.deltasSent);
    sessionCounter('cohort_node_deltas_applied_total', 'Session deltas received and applied.', (s) => s.deltasApplied);
    sessionCounter('cohort_node_deltas_stale_total', 'Deltas rejected because this node held a newer version.', (s) => s.staleRejected);
    sessionCounter('cohort_node_gap_repairs_total', 'Full copies requested because deltas arrived with a version gap.', (s) => s.gapRepairs);
    sessionCounter('cohort_node_session_conflicts_total', 'Session copies replaced by another write of the same version (both sides of a partition wrote it; the losing write is discarded).', (s) => s.conflictsResolved);
    sessionCounter('cohort_node_takeovers_total', 'Sessions this node took over from another route (JvmRouteBinderValve).', (s) => s.takeOvers);
    sessionCounter('cohort_node_sessions_expired_total', 'Sessions expired on this node.', (s) => s.expired);
    sessionCounter('cohort_node_replication_send_failures_total', 'Replication messages that could not be delivered.', (s) => s.sendFailures);
    sessionCounter('cohort_node_handoff_received_total', 'Sessions this node became the owner of through a leaving peer\'s graceful handoff.', (s) => s.handoffsReceived);
    new Gauge({
      name: 'cohort_node_handoff_sessions', help: 'This node\'s own graceful handoff (while it shuts down), sessions by result (handed, moved, failed).', labelNames: ['result'] as const, registers: [reg],
      collect() {
        this.reset();
        const h = sessions()?.getStats().lastHandoff;
        if (h) for (const result of ['handed', 'moved', 'failed'] as const) this.set({ result }, h[result]);
      },
    });
    // Redis mode (docs/redis.md): retries and failures of the store, by reason and code.
    new Counter({
      name: 'cohort_node_redis_operations_total', help: 'Redis operations (load, commit, touch, destroy, list) that succeeded, retries included.', registers: [reg],
      collect() { this.reset(); const r = redis(); if (r) this.inc(r.operations); },
    });
    new Counter({
      name: 'cohort_node_redis_retries_total', help: 'Redis commands retried, by reason (readonly, loading, cluster-down, try-again, redirect, master-down, connection).', labelNames: ['reason'] as const, registers: [reg],
      collect() { this.reset(); const r = redis(); if (r) for (const [reason, n] of Object.entries(r.retries)) this.inc({ reason }, n); },
    });
    new Counter({
      name: 'cohort_node_redis_failures_total', help: 'Redis operations that failed (the request saw COHORT_SESSION_STORE_FAILED), by COHORT_REDIS_* code.', labelNames: ['code'] as const, registers: [reg],
      collect() { this.reset(); const r = redis(); if (r) for (const [code, n] of Object.entries(r.failures)) this.inc({ code }, n); },
    });
    new Counter({
      name: 'cohort_node_redis_client_errors_total', help: 'Errors the Redis client reported in the background (lost connections, failed reconnects).', registers: [reg],
      collect() { this.reset(); const r = redis(); if (r) this.inc(r.clientErrors); },
    });
    sessionGauge('cohort_node_state_transfer_sessions', 'Sessions received by the last state transfer.', (s) => s.lastTransfer?.sessions ?? 0);
    sessionGauge('cohort_node_state_transfer_seconds', 'Duration of the last state transfer.', (s) => (s.lastTransfer?.ms ?? 0) / 1000);
  }

  /**
   * The text exposition: Cohort's metrics, the app's default registry (when
   * it holds any), and the process/Node.js defaults unless the app's registry
   * already exports them (prom-client's `collectDefaultMetrics()` in the app).
   */
  async render(): Promise<{ contentType: string; body: string }> {
    const parts = [await this.registry.metrics()];
    const app = this.app !== undefined && this.app.getMetricsAsArray().length > 0 ? this.app : undefined;
    if (app) parts.push(await app.metrics());
    if (!app?.getSingleMetric('process_cpu_user_seconds_total')) parts.push(await this.defaults.metrics());
    return { contentType: this.registry.contentType, body: parts.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('') };
  }
}
