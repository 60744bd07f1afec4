import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { BalancerConfig, ListenerSpec } from '../config/balancer-schema.js';
import { Balancer } from '../balancer/balancer.js';
import { MethodRegistry } from '../balancer/methods/index.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { formatHostPort, parseHostPort, ipMatcher } from '../util/address.js';
import { listenOn, trackConnections } from '../util/listen.js';
import { silentLogger } from '../util/logger.js';
import { ConnectionBook, RequestProxy, respondPlain, type FinishedExchange, type Mount } from './forward.js';
import { PoolSet, undiciPoolFactory, type PoolFactory, type PoolSettings } from './pools.js';
import { HealthChecker } from './health-check.js';
import { proxyUpgrade } from './upgrade.js';
import { randomBytes } from 'node:crypto';
import { createClusterNode, publishSeenMembers, DEFAULT_LISTEN_PORT, type ClusterNode, type ClusterNodeDeps } from '../cluster/index.js';
import { channelConfigFor } from '../config/cluster-section.js';
import { BalancerDiscovery } from '../discovery/balancer-discovery.js';

export interface BalancerServerOptions {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly log?: Logger;
  /** Access log destination; undefined = no access log. */
  readonly accessLog?: Logger;
  readonly poolFactory?: PoolFactory;
  readonly methods?: MethodRegistry;
  readonly onFinish?: (e: FinishedExchange) => void;
  /** Injected into the cluster node of the `cluster` section (tests: a fake DNS resolver, UDP sockets, env). */
  readonly clusterDeps?: ClusterNodeDeps;
}

export interface ListeningAddress {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly url: string;
}

interface Listener {
  readonly spec: string;
  readonly server: http.Server;
  readonly tls: boolean;
}

/** How often unfinished request heads and bodies are checked against their timeouts, ms. */
const TIMEOUT_CHECK_INTERVAL_MS = 500;

function poolSettings(cfg: BalancerConfig): PoolSettings {
  return {
    ...upstreamTls(cfg),
    connectTimeoutMs: cfg.timeouts.connect * 1000,
    firstByteTimeoutMs: cfg.timeouts.firstbyte * 1000,
    idleTimeoutMs: cfg.timeouts.idle * 1000,
    keepAliveTimeoutMs: cfg.timeouts.keepalive * 1000,
    connections: cfg.limits.connections,
  };
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
  private proxy: RequestProxy;
  private listeners: Listener[] = [];
  private checkers = new Map<string, HealthChecker>();
  private closing: Promise<void> | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Client-connection state that outlives a reload's new RequestProxy. */
  private readonly connections = new ConnectionBook();
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
    this.pools = new PoolSet(poolSettings(config), options.poolFactory ?? undiciPoolFactory);
    this.tls = upstreamTls(config);
    this.proxy = this.makeProxy(config);
    this.applyBalancers(config);
  }

  get currentConfig(): BalancerConfig {
    return this.config;
  }

  private makeProxy(cfg: BalancerConfig): RequestProxy {
    return new RequestProxy({
      connections: this.connections,
      clock: this.clock,
      pools: this.pools,
      log: this.log,
      accessLog: this.options.accessLog,
      isTrusted: ipMatcher(cfg.trustedproxies),
      explain: cfg.explain,
      maxUrlLength: cfg.limits.maxurllength,
      bufferBodyLimit: 64 * 1024,
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
      preserveHost: false,
    }));
    this.proxy.setMounts(mounts);
    const live = new Set<string>();
    for (const b of this.balancers.values()) for (const m of b.members) live.add(m.key);
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
    const cfg = this.config;
    const serverOptions: http.ServerOptions = {
      maxHeaderSize: cfg.limits.maxheadersize,
      requireHostHeader: true,
      insecureHTTPParser: false,
      keepAliveTimeout: 65_000,
      headersTimeout: cfg.timeouts.headers * 1000,
      requestTimeout: cfg.timeouts.request * 1000,
      // How often Node enforces headersTimeout/requestTimeout; its default (30 s) let a
      // slowloris connection live up to 30 s past timeouts.headers.
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
      noDelay: true,
    };
    const server = tlsSpec
      ? https.createServer({ ...serverOptions, cert: readFileSync(tlsSpec.cert), key: readFileSync(tlsSpec.key) })
      : http.createServer(serverOptions);
    setHalfOpen(server, !cfg.abortonclose);
    const proto = tlsSpec ? 'https' : 'http';
    server.on('request', (req, res) => this.proxy.handle(req, res, proto));
    server.on('checkContinue', (req, res) => this.proxy.handle(req, res, proto, true));
    server.on('checkExpectation', (_req, res) => respondPlain(res, 417, 'unsupported Expect\n', true));
    server.on('connect', (_req, socket: net.Socket) => {
      socket.on('error', () => {});
      socket.end('HTTP/1.1 405 Method Not Allowed\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });
    server.on('upgrade', (req, socket, head) =>
      proxyUpgrade(req, socket, head, proto, {
        clock: this.clock,
        log: this.log,
        isTrusted: ipMatcher(this.config.trustedproxies),
        maxUrlLength: this.config.limits.maxurllength,
        connectTimeoutMs: this.config.timeouts.connect * 1000,
        firstByteTimeoutMs: this.config.timeouts.firstbyte * 1000,
        ...this.tls,
        matchMount: (p) => this.proxy.matchMount(p),
      }),
    );
    server.on('clientError', (err: NodeJS.ErrnoException & { bytesParsed?: number }, socket: net.Socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'HPE_HEADERS_TIMEOUT' ? '408 Request Timeout'
        : '400 Bad Request';
      this.log.info({ code: err.code, client: socket.remoteAddress }, 'malformed request refused');
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${status.length + 1}\r\n\r\n${status}\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
    });
    trackConnections(server, this.sockets);
    return { spec: address + (tlsSpec ? ' tls' : ''), server, tls: !!tlsSpec };
  }

  private listenerSpecs(): ListenerSpec[] {
    const l = this.config.listen;
    return Array.isArray(l) ? l : [l];
  }

  /** Opens every listener; resolves with the bound addresses (ephemeral ports resolved). */
  async start(): Promise<ListeningAddress[]> {
    for (const spec of this.listenerSpecs()) {
      const listener = this.createListener(spec);
      await listenOn(listener.server, typeof spec === 'string' ? spec : spec.address);
      this.listeners.push(listener);
    }
    this.startCheckers();
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
    const wanted = this.listenerSpecs().map((s) => ({ s, key: (typeof s === 'string' ? s : s.address) + (typeof s !== 'string' && s.tls ? ' tls' : '') }));
    const keep: Listener[] = [];
    for (const l of this.listeners) {
      if (wanted.some((w) => w.key === l.spec)) keep.push(l);
      else l.server.close();
    }
    this.listeners = keep;
    for (const w of wanted) {
      if (keep.some((l) => l.spec === w.key)) continue;
      const listener = this.createListener(w.s);
      await listenOn(listener.server, typeof w.s === 'string' ? w.s : w.s.address);
      this.listeners.push(listener);
    }
    // Existing listeners pick up the new proxy through the closure below.
    for (const l of this.listeners) {
      setHalfOpen(l.server, !next.abortonclose);
      l.server.removeAllListeners('request');
      l.server.removeAllListeners('checkContinue');
      const proto = l.tls ? 'https' : 'http';
      l.server.on('request', (req, res) => this.proxy.handle(req, res, proto));
      l.server.on('checkContinue', (req, res) => this.proxy.handle(req, res, proto, true));
    }
    this.startCheckers();
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
      const closed = Promise.all(this.listeners.map((l) => new Promise<void>((r) => l.server.close(() => r()))));
      // Node closes only the keep-alive connections idle at close() time; one that finishes its
      // in-flight response later would stay open until its keep-alive timeout and hold the exit up
      // to the deadline. So close connections as they become idle.
      const closeIdle = () => {
        for (const l of this.listeners) l.server.closeIdleConnections();
      };
      closeIdle();
      const sweeper = setInterval(closeIdle, 50);
      sweeper.unref();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closed, new Promise<void>((r) => { timer = setTimeout(r, deadlineMs); timer.unref(); })]);
      clearTimeout(timer);
      clearInterval(sweeper);
      for (const s of this.sockets) s.destroy();
      await this.pools.close();
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
    for (const s of this.sockets) s.destroy();
    await this.pools.destroy();
  }

  snapshot() {
    return [...this.balancers.values()].map((b) => b.snapshot());
  }
}

/**
 * abortonclose false: a client may half-close (shut down its write side) after a complete request and
 * still read the answer, as HTTP/1.1 allows (netcat, `curl -T - <&-`, some load generators). Node's
 * server aborts the in-flight request at the client's FIN unless `httpAllowHalfOpen` is set (a
 * long-standing property of http.Server); with it, the answer is written, then the connection closed.
 * The cost: a client that really left keeps its member slot until the member answers.
 */
function setHalfOpen(server: http.Server | https.Server, on: boolean): void {
  (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = on;
}
