import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { createClusterNode, publishSeenMembers, type ClusterNode, type ClusterNodeDeps } from '../cluster/index.js';
import { channelConfigFor } from '../config/cluster-section.js';
import { ReplicatedSessionManager, RedisSessionManager, defaultSessionBackends, type SessionBackendRegistry, type SessionManager, type TransferProgress } from '../sessions/index.js';
import { formatHostPort, forwardedClient, ipMatcher, isDirectLoopback, isLoopback } from '../util/address.js';
import { listenOn, trackConnections } from '../util/listen.js';
import { loadApp, type LoadedApp, type Listener } from './app-loader.js';
import { StoreSupply, wireAppSessions } from './app-sessions.js';
import { openMigration, type OpenedMigration } from '../sessions/http/migration-config.js';
import { newMigrationCounts } from '../sessions/http/migration.js';
import { registerMigrationMetric } from '../sessions/http/migration-metrics.js';
import { newSessionCookieCounts, registerSessionCookieMetric } from '../sessions/http/cookie-metrics.js';
import { usesClusterChannel, type NodeConfig } from './config.js';
import { sessionMembersView, holdsSessions } from './session-members.js';
import { NodeMetrics } from './metrics.js';
import { appDefaultRegistry } from './app-metrics.js';
import { DEFAULT_LOAD_CEILING, eventLoopUtilizationSampler, LoadReporter } from './load-report.js';
import { Throttle } from '../util/throttle.js';
import { StateMachine } from '../util/transitions.js';
import { sleep, systemClock, type Clock, type TimerHandle } from '../util/clock.js';

/** Paths the node answers itself, before the app. */
export const HEALTH_PATH = '/.cohort/health';
/** Liveness: 200 while the process runs and its event loop answers, ready or not (Kubernetes livenessProbe). */
export const LIVE_PATH = '/.cohort/live';
export const MEMBERS_PATH = '/.cohort/members';
export const METRICS_PATH = '/.cohort/metrics';

/** ms to wait for the first peer before starting alone; ms without a new peer before state transfer. */
const JOIN_WAIT_MS = 1_500;
const JOIN_QUIET_MS = 250;
/** ms between checks whether the published session count changed, and between replication-lag probes. */
const META_PUBLISH_MS = 2_000;
/**
 * Replication-lag probe: answered by every node. It travels the same ordered
 * per-peer queue as the session deltas, so deltas queued ahead of it count.
 */
const LAG_TOPIC = 'cohort.lag-probe';
/** ms between published state-transfer progress updates (at most 4 a second). */
const TRANSFER_PROGRESS_MS = 250;

/** What a node takes from its environment besides its config (tests replace it). */
export interface NodeRuntimeDeps {
  /** Event-loop utilization (0..1) since the previous call, for `loadReport`. */
  readonly utilization?: () => number;
  /** Injected into the cluster node (tests: a fake DNS resolver, UDP sockets, env). */
  readonly cluster?: Omit<ClusterNodeDeps, 'configFile'>;
  /** Timers and time of the runtime, its cluster node and its sessions (default the system clock). */
  readonly clock?: Clock;
  /** Session backends by `sessions.store` (default: replicated, redis). */
  readonly sessionBackends?: SessionBackendRegistry;
}

export enum NodeState {
  New = 'new',
  Starting = 'starting',
  Ready = 'ready',
  Stopping = 'stopping',
  Stopped = 'stopped',
}


/**
 * A cluster node running a user's app: its HTTP listener, its cluster
 * membership and channel, and its replicated sessions. Ready (health 200,
 * meta ready=true) only after state transfer; on close() it stops taking
 * traffic, finishes in-flight requests, flushes replication, hands the
 * sessions it owns over to the other nodes and leaves.
 */
export class NodeRuntime {
  /** new → starting → ready → stopping → stopped (guarded: util/transitions.ts; one log line per change). */
  private readonly life: StateMachine<NodeState>;
  get state(): NodeState {
    return this.life.state;
  }
  cluster: ClusterNode | undefined;
  sessions: SessionManager | undefined;
  private server: http.Server | undefined;
  private handler: Listener | undefined;
  private app: LoadedApp | undefined;
  private readonly sockets = new Set<Socket>();
  private closing: Promise<void> | undefined;
  private publishTimer: TimerHandle | undefined;
  private readonly clock: Clock;
  private readonly backends: SessionBackendRegistry;
  private loadReporter: LoadReporter | undefined;
  /** `sessions.migrate`'s opened old store (closed with the node). */
  private migration: OpenedMigration | undefined;
  private readonly utilization: () => number;
  private readonly clusterDeps: Omit<ClusterNodeDeps, 'configFile'>;
  readonly metrics: NodeMetrics;
  private readonly metricsFrom: (ip: string) => boolean;
  httpUrl = '';

  constructor(
    readonly config: NodeConfig,
    private readonly log: Logger,
    private readonly configFile?: string,
    deps: NodeRuntimeDeps = {},
  ) {
    this.life = new StateMachine<NodeState>('node-runtime', NodeState.New, (c) => this.log.info({ route: config.route, from: c.from, to: c.to }, `node ${c.from} -> ${c.to}`), () => config.route);
    this.metricsFrom = ipMatcher(config.metricsFrom);
    this.clock = deps.clock ?? deps.cluster?.clock ?? systemClock;
    this.backends = deps.sessionBackends ?? defaultSessionBackends();
    this.clusterDeps = { ...deps.cluster, clock: this.clock };
    this.utilization = deps.utilization ?? eventLoopUtilizationSampler();
    if (config.loadReport) this.loadReporter = new LoadReporter(config.loadfactor ?? DEFAULT_LOAD_CEILING, this.utilization);
    this.metrics = new NodeMetrics(
      config.route,
      () => this.cluster,
      () => this.replicated,
      () => this.state === NodeState.Ready,
      () => this.replicationLagMs,
      () => (this.sessions instanceof RedisSessionManager ? this.sessions.getStats() : undefined),
    );
  }

  async start(): Promise<void> {
    const cfg = this.config;
    this.life.transition([NodeState.New], NodeState.Starting);
    // 1. The HTTP listener first: its address is what the balancer learns.
    const server = http.createServer({ maxHeaderSize: 16384, requireHostHeader: true }, (req, res) => this.onRequest(req, res));
    server.keepAliveTimeout = 5_000;
    trackConnections(server, this.sockets);
    await listenOn(server, cfg.listen);
    this.server = server;
    const a = server.address() as AddressInfo;
    this.httpUrl = `http://${formatHostPort(a.address, a.port)}`;

    // 2. The cluster channel and membership (in Redis mode only when configured: usesClusterChannel).
    const channel = usesClusterChannel(cfg) ? channelConfigFor(cfg.cluster) : undefined;
    if (channel) {
      this.cluster = createClusterNode({
        route: cfg.route,
        ...channel,
        meta: { role: 'node', http: this.httpUrl, ready: 'false', ...this.initialLoadMeta() },
      }, { ...this.clusterDeps, configFile: this.configFile });
      this.cluster.handle(LAG_TOPIC, () => null);
      // What this node sees of the membership, for the dashboard's picture of every node's view.
      const joined = this.cluster;
      publishSeenMembers(joined, () => this.state === NodeState.Starting || this.state === NodeState.Ready);
      // A node of another protocol version (mid-rollout) is refused on both sides: say so, naming both versions.
      this.cluster.onError((e) => {
        if (e.code === 'COHORT_CLUSTER_VERSION') this.log.warn({ code: e.code, remote: e.remote, localVersion: e.localVersion, peerVersion: e.peerVersion }, e.message);
      });
      this.cluster.onMembership((e) => this.log.info({ event: e.type, member: e.member.route, ...('reason' in e ? { reason: e.reason } : {}) }, `member ${e.member.route} ${e.type}`));
      await this.cluster.start();
      await this.settleMembership();
    }

    // 3. Sessions: state transfer happens in start().
    const logger = {
      debug: (o: object, m: string) => this.log.debug(o, m),
      info: (o: object, m: string) => this.log.info(o, m),
      warn: (o: object, m: string) => this.log.warn(o, m),
      error: (o: object, m: string) => this.log.error(o, m),
    };
    // The backend registry builds the manager from the validated `sessions` section; readiness is published here (step 5).
    // Redis mode may run without a channel (usesClusterChannel); its manager then takes the route from here.
    this.sessions = this.backends.build(cfg.sessions, { ...(this.cluster ? { channel: sessionMembersView(this.cluster) } : {}), route: cfg.route, clock: this.clock, logger, publishReady: false }, this.configFile);
    // 4. The app, wrapped with sessions. (`cohort node` sets COHORT_ROUTE for it: the process edge, cli/node-command.ts.)
    // An app that brings express-session / @fastify/session keeps it; Cohort supplies the store (app-sessions.ts).
    const supply = new StoreSupply(cfg.app, this.sessions);
    this.app = await loadApp(cfg.app);
    this.metrics.app = await appDefaultRegistry(cfg.app);
    // Cohort's req.session: express-session's options from the config (unset: its defaults), the migration, the counters on /.cohort/metrics.
    const s = cfg.sessions;
    const cookieCounts = newSessionCookieCounts();
    registerSessionCookieMetric(this.metrics.registry, cookieCounts);
    if (s.migrate) {
      const counts = newMigrationCounts();
      registerMigrationMetric(this.metrics.registry, counts);
      this.migration = await openMigration(s.migrate, counts, logger, this.configFile, this.clock);
    }
    const request = {
      ...(s.resave !== undefined ? { resave: s.resave } : {}),
      ...(s.saveUninitialized !== undefined ? { saveUninitialized: s.saveUninitialized } : {}),
      ...(this.migration ? { migrate: this.migration.options } : {}),
      cookieCounts,
    };
    const wired = await wireAppSessions(this.app, this.sessions, supply, { cookie: s.cookie ?? {}, logger, request });
    this.handler = wired.handler;
    this.log.info({ route: cfg.route, sessions: wired.mode, store: wired.store }, wired.message);
    const started = this.clock.now();
    const replicated = this.replicated;
    const cluster = this.cluster;
    cluster?.setMeta({ ...cluster.self.meta, transfer: 'running', ...(replicated ? { transferProgress: '0/0' } : {}) });
    // Progress while pages arrive ("received/total" sessions), at most every TRANSFER_PROGRESS_MS.
    let last: TransferProgress | undefined;
    const progress = new Throttle<TransferProgress>(this.clock, TRANSFER_PROGRESS_MS, (p) => {
      if (this.state === NodeState.Starting) cluster?.setMeta({ ...cluster.self.meta, transferProgress: `${p.received}/${p.total}` });
    });
    replicated?.on('transferProgress', (p: TransferProgress) => {
      last = p;
      progress.push(p);
    });
    try {
      // Resolves once the transfer is complete (retried while incomplete) or no peer is left to transfer from.
      await this.sessions.start();
    } finally {
      progress.cancel();
    }
    // closed while the transfer was still retrying
    if (!this.life.tryTransition([NodeState.Starting], NodeState.Ready)) return;
    const report = replicated?.getStats().lastTransfer;
    const transfer = report
      ? `${report.sessions} sessions in ${Math.round(report.ms)} ms${(report.attempts ?? 1) > 1 ? ` (${report.attempts} attempts)` : ''}${report.complete ? '' : ` (incomplete: ${report.gaveUp ?? 'timed out'})`}`
      : 'none';
    // The final count: everything announced arrived, or (incomplete) how far it got.
    const done: Record<string, string> = report ? { transferProgress: report.complete ? `${report.sessions}/${report.sessions}` : `${last?.received ?? 0}/${last?.total ?? 0}` } : {};
    cluster?.setMeta({ ...cluster.self.meta, ready: 'true', transfer, ...done, sessions: String(this.sessionCount() ?? 0) });
    this.schedulePublish();
    this.log.info({ route: cfg.route, http: this.httpUrl, cluster: channel && cluster ? `${channel.listen.host}:${cluster.self.channelAddress.port}` : 'none (Redis mode)', transferMs: Math.round(this.clock.now() - started) }, 'node ready');
  }

  /**
   * State transfer needs to know the peers, and discovery takes a moment:
   * wait for the first member to appear (up to `JOIN_WAIT_MS`; the first node
   * of a cluster waits that long), then until no new member has appeared for
   * `JOIN_QUIET_MS`.
   */
  private async settleMembership(): Promise<void> {
    const cluster = this.cluster!;
    const hasPeers = this.config.cluster.members.length > 0 || this.config.cluster.multicast !== false || this.config.cluster.dns !== undefined;
    if (!hasPeers) return;
    const started = this.clock.now();
    let lastChange = started;
    let count = cluster.members().length;
    while (this.clock.now() - started < JOIN_WAIT_MS) {
      await sleep(this.clock, 25);
      const n = cluster.members().length;
      if (n !== count) {
        count = n;
        lastChange = this.clock.now();
      }
      if (count > 0 && this.clock.now() - lastChange >= JOIN_QUIET_MS) break;
    }
    this.log.info({ members: cluster.members().map((m) => m.route), waitedMs: Math.round(this.clock.now() - started) }, 'membership settled');
  }

  /**
   * A new `loadfactor` at run time (SIGHUP; src/node/reload.ts): the published
   * weight, or with `loadReport` the idle ceiling. Published at once, also
   * while the state transfer runs; undefined stops publishing one.
   */
  setLoadfactor(loadfactor: number | undefined): void {
    this.config.loadfactor = loadfactor;
    if (this.config.loadReport) this.loadReporter = new LoadReporter(loadfactor ?? DEFAULT_LOAD_CEILING, this.utilization);
    const cluster = this.cluster;
    if (!cluster) return;
    const { loadfactor: _previous, load: _load, ...meta } = cluster.self.meta;
    cluster.setMeta({ ...meta, ...this.initialLoadMeta() });
  }

  /** The loadfactor published from the start: the configured one (or, reporting load, the idle ceiling). */
  private initialLoadMeta(): Record<string, string> {
    const lf = this.config.loadReport ? (this.config.loadfactor ?? DEFAULT_LOAD_CEILING) : this.config.loadfactor;
    return lf !== undefined ? { loadfactor: String(lf) } : {};
  }

  /** The session manager when sessions are replicated (not in Redis). */
  private get replicated(): ReplicatedSessionManager | undefined {
    return this.sessions instanceof ReplicatedSessionManager ? this.sessions : undefined;
  }

  private sessionCount(): number | undefined {
    return this.replicated?.getStats().sessions;
  }

  /** Last measured replication lag in ms (half the probe round trip to the slowest session peer). */
  replicationLagMs: number | undefined;

  /** Every META_PUBLISH_MS while ready: {@link publishLoad}. */
  private schedulePublish(): void {
    this.publishTimer = this.clock.setTimeout(() => {
      this.publishTimer = undefined;
      if (this.state !== NodeState.Ready) return;
      this.publishLoad();
      this.schedulePublish();
    }, META_PUBLISH_MS);
    this.publishTimer.unref?.();
  }

  private stopPublishing(): void {
    if (this.publishTimer) this.clock.clearTimeout(this.publishTimer);
    this.publishTimer = undefined;
  }

  /**
   * Publishes the session count and the replication lag in the cluster meta
   * (the dashboard shows them) when they changed noticeably.
   */
  private publishLoad(): void {
    const cluster = this.cluster;
    if (!cluster || this.state !== NodeState.Ready) return;
    const load = this.loadReporter?.sample();
    if (load) {
      cluster.setMeta({ ...cluster.self.meta, loadfactor: String(load.loadfactor), load: load.load });
      this.log.debug({ route: this.config.route, loadfactor: load.loadfactor, load: load.load }, 'reported a new loadfactor');
    }
    void this.probeLag().then(() => {
      if (this.state !== NodeState.Ready) return;
      const meta = { ...cluster.self.meta };
      let changed = false;
      const n = String(this.sessionCount() ?? 0);
      if (meta.sessions !== n) {
        meta.sessions = n;
        changed = true;
      }
      const lag = this.replicationLagMs;
      const shown = meta.replicationLagMs === undefined ? undefined : Number(meta.replicationLagMs);
      if (lag !== undefined && (shown === undefined || Math.abs(lag - shown) >= Math.max(1, shown * 0.2))) {
        meta.replicationLagMs = lag.toFixed(1);
        changed = true;
      }
      if (changed) cluster.setMeta(meta);
    });
  }

  private async probeLag(): Promise<void> {
    const cluster = this.cluster!;
    const peers = cluster.members().filter(holdsSessions);
    if (peers.length === 0) {
      this.replicationLagMs = undefined;
      return;
    }
    const rtts = await Promise.all(peers.map(async (m) => {
      const t0 = this.clock.now();
      try {
        await cluster.request(m.id, LAG_TOPIC, null, { timeoutMs: META_PUBLISH_MS });
        return this.clock.now() - t0;
      } catch {
        return undefined;
      }
    }));
    const measured = rtts.filter((x): x is number => x !== undefined);
    if (measured.length > 0) this.replicationLagMs = Math.max(...measured) / 2;
  }

  /** Loopback or `metricsFrom`; a request relayed by a proxy (a balancer on this host) counts as its original client. */
  private mayScrape(req: http.IncomingMessage): boolean {
    const direct = req.socket.remoteAddress ?? '';
    if (!isLoopback(direct) && !this.metricsFrom(direct)) return false;
    const via = forwardedClient(req.headers);
    return via === undefined || this.metricsFrom(via);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    if (isPath(url, LIVE_PATH)) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ route: this.config.route, state: this.state, live: true }));
      return;
    }
    if (isPath(url, HEALTH_PATH)) {
      const ready = this.state === NodeState.Ready;
      const body = JSON.stringify({
        route: this.config.route,
        state: this.state,
        ready,
        members: this.cluster?.members().map((m) => ({ route: m.route, state: m.state })) ?? [],
        sessions: this.sessionCount(),
        replicationLagMs: this.replicationLagMs,
        handoff: this.replicated?.getStats().lastHandoff,
      });
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store', ...(ready ? {} : { 'retry-after': '1' }) });
      res.end(body);
      return;
    }
    if (url === METRICS_PATH || (this.config.metricsPath !== false && isPath(url, this.config.metricsPath))) {
      if (!this.mayScrape(req)) {
        res.writeHead(403, { 'content-type': 'text/plain' });
        res.end('node metrics are served to loopback clients and node.metricsFrom only (not through a proxy unless the client is in node.metricsFrom)\n');
        return;
      }
      void this.metrics.render().then(({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(body);
      }, (err) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`metrics failed: ${(err as Error).message}\n`);
      });
      return;
    }
    if (url === MEMBERS_PATH) {
      if (!isDirectLoopback(req) || !this.cluster) {
        res.writeHead(403, { 'content-type': 'text/plain' });
        res.end('the members view is served to loopback clients only\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(this.cluster.snapshot()));
      return;
    }
    if (this.state !== NodeState.Ready || !this.handler) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1', connection: 'close' });
      res.end(`node ${this.config.route} is ${this.state}\n`);
      return;
    }
    this.handler(req, res);
  }

  /**
   * Graceful: stop being ready (the balancer stops sending new sessions), stop
   * accepting, finish in-flight requests within `shutdownTimeout`, flush
   * replication, hand the sessions owned here over to the surviving members
   * (within `sessions.replication.handoffTimeoutMs`), then leave the cluster.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // (after a destroy() the state stays stopped; the rest is idempotent)
      this.life.tryTransition([NodeState.New, NodeState.Starting, NodeState.Ready], NodeState.Stopping);
      this.stopPublishing();
      this.cluster?.setMeta({ ...this.cluster.self.meta, ready: 'false' });
      const server = this.server;
      if (server) {
        const closed = new Promise<void>((r) => server.close(() => r()));
        // Node closes only the keep-alive connections idle at close() time; one whose in-flight response ends
        // later (the balancer's pooled connections) would hold the stop up to its keep-alive timeout. So close
        // connections as they become idle (as the balancer's own close does).
        let sweeper: TimerHandle | undefined;
        const sweep = () => {
          server.closeIdleConnections();
          sweeper = this.clock.setTimeout(sweep, 50);
          sweeper.unref?.();
        };
        sweep();
        let t: TimerHandle | undefined;
        await Promise.race([closed, new Promise<void>((r) => { t = this.clock.setTimeout(r, this.config.shutdownTimeout * 1000); t.unref?.(); })]);
        if (t) this.clock.clearTimeout(t);
        if (sweeper) this.clock.clearTimeout(sweeper);
        for (const s of this.sockets) s.destroy();
      }
      // Hands the sessions this node owns over to the survivors (sessions.replication.handoffTimeoutMs), then leaves.
      await this.sessions?.close();
      await this.migration?.close().catch(() => undefined);
      if (this.app?.kind === 'fastify') await this.app.instance.close();
      await this.cluster?.close();
      this.life.tryTransition([NodeState.Stopping], NodeState.Stopped);
      const handoff = this.replicated?.getStats().lastHandoff;
      this.log.info({ route: this.config.route, ...(handoff ? { handoff } : {}) }, 'node stopped');
    })();
    return this.closing;
  }

  destroy(): void {
    this.stopPublishing();
    this.server?.close();
    for (const s of this.sockets) s.destroy();
    (this.sessions as { destroy?: () => void } | undefined)?.destroy?.();
    void this.migration?.close().catch(() => undefined);
    this.cluster?.destroy();
    this.life.tryTransition([NodeState.New, NodeState.Starting, NodeState.Ready, NodeState.Stopping], NodeState.Stopped);
  }
}

/** `url` is `path`, with or without a query string. */
function isPath(url: string, path: string): boolean {
  return url === path || (url.startsWith(path) && url.charCodeAt(path.length) === 63 /* ? */);
}
