import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { BalancerConfig, ListenerSpec } from '../config/balancer-schema.js';
import { Balancer } from '../balancer/balancer.js';
import { MethodRegistry } from '../balancer/methods/index.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { formatHostPort, parseHostPort, ipMatcher } from '../util/address.js';
import { listenOn } from '../util/listen.js';
import { silentLogger } from '../util/logger.js';
import type { FinishedExchange } from './forward.js';
import type { Mount } from './mount.js';
import { ClientConnection } from './parse.js';
import { acceptWithReadBuffer, type ReadCallback } from './accept.js';
import { RequestPath } from './request-path.js';
import { H2Endpoint } from './h2.js';
import { PoolSet, type UpstreamSettings } from './upstream.js';
import { HealthChecker } from './health-check.js';
import { pinoAccessLog, type AccessLog } from './access-log.js';
import type { Member } from '../balancer/member.js';
import { randomBytes } from 'node:crypto';
import { createClusterNode, publishSeenMembers, DEFAULT_LISTEN_PORT, type ClusterNode, type ClusterNodeDeps } from '../cluster/index.js';
import { channelConfigFor } from '../config/cluster-section.js';
import { BalancerDiscovery } from '../discovery/balancer-discovery.js';

export interface BalancerServerOptions {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly log?: Logger;
  /** Access log destination (a pino logger, or the engine's own buffered log); undefined = no access log. */
  readonly accessLog?: Logger | AccessLog;
  readonly methods?: MethodRegistry;
  readonly onFinish?: (e: FinishedExchange) => void;
  /** Injected into the cluster node of the `cluster` section (tests: a fake DNS resolver, UDP sockets, env). */
  readonly clusterDeps?: ClusterNodeDeps;
  /**
   * `--workers N` (src/proxy/workers/): the state owner runs no listeners (false), a
   * worker engine runs no health checks (false). Both default to true (one engine).
   */
  readonly listeners?: boolean;
  readonly healthChecks?: boolean;
}

export interface ListeningAddress {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly url: string;
}

interface Listener {
  readonly spec: string;
  readonly server: net.Server;
  readonly tls: boolean;
}

/** How often client connections are checked against timeouts.headers, timeouts.request and the keep-alive idle time, ms. */
const TIMEOUT_CHECK_INTERVAL_MS = 500;
/** How long an idle client keep-alive connection stays open, ms (node:http's 5 s is shorter than most clients' reuse). */
const CLIENT_KEEPALIVE_MS = 65_000;

function poolSettings(cfg: BalancerConfig): UpstreamSettings {
  return {
    ...upstreamTls(cfg),
    connectTimeoutMs: cfg.timeouts.connect * 1000,
    firstByteTimeoutMs: cfg.timeouts.firstbyte * 1000,
    idleTimeoutMs: cfg.timeouts.idle * 1000,
    keepAliveTimeoutMs: cfg.timeouts.keepalive * 1000,
    connections: cfg.limits.connections,
    maxHeaderSize: cfg.limits.maxheadersize,
  };
}

function toAccessLog(l: Logger | AccessLog | undefined): AccessLog | undefined {
  if (l === undefined) return undefined;
  return 'write' in l && typeof l.write === 'function' ? (l as AccessLog) : pinoAccessLog(l as Logger);
}

/** TLS settings for every connection to members: pools, health checks and WebSocket upgrades alike. */
function upstreamTls(cfg: BalancerConfig): { rejectUnauthorized: boolean; ca: string | undefined } {
  return {
    rejectUnauthorized: cfg.upstreamtls.rejectunauthorized,
    ca: cfg.upstreamtls.ca !== undefined ? readFileSync(cfg.upstreamtls.ca, 'utf8') : undefined,
  };
}


/**
 * The balancer process: its listeners, balancers, mounts, health checks and
 * lifecycle (start, reload on SIGHUP, graceful close on SIGTERM, destroy).
 */
export class BalancerServer {
  readonly balancers = new Map<string, Balancer>();
  private readonly clock: Clock;
  private readonly random: Random;
  readonly log: Logger;
  private readonly methods: MethodRegistry;
  private readonly pools: PoolSet;
  private proxy: RequestPath;
  private listeners: Listener[] = [];
  private checkers = new Map<string, HealthChecker>();
  private closing: Promise<void> | undefined;
  /** Open client connections (they move to a reload's new RequestPath). */
  private readonly connections = new Set<ClientConnection>();
  private readonly accessLog: AccessLog | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private draining = false;
  /** HTTP/2 sessions of TLS listeners (ALPN h2). */
  private readonly h2: H2Endpoint;
  /** Upstream TLS settings of the current config, read once (not per upgrade). */
  private tls: { rejectUnauthorized: boolean; ca: string | undefined };
  /** Set when the balancer joined the cluster's membership (config `cluster`). */
  cluster: ClusterNode | undefined;
  private discovery: BalancerDiscovery | undefined;
  /** Stops publishing this balancer's view of the membership (meta `sees`). */
  private stopSeen: (() => void) | undefined;

  constructor(
    private config: BalancerConfig,
    private readonly options: BalancerServerOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.log = options.log ?? silentLogger();
    this.methods = options.methods ?? new MethodRegistry();
    this.pools = new PoolSet(poolSettings(config));
    this.accessLog = toAccessLog(options.accessLog);
    this.tls = upstreamTls(config);
    this.proxy = this.makeProxy(config);
    this.h2 = new H2Endpoint(this.proxy, () => this.clock.now(), CLIENT_KEEPALIVE_MS, config.limits.maxheadersize);
    this.applyBalancers(config);
  }

  get currentConfig(): BalancerConfig {
    return this.config;
  }

  private makeProxy(cfg: BalancerConfig): RequestPath {
    const isTrusted = ipMatcher(cfg.trustedproxies);
    return new RequestPath({
      clock: this.clock,
      pools: this.pools,
      log: this.log,
      accessLog: this.accessLog,
      isTrusted,
      explain: cfg.explain,
      maxUrlLength: cfg.limits.maxurllength,
      bufferBodyLimit: 64 * 1024,
      upgrade: {
        clock: this.clock,
        log: this.log,
        isTrusted,
        connectTimeoutMs: cfg.timeouts.connect * 1000,
        firstByteTimeoutMs: cfg.timeouts.firstbyte * 1000,
        ...this.tls,
      },
      ...(this.options.onFinish ? { onFinish: this.options.onFinish } : {}),
    });
  }

  private applyBalancers(cfg: BalancerConfig): void {
    const seen = new Set<string>();
    for (const spec of cfg.balancers) {
      seen.add(spec.name);
      let b = this.balancers.get(spec.name);
      if (b) b.reconfigure(spec);
      else {
        b = new Balancer(spec, this.methods, this.clock, this.random);
        b.on('transition', (t) => this.log.warn({ balancer: t.balancer, member: t.member, from: t.from, to: t.to, reason: t.reason }, `member ${t.member} ${t.from} → ${t.to}`));
        b.on('setting', (c) => this.log.info({ balancer: c.balancer, member: c.member, field: c.field, from: c.from, to: c.to, source: c.source }, `member ${c.member} ${c.field} ${c.from} → ${c.to} (${c.source})`));
        b.on('change', () => {
          this.checkers.get(b!.name)?.sync();
          this.refreshMounts();
        });
        this.balancers.set(spec.name, b);
      }
    }
    for (const [name] of this.balancers) {
      if (!seen.has(name)) {
        this.balancers.delete(name);
        this.checkers.get(name)?.close();
        this.checkers.delete(name);
      }
    }
    this.refreshMounts();
  }

  private refreshMounts(): void {
    const cfg = this.config;
    const mounts: Mount[] = (cfg.mounts ?? [{ path: '/', balancer: cfg.balancers[0]!.name, reverse: true }]).map((m) => ({
      path: m.path,
      balancer: this.balancers.get(m.balancer)!,
      upstream: m.upstream ?? m.path,
      reverse: m.reverse,
      preserveHost: m.preservehost ?? cfg.balancers.find((b) => b.name === m.balancer)?.preservehost ?? false,
    }));
    this.proxy.setMounts(mounts);
    const live = new Set<Member>();
    for (const b of this.balancers.values()) for (const m of b.members) live.add(m);
    this.pools.prune(live);
  }

  private startCheckers(): void {
    for (const b of this.balancers.values()) {
      let c = this.checkers.get(b.name);
      if (!c) {
        c = new HealthChecker(b, this.clock, this.log, this.tls);
        this.checkers.set(b.name, c);
      }
      c.sync();
    }
  }

  private createListener(spec: ListenerSpec): Listener {
    const address = typeof spec === 'string' ? spec : spec.address;
    const tlsSpec = typeof spec === 'string' ? undefined : spec.tls;
    // Half-open sockets: a client may shut down its write side after a complete request and still
    // read the answer (abortonclose false, the default), as HTTP/1.1 allows.
    const server = tlsSpec
      ? tls.createServer({ cert: readFileSync(tlsSpec.cert), key: readFileSync(tlsSpec.key), allowHalfOpen: true, ALPNProtocols: ['h2', 'http/1.1'] })
      : net.createServer({ allowHalfOpen: true, noDelay: true });
    if (tlsSpec) {
      server.on('secureConnection', (socket: tls.TLSSocket) => {
        // TLS clients that chose h2 by ALPN get HTTP/2; everyone else HTTP/1.1 (and 1.0).
        if (socket.alpnProtocol === 'h2' && !this.draining) this.h2.accept(socket);
        else this.accept(socket, 'https', undefined);
      });
      server.on('tlsClientError', (_err: Error, s: net.Socket) => s.destroy());
    }
    server.on('error', (err) => this.log.error({ err }, 'listener error'));
    return { spec: address + (tlsSpec ? ' tls' : ''), server, tls: !!tlsSpec };
  }

  /** Opens a listener; plain ones read client bytes into one shared buffer (accept.ts). */
  private async open(spec: ListenerSpec): Promise<Listener> {
    const listener = this.createListener(spec);
    await listenOn(listener.server, typeof spec === 'string' ? spec : spec.address);
    if (!listener.tls) {
      acceptWithReadBuffer(listener.server, true, (socket, setReader) => this.accept(socket, 'http', setReader), (err) => this.log.warn({ err }, 'accept failed'));
    }
    return listener;
  }

  private accept(socket: net.Socket, proto: 'http' | 'https', setReader: ((cb: ReadCallback) => void) | undefined): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    const cfg = this.config;
    const conn = new ClientConnection(socket, proto, this.proxy, { maxHeaderSize: cfg.limits.maxheadersize, abortOnClose: cfg.abortonclose }, () => this.clock.now(), setReader);
    this.connections.add(conn);
    socket.once('close', () => this.connections.delete(conn));
  }

  /** Checks every client connection against its timeouts (one timer for all, not one per socket). */
  private sweep(): void {
    const now = this.clock.now();
    const t = this.config.timeouts;
    const headersMs = t.headers * 1000;
    const requestMs = t.request * 1000;
    for (const c of this.connections) {
      if (c.active === undefined) {
        if (c.headStartedAt > 0 && now - c.headStartedAt > headersMs) c.refuse(408, 'Request Timeout');
        else if (c.headStartedAt === 0 && c.idleSince > 0 && (this.draining || now - c.idleSince > CLIENT_KEEPALIVE_MS)) c.destroy();
      } else if (requestMs > 0 && !c.active.ended && now - c.active.startedAt > requestMs) {
        if (!c.responding) c.refuse(408, 'Request Timeout');
        else c.destroy();
      }
    }
  }

  private listenerSpecs(): ListenerSpec[] {
    const l = this.config.listen;
    return Array.isArray(l) ? l : [l];
  }

  /** Opens every listener; resolves with the bound addresses (ephemeral ports resolved). */
  async start(): Promise<ListeningAddress[]> {
    this.sweeper ??= setInterval(() => this.sweep(), TIMEOUT_CHECK_INTERVAL_MS);
    this.sweeper.unref();
    for (const spec of this.options.listeners === false ? [] : this.listenerSpecs()) {
      this.listeners.push(await this.open(spec));
    }
    if (this.options.healthChecks !== false) this.startCheckers();
    await this.joinCluster();
    const addrs = this.addresses();
    this.log.info({ listen: addrs.map((a) => a.url), balancers: [...this.balancers.keys()] }, 'balancer started');
    return addrs;
  }

  /** Joins the session cluster as a member without sessions and learns the nodes from it. */
  private async joinCluster(): Promise<void> {
    const c = this.config.cluster;
    if (c === undefined) return;
    const balancer = this.balancers.get(c.balancer ?? this.config.balancers[0]!.name)!;
    // A/AAAA answers name hosts, not ports: dial the nodes on our own channel port, unless that is
    // ephemeral (the default), then on the nodes' default channel port.
    const dnsPort = parseHostPort(c.listen).port || DEFAULT_LISTEN_PORT;
    this.cluster = createClusterNode({
      route: `lb-${randomBytes(4).toString('hex')}`,
      ...channelConfigFor(c, dnsPort),
      meta: { role: 'balancer' },
    }, this.options.clusterDeps ?? {});
    await this.cluster.start();
    // Like the nodes, publish what this balancer sees of the membership (other balancers' dashboards draw it).
    this.stopSeen = publishSeenMembers(this.cluster);
    this.discovery = new BalancerDiscovery(this.cluster, balancer, this.log);
    this.discovery.start();
    this.log.info({ cluster: c.name, balancer: balancer.name, channel: this.cluster.self.channelAddress }, 'joined the cluster to learn the nodes');
  }

  addresses(): ListeningAddress[] {
    return this.listeners.map((l) => {
      const a = l.server.address() as net.AddressInfo;
      const url = `${l.tls ? 'https' : 'http'}://${formatHostPort(a.address, a.port)}`;
      return { host: a.address, port: a.port, tls: l.tls, url };
    });
  }

  /**
   * Applies a new configuration without dropping connections: balancers and
   * members are updated in place (members keep their state), listeners that
   * are no longer configured stop accepting, new ones open.
   */
  async reload(next: BalancerConfig): Promise<void> {
    this.config = next;
    this.pools.updateSettings(poolSettings(next));
    this.tls = upstreamTls(next);
    this.proxy = this.makeProxy(next);
    this.applyBalancers(next);
    // Listeners: re-bind what changed.
    const wanted = (this.options.listeners === false ? [] : this.listenerSpecs()).map((s) => ({ s, key: (typeof s === 'string' ? s : s.address) + (typeof s !== 'string' && s.tls ? ' tls' : '') }));
    const keep: Listener[] = [];
    for (const l of this.listeners) {
      if (wanted.some((w) => w.key === l.spec)) keep.push(l);
      else l.server.close();
    }
    this.listeners = keep;
    for (const w of wanted) {
      if (keep.some((l) => l.spec === w.key)) continue;
      this.listeners.push(await this.open(w.s));
    }
    // Open connections move to the new request path.
    for (const c of this.connections) c.setHandler(this.proxy);
    this.h2.setHandler(this.proxy);
    if (this.options.healthChecks !== false) this.startCheckers();
    this.log.info({ balancers: [...this.balancers.keys()] }, 'configuration reloaded');
  }

  /**
   * Graceful: stop accepting, let in-flight requests finish (idle keep-alive
   * connections are closed at once), destroy what's left after `deadlineMs`.
   */
  close(deadlineMs = this.config.timeouts.shutdown * 1000): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.checkers.values()) c.close();
      this.discovery?.stop();
      this.stopSeen?.();
      await this.cluster?.close();
      for (const l of this.listeners) l.server.close();
      // Stop accepting; idle keep-alive connections close at once, busy ones as they become idle.
      this.draining = true;
      this.h2.close();
      const closeIdle = () => {
        for (const c of this.connections) if (c.active === undefined) c.destroy();
      };
      closeIdle();
      const sweeper = setInterval(closeIdle, 50);
      sweeper.unref();
      let timer: NodeJS.Timeout | undefined;
      const allClosed = new Promise<void>((r) => {
        const check = setInterval(() => {
          if (this.connections.size === 0 && this.h2.openSessions === 0) {
            clearInterval(check);
            r();
          }
        }, 20);
        check.unref();
        timer = setTimeout(() => {
          clearInterval(check);
          r();
        }, deadlineMs);
        timer.unref();
      });
      await allClosed;
      clearTimeout(timer);
      clearInterval(sweeper);
      clearInterval(this.sweeper);
      for (const c of this.connections) c.destroy();
      this.h2.destroy();
      if (this.accessLog?.close) this.accessLog.close();
      else this.accessLog?.flush();
      this.pools.close();
      this.log.info('balancer stopped');
    })();
    return this.closing;
  }

  /** Immediate stop. Safe to call twice. */
  async destroy(): Promise<void> {
    for (const c of this.checkers.values()) c.close();
    this.discovery?.stop();
    this.stopSeen?.();
    this.cluster?.destroy();
    for (const l of this.listeners) l.server.close();
    clearInterval(this.sweeper);
    for (const c of this.connections) c.destroy();
    this.h2.destroy();
    this.pools.close();
    this.accessLog?.flush();
  }

  snapshot() {
    return [...this.balancers.values()].map((b) => b.snapshot());
  }
}

