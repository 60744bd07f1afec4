/**
 * The cluster node: the {@link ClusterChannel} implementation. It wires the
 * socket edge (net.ts), connections (connection.ts), the failure detector and
 * a membership service, and implements send modes, request/response, bounded
 * per-peer queues, probes, heartbeats, identity exchange and route uniqueness.
 * Decisions about liveness live in the detector; this file moves bytes.
 */
import type { Socket } from 'node:net';
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { CohortError } from '../errors.js';
import { systemClock, systemRandom, type Clock, type Random, type TimerHandle } from '../util/clock.js';
import { parseClusterConfig, resolveSecret, type ClusterConfig } from './config.js';
import { Connection, ConnectionState, type CloseReason, type ConnectionSecurity } from './connection.js';
import { deriveClusterKeys, systemRandomBytes, type ClusterKeys, type RandomBytes } from './crypto.js';
import { encodeEnvelope, toMemberInfo, type Envelope } from './envelope.js';
import { FailureDetector } from './failure-detector.js';
import { addressKey, MembershipRegistry, type Address, type DiscoverySink, type MembershipService } from './membership.js';
import { createStaticMembership } from './membership-static.js';
import { createDnsMembership, type DnsResolver } from './membership-dns.js';
import { createMulticastMembership, type UdpSocketFactory } from './membership-multicast.js';
import { plainNet, tlsNet, type ListeningServer, type NetFactory } from './net.js';
import { Peer } from './peer.js';
import { buildSnapshot, type ClusterSnapshot, type ClusterStats, type TimedEvent } from './view.js';
import { MemberState, type BroadcastResult, type ClusterChannel, type JsonValue, type MemberInfo, type MemberView, type MembershipEvent, type MessageHandler, type PeerCounters, type SendOptions } from './types.js';

/** Topics under this prefix are the cluster layer's own. */
export const RESERVED_TOPIC_PREFIX = '__cohort.';
const PING = '__cohort.ping';
const PROBE = '__cohort.probe';
const EVENT_RING = 200;
const BLOCK_MS = 10_000;

/** A non-fatal problem reported by the node (it keeps running). */
export interface ClusterErrorEvent {
  readonly code: string;
  readonly message: string;
  /** Member id concerned, if known. */
  readonly peer?: string;
  /** Remote socket address, if relevant. */
  readonly remote?: string;
}

/** Everything the node takes from outside; all optional. */
export interface ClusterNodeDeps {
  readonly clock?: Clock;
  readonly random?: Random;
  readonly randomBytes?: RandomBytes;
  /** Wall clock for event timestamps and startTime (ms since epoch). */
  readonly wallClock?: () => number;
  /** Environment for COHORT_CLUSTER_SECRET; default process.env (read at creation, not import). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly net?: NetFactory;
  /** Membership services by type; default: static, multicast, dns. */
  readonly membershipRegistry?: MembershipRegistry;
  readonly dnsResolver?: DnsResolver;
  readonly createUdpSocket?: UdpSocketFactory;
  /** Source file name for config errors. */
  readonly configFile?: string;
}

/** A registry with the built-in membership services. */
export function defaultMembershipRegistry(): MembershipRegistry {
  return new MembershipRegistry().register('static', createStaticMembership).register('multicast', createMulticastMembership).register('dns', createDnsMembership);
}

enum NodeState {
  Created = 'created',
  Starting = 'starting',
  Running = 'running',
  Closing = 'closing',
  Closed = 'closed',
}

interface Pending {
  readonly peerId: string;
  readonly resolve: (v: JsonValue) => void;
  readonly reject: (e: Error) => void;
  readonly timer: TimerHandle;
  readonly sentAt: number;
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

/** Creates a cluster node from a (validated here) config. Throws COHORT_SECRET_MISSING without a secret or TLS. */
export function createClusterNode(config: unknown, deps: ClusterNodeDeps = {}): ClusterNode {
  const parsed = parseClusterConfig(config, deps.configFile);
  return new ClusterNode(parsed, deps);
}

export class ClusterNode implements ClusterChannel {
  readonly config: ClusterConfig;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly rnd: RandomBytes;
  private readonly wall: () => number;
  private readonly net: NetFactory;
  private readonly keys: ClusterKeys | undefined;
  private readonly security: ConnectionSecurity;
  private readonly registry: MembershipRegistry;
  private readonly deps: ClusterNodeDeps;
  private readonly detector: FailureDetector;
  private me: MemberInfo;
  private state = NodeState.Created;
  private server: ListeningServer | undefined;
  private membership: MembershipService | undefined;
  private readonly peers = new Map<string, Peer>();
  private readonly conns = new Set<Connection>();
  private readonly dials = new Map<string, () => void>();
  private readonly selfAddrs = new Set<string>();
  private readonly blocked = new Map<string, number>();
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly memberListeners = new Set<(e: MembershipEvent) => void>();
  private readonly errorListeners = new Set<(e: ClusterErrorEvent) => void>();
  private readonly ring: TimedEvent[] = [];
  private hbTimer: TimerHandle | undefined;
  private rttTimer: TimerHandle | undefined;
  private readonly stats_ = { authFailures: 0, handshakeAborted: 0, protocolErrors: 0, refused: 0, dropped: 0 };

  constructor(config: ClusterConfig, deps: ClusterNodeDeps = {}) {
    this.config = config;
    this.deps = deps;
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? systemRandom;
    this.rnd = deps.randomBytes ?? systemRandomBytes;
    this.wall = deps.wallClock ?? Date.now;
    const secret = resolveSecret(config, deps.env ?? process.env);
    this.keys = secret !== undefined ? deriveClusterKeys(secret) : undefined;
    this.net = deps.net ?? (config.tls && secret === undefined ? tlsNet(config.tls) : plainNet);
    this.security = this.net.tls ? { kind: 'tls' } : { kind: 'secret', keys: this.keys!, randomBytes: this.rnd };
    this.registry = deps.membershipRegistry ?? defaultMembershipRegistry();
    if (!this.registry.has(config.membership.type)) throw new CohortError('COHORT_MEMBERSHIP_UNKNOWN', `unknown membership type ${config.membership.type}`);
    if (isWildcard(config.listen.host) && !config.advertise) {
      throw new CohortError('COHORT_CONFIG_INVALID', `cluster.advertise.host is required when cluster.listen.host is the wildcard ${JSON.stringify(config.listen.host)}`);
    }
    this.me = {
      id: (deps.randomBytes ?? cryptoRandomBytes)(12).toString('base64url'),
      route: config.route,
      incarnation: 0,
      clusterName: config.clusterName,
      channelAddress: { host: config.advertise?.host ?? config.listen.host, port: config.advertise?.port ?? config.listen.port },
      startTime: this.wall(),
      meta: { ...config.meta },
    };
    const t = config.timing;
    this.detector = new FailureDetector(
      { clock: this.clock, suspectAfterMs: t.suspectAfterMs, confirmTimeoutMs: t.confirmTimeoutMs, probeIntervalMs: t.probeIntervalMs },
      { emit: (e) => this.onDetectorEvent(e), probe: (id) => this.probe(id) },
    );
  }

  get self(): MemberInfo {
    return this.me;
  }

  members(): readonly MemberView[] {
    return this.detector.live();
  }

  onMembership(listener: (event: MembershipEvent) => void): () => void {
    this.memberListeners.add(listener);
    return () => this.memberListeners.delete(listener);
  }

  /** Non-fatal errors: authentication failures, route conflicts, dropped messages, handler failures. */
  onError(listener: (event: ClusterErrorEvent) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  setMeta(meta: Record<string, string>): void {
    this.me = { ...this.me, meta: { ...meta } };
    for (const p of this.peers.values()) this.enqueue(p, encodeEnvelope({ t: 'meta', inc: this.me.incarnation, meta: this.me.meta }));
  }

  handle(topic: string, handler: MessageHandler): void {
    if (topic.startsWith(RESERVED_TOPIC_PREFIX)) throw new CohortError('COHORT_TOPIC_RESERVED', `topics starting with ${RESERVED_TOPIC_PREFIX} are reserved`);
    if (this.handlers.has(topic)) throw new CohortError('COHORT_TOPIC_TAKEN', `topic ${topic} already has a handler`);
    this.handlers.set(topic, handler);
  }

  counters(): Readonly<Record<string, PeerCounters>> {
    const out: Record<string, PeerCounters> = {};
    for (const p of this.peers.values()) out[p.id] = p.counters();
    return out;
  }

  /** Node-wide counters, including failures from connections never identified (outsiders). */
  stats(): ClusterStats {
    return { ...this.stats_, connections: this.conns.size, pending: this.pending.size };
  }

  /** JSON snapshot of the members view, counters and recent events (for the admin API and `cohort members`). */
  snapshot(): ClusterSnapshot {
    return buildSnapshot(this.me, this.state, this.detector.all(), this.counters(), this.stats(), this.ring);
  }

  async start(): Promise<void> {
    if (this.state !== NodeState.Created) return;
    this.state = NodeState.Starting;
    this.server = await this.net.listen(this.config.listen.host, this.config.listen.port, (s) => this.accept(s), (err, remote) => this.countAuthFailure(err, remote));
    if (!this.config.advertise?.port) this.me = { ...this.me, channelAddress: { host: this.me.channelAddress.host, port: this.server.port } };
    this.selfAddrs.add(addressKey(this.me.channelAddress));
    this.detector.start();
    this.state = NodeState.Running;
    this.heartbeatLoop();
    this.rttLoop();
    this.membership = this.registry.create(this.config.membership, { clock: this.clock, self: () => this.me, keys: this.keys, deps: this.deps as Record<string, unknown> });
    await this.membership.start(this.sink());
  }

  async close(): Promise<void> {
    if (this.state === NodeState.Closing || this.state === NodeState.Closed) return;
    this.state = NodeState.Closing;
    this.stopBackground();
    const leave = encodeEnvelope({ t: 'leave' });
    // on every connection: the peer must read the leave before the end of whichever connection it reads first
    for (const c of this.conns) if (c.state === ConnectionState.Open && c.peerId) c.sendEncoded(leave);
    await new Promise((r) => setImmediate(r));
    const deadline = this.clock.now() + 1000;
    while ([...this.conns].some((c) => c.bufferedBytes > 0) && this.clock.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const c of [...this.conns]) c.close('local');
    this.finish();
    await this.server?.close();
  }

  destroy(): void {
    if (this.state === NodeState.Closed) return;
    this.state = NodeState.Closing;
    this.stopBackground();
    for (const c of [...this.conns]) {
      c.socket.destroy();
      c.close('local');
    }
    this.finish();
    void this.server?.close();
  }

  send(to: string, topic: string, payload: JsonValue, options: SendOptions = {}): Promise<void> {
    const mode = options.mode ?? 'async';
    const timeoutMs = options.timeoutMs ?? this.config.timing.sendTimeoutMs;
    const peer = this.peers.get(to);
    if (!peer || this.state !== NodeState.Running) return Promise.reject(this.unknown(to));
    const id = this.nextId++;
    if (mode === 'async') {
      return new Promise<void>((resolve, reject) => {
        let timer: TimerHandle | undefined;
        let settled = false;
        const settle = (err?: Error): void => {
          if (settled) return;
          settled = true;
          if (timer) this.clock.clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        };
        this.enqueue(peer, encodeEnvelope({ t: 'msg', id, topic, ack: 'none', p: payload }), () => settle(), (e) => settle(e));
        if (!settled) {
          timer = this.clock.setTimeout(() => settle(new CohortError('COHORT_SEND_TIMEOUT', `message to ${peer.info.route} not written within ${timeoutMs} ms`)), timeoutMs);
          timer.unref?.();
        }
      });
    }
    return this.call(peer, id, { t: 'msg', id, topic, ack: mode, p: payload }, timeoutMs, 'COHORT_SEND_TIMEOUT').then(() => undefined);
  }

  async broadcast(topic: string, payload: JsonValue, options: SendOptions = {}): Promise<BroadcastResult> {
    const targets = this.members().map((m) => m.id);
    const results = await Promise.allSettled(targets.map((id) => this.send(id, topic, payload, options)));
    const ok: string[] = [];
    const failed: Record<string, string> = {};
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') ok.push(targets[i]!);
      else failed[targets[i]!] = (r.reason as Error).message;
    });
    return { ok, failed };
  }

  request(to: string, topic: string, payload: JsonValue, options: { readonly timeoutMs?: number } = {}): Promise<JsonValue> {
    const peer = this.peers.get(to);
    if (!peer || this.state !== NodeState.Running) return Promise.reject(this.unknown(to));
    const id = this.nextId++;
    return this.call(peer, id, { t: 'req', id, topic, p: payload }, options.timeoutMs ?? this.config.timing.sendTimeoutMs, 'COHORT_REQUEST_TIMEOUT');
  }

  // ---- sending ----

  private unknown(to: string): CohortError {
    if (this.state !== NodeState.Running) return new CohortError('COHORT_CLOSED', `cluster node ${this.me.route} is ${this.state}`);
    return new CohortError('COHORT_UNKNOWN_MEMBER', `no live member with id ${to}`);
  }

  private call(peer: Peer, id: number, env: Envelope, timeoutMs: number, timeoutCode: string): Promise<JsonValue> {
    return new Promise<JsonValue>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(id);
        reject(new CohortError(timeoutCode, `no answer from ${peer.info.route} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref?.();
      this.pending.set(id, { peerId: peer.id, resolve, reject, timer, sentAt: this.clock.now() });
      this.enqueue(peer, encodeEnvelope(env), undefined, (e) => this.settle(id, e));
    });
  }

  private settle(id: number, err: Error | undefined, value: JsonValue = null): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.clock.clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }

  /**
   * Hands an encoded envelope to the peer's outgoing connection, or queues it
   * until that connection is ready. Bounded: past maxQueueBytes the message is
   * dropped (counted, error event) and the peer is suspected.
   */
  private enqueue(peer: Peer, plain: Buffer, written?: () => void, dropped?: (e: Error) => void): void {
    if (peer.backlogBytes() + plain.length > this.config.limits.maxQueueBytes) {
      peer.dropped++;
      this.stats_.dropped++;
      const err = new CohortError('COHORT_QUEUE_FULL', `send queue to ${peer.info.route} is full (${peer.backlogBytes()} bytes waiting, limit ${this.config.limits.maxQueueBytes}); message dropped`);
      if (peer.dropped === 1 || peer.dropped % 1000 === 0) this.emitError({ code: err.code, message: err.message, peer: peer.id });
      this.detector.suspect(peer.id, 'send queue full');
      dropped?.(err);
      return;
    }
    const conn = peer.ready();
    if (conn && peer.queue.length === 0) {
      peer.bytesOut += conn.sendEncoded(plain);
      peer.messagesOut++;
      written?.();
      return;
    }
    peer.queue.push({ plain, ...(written ? { written } : {}), ...(dropped ? { dropped } : {}) });
    peer.queueBytes += plain.length;
    if (!conn) this.dialPeer(peer);
  }

  /**
   * Answers on the connection the message came in on. Bounded like the send
   * queue: a peer that sends but does not read its answers would otherwise
   * make us buffer without limit. Past maxQueueBytes the answer is dropped and
   * the connection closed (counted, error event); the peer can reconnect.
   */
  private reply(conn: Connection, env: Envelope): void {
    if (conn.state !== ConnectionState.Open) return;
    const p = conn.peerId ? this.peers.get(conn.peerId) : undefined;
    const plain = encodeEnvelope(env);
    if (conn.bufferedBytes + plain.length > this.config.limits.maxQueueBytes) {
      this.stats_.dropped++;
      if (p) p.dropped++;
      const err = new CohortError('COHORT_QUEUE_FULL', `answers to ${p?.info.route ?? conn.remote} are not being read (${conn.bufferedBytes} bytes waiting, limit ${this.config.limits.maxQueueBytes}); answer dropped and connection closed`);
      this.emitError({ code: err.code, message: err.message, remote: conn.remote, ...(p ? { peer: p.id } : {}) });
      conn.close('protocol', err);
      return;
    }
    const n = conn.sendEncoded(plain);
    if (p) {
      p.bytesOut += n;
      p.messagesOut++;
    }
  }

  // ---- connections ----

  private accept(socket: Socket): void {
    if (this.state !== NodeState.Running) {
      socket.destroy();
      return;
    }
    this.adopt(new Connection(this.connOpts('server', socket)));
  }

  private connOpts(role: 'client' | 'server', socket: Socket) {
    return {
      role,
      socket,
      security: this.security,
      clock: this.clock,
      maxFrameBytes: this.config.limits.maxFrameBytes,
      handshakeTimeoutMs: this.config.timing.handshakeTimeoutMs,
      handlers: {
        onOpen: (c: Connection) => {
          // the dialer speaks first; the acceptor answers once it accepted the dialer's identity
          if (c.role === 'client') c.send({ t: 'hello', member: this.wireSelf() });
        },
        onEnvelope: (c: Connection, env: Envelope, bytes: number) => this.onEnvelope(c, env, bytes),
        onClose: (c: Connection, reason: CloseReason, err?: Error) => this.onConnClose(c, reason, err),
      },
    } as const;
  }

  private adopt(conn: Connection): void {
    this.conns.add(conn);
    conn.start();
  }

  private wireSelf(): MemberInfo {
    return { ...this.me, meta: { ...this.me.meta }, channelAddress: { ...this.me.channelAddress } };
  }

  /** Dials an address to verify it (discovery) or to confirm a suspect member (`expectId`). */
  private dial(addr: Address, expectId?: string): void {
    if (this.state !== NodeState.Running) return;
    const key = addressKey(addr);
    if (this.dials.has(key) || this.selfAddrs.has(key)) return;
    const until = this.blocked.get(key);
    if (until !== undefined && this.clock.now() < until && expectId === undefined) return;
    let timer: TimerHandle | undefined = undefined;
    const cancel = this.net.connect(addr, (err, socket) => {
      if (timer) this.clock.clearTimeout(timer);
      if (err || !socket) {
        this.dials.delete(key);
        if (expectId && (err as { code?: string } | undefined)?.code === 'ECONNREFUSED') this.detector.confirmGone(expectId, `connection refused by ${key}`);
        return;
      }
      if (this.state !== NodeState.Running) {
        this.dials.delete(key);
        socket.destroy();
        return;
      }
      const conn = new Connection(this.connOpts('client', socket));
      (conn as { dialKey?: string }).dialKey = key;
      this.adopt(conn);
    });
    this.dials.set(key, cancel);
    timer = this.clock.setTimeout(() => cancel(), this.config.timing.connectTimeoutMs);
    timer.unref?.();
  }

  private dialPeer(peer: Peer): void {
    const now = this.clock.now();
    if (now - peer.lastDialAt < this.config.timing.reconnectMs && peer.lastDialAt > -Infinity && this.dials.has(addressKey(peer.info.channelAddress))) return;
    peer.lastDialAt = now;
    this.dial(peer.info.channelAddress, peer.id);
  }

  private onConnClose(conn: Connection, reason: CloseReason, err?: Error): void {
    this.conns.delete(conn);
    const dialKey = (conn as { dialKey?: string }).dialKey;
    if (dialKey && this.dials.has(dialKey) && !conn.peerId) this.dials.delete(dialKey);
    const peer = conn.peerId ? this.peers.get(conn.peerId) : undefined;
    if (reason === 'auth') this.countAuthFailure(err, conn.remote, peer);
    else if (reason === 'protocol') {
      this.stats_.protocolErrors++;
      this.emitError({ code: (err as CohortError | undefined)?.code ?? 'COHORT_PROTOCOL', message: `closed connection ${conn.remote}: ${err?.message ?? 'protocol error'}`, remote: conn.remote, ...(peer ? { peer: peer.id } : {}) });
    } else if (!conn.peerId && reason !== 'local') this.stats_.handshakeAborted++;
    if (!peer) return;
    if (peer.out === conn) {
      peer.out = undefined;
      if (dialKey) this.dials.delete(dialKey);
    }
    peer.ins.delete(conn);
    if (this.state !== NodeState.Running || reason === 'local') return;
    // An authentication failure closes the connection and is counted; it is not evidence about the member.
    if (reason === 'remote' || reason === 'timeout') this.detector.suspect(peer.id, 'connection lost');
    this.dialPeer(peer);
  }

  private countAuthFailure(err: Error | undefined, remote: string, peer?: Peer): void {
    this.stats_.authFailures++;
    if (peer) peer.authFailures++;
    this.emitError({ code: (err as CohortError | undefined)?.code ?? 'COHORT_TLS_AUTH', message: `authentication failed on connection ${remote}: ${err?.message ?? 'unknown'}`, remote, ...(peer ? { peer: peer.id } : {}) });
  }

  // ---- envelopes ----

  private onEnvelope(conn: Connection, env: Envelope, bytes: number): void {
    if (!conn.peerId) {
      if (env.t === 'hello') this.onHello(conn, toMemberInfo(env.member));
      else if (env.t === 'refuse') this.onRefuse(conn, env.code, env.message);
      else conn.close('protocol', new CohortError('COHORT_PROTOCOL', `${env.t} before hello`));
      return;
    }
    const peer = this.peers.get(conn.peerId);
    if (!peer) {
      conn.close('local');
      return;
    }
    peer.messagesIn++;
    peer.bytesIn += bytes;
    switch (env.t) {
      case 'hb':
        this.detector.alive(peer.id, env.inc);
        return;
      case 'msg':
        this.detector.alive(peer.id, peer.info.incarnation);
        this.onMsg(conn, peer, env);
        return;
      case 'req':
        this.detector.alive(peer.id, peer.info.incarnation);
        this.onReq(conn, peer, env);
        return;
      case 'ack':
        this.detector.alive(peer.id, peer.info.incarnation);
        this.settle(env.id, env.ok ? undefined : new CohortError('COHORT_REMOTE_FAILED', `${peer.info.route}: ${env.err ?? 'failed'}`));
        return;
      case 'res':
        this.detector.alive(peer.id, peer.info.incarnation);
        this.settle(env.id, env.ok ? undefined : new CohortError('COHORT_REMOTE_FAILED', `${peer.info.route}: ${env.err ?? 'failed'}`), env.p ?? null);
        return;
      case 'meta':
        peer.info = { ...peer.info, meta: { ...env.meta } };
        this.detector.updateMeta(peer.id, env.inc, env.meta);
        return;
      case 'leave':
        this.detector.left(peer.id);
        return;
      case 'refuse':
        this.onRefuse(conn, env.code, env.message);
        return;
      case 'hello':
        conn.close('protocol', new CohortError('COHORT_PROTOCOL', 'second hello on a connection'));
        return;
    }
  }

  private onHello(conn: Connection, m: MemberInfo): void {
    const dialKey = (conn as { dialKey?: string }).dialKey;
    if (m.clusterName !== this.me.clusterName) {
      // another cluster sharing the address list or group: ignored, not an error
      if (dialKey) this.blocked.set(dialKey, this.clock.now() + BLOCK_MS);
      conn.close('local');
      return;
    }
    if (m.id === this.me.id) {
      if (dialKey) this.selfAddrs.add(dialKey);
      conn.close('local');
      return;
    }
    const conflict = this.routeConflict(m);
    if (conflict) {
      this.stats_.refused++;
      this.emitError({ code: 'COHORT_ROUTE_CONFLICT', message: `refused node ${m.id} at ${addressKey(m.channelAddress)}: ${conflict}`, remote: conn.remote });
      conn.send({ t: 'refuse', code: 'COHORT_ROUTE_CONFLICT', message: conflict });
      if (dialKey) this.blocked.set(dialKey, this.clock.now() + BLOCK_MS);
      conn.close('local');
      return;
    }
    let peer = this.peers.get(m.id);
    if (!peer) {
      peer = new Peer(m);
      this.peers.set(m.id, peer);
    }
    peer.info = m;
    conn.peerId = m.id;
    if (conn.role === 'client') {
      if (dialKey) this.dials.delete(dialKey);
      if (peer.out && peer.out !== conn && peer.out.state === ConnectionState.Open) {
        conn.close('local');
      } else {
        peer.out = conn;
      }
    } else {
      peer.ins.add(conn);
      conn.send({ t: 'hello', member: this.wireSelf() });
    }
    this.detector.verified(m);
    peer.drain();
    if (!peer.ready()) this.dialPeer(peer);
  }

  /** Why `m` may not join, or undefined. A stale holder of the route (no open connection) is replaced. */
  private routeConflict(m: MemberInfo): string | undefined {
    if (m.route === this.me.route) return `route "${m.route}" is already used by node ${this.me.id} at ${addressKey(this.me.channelAddress)}; every node needs a unique route`;
    const holder = this.detector.byRoute(m.route);
    if (!holder || holder.id === m.id) return undefined;
    const hp = this.peers.get(holder.id);
    if (hp && hp.hasOpenConnection() && holder.state === MemberState.Alive) {
      return `route "${m.route}" is already used by live node ${holder.id} at ${addressKey(holder.channelAddress)}; every node needs a unique route`;
    }
    this.detector.confirmGone(holder.id, `replaced by node ${m.id} with the same route`);
    return undefined;
  }

  private onRefuse(conn: Connection, code: string, message: string): void {
    const dialKey = (conn as { dialKey?: string }).dialKey;
    if (dialKey) this.blocked.set(dialKey, this.clock.now() + BLOCK_MS);
    this.stats_.refused++;
    this.emitError({ code, message: `refused by ${conn.remote}: ${message}`, remote: conn.remote });
    const peerId = conn.peerId;
    conn.close('local');
    if (peerId) this.detector.left(peerId);
  }

  private onMsg(conn: Connection, peer: Peer, env: Extract<Envelope, { t: 'msg' }>): void {
    const from = this.detector.get(peer.id)!;
    const payload = (env.p ?? null) as JsonValue;
    if (env.topic.startsWith(RESERVED_TOPIC_PREFIX)) return;
    const h = this.handlers.get(env.topic);
    if (!h) {
      if (env.ack !== 'none') this.reply(conn, { t: 'ack', id: env.id, ok: false, err: `no handler for topic ${env.topic}` });
      else this.emitError({ code: 'COHORT_NO_HANDLER', message: `message on topic ${env.topic} from ${peer.info.route} has no handler`, peer: peer.id });
      return;
    }
    if (env.ack === 'received') this.reply(conn, { t: 'ack', id: env.id, ok: true });
    let result: unknown;
    try {
      result = h(from, payload);
    } catch (err) {
      this.handlerFailed(conn, peer, env, err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        () => env.ack === 'applied' && this.reply(conn, { t: 'ack', id: env.id, ok: true }),
        (err) => this.handlerFailed(conn, peer, env, err),
      );
    } else if (env.ack === 'applied') this.reply(conn, { t: 'ack', id: env.id, ok: true });
  }

  private handlerFailed(conn: Connection, peer: Peer, env: Extract<Envelope, { t: 'msg' }>, err: unknown): void {
    const message = `handler of ${env.topic} failed: ${(err as Error)?.message ?? String(err)}`;
    if (env.ack === 'applied') this.reply(conn, { t: 'ack', id: env.id, ok: false, err: message });
    else this.emitError({ code: 'COHORT_HANDLER_FAILED', message, peer: peer.id });
  }

  private onReq(conn: Connection, peer: Peer, env: Extract<Envelope, { t: 'req' }>): void {
    const payload = (env.p ?? null) as JsonValue;
    const answer = (p: Promise<unknown>): void => {
      p.then(
        (v) => this.reply(conn, { t: 'res', id: env.id, ok: true, p: (v ?? null) as JsonValue }),
        (err) => this.reply(conn, { t: 'res', id: env.id, ok: false, err: (err as Error)?.message ?? String(err) }),
      );
    };
    if (env.topic === PING) return answer(Promise.resolve(this.onPing(payload)));
    if (env.topic === PROBE) return answer(this.onProbeRequest(payload));
    const h = this.handlers.get(env.topic);
    if (!h) return answer(Promise.reject(new Error(`no handler for topic ${env.topic}`)));
    const from = this.detector.get(peer.id)!;
    try {
      answer(Promise.resolve(h(from, payload)));
    } catch (err) {
      answer(Promise.reject(err));
    }
  }

  // ---- liveness ----

  /** A ping; `suspect: true` means the sender suspects us: refute by raising our incarnation. */
  private onPing(payload: JsonValue): JsonValue {
    if (payload && typeof payload === 'object' && !Array.isArray(payload) && payload['suspect'] === true) {
      this.me = { ...this.me, incarnation: this.me.incarnation + 1 };
      this.sendHeartbeats();
    }
    return { inc: this.me.incarnation };
  }

  /** Indirect probe on behalf of a member that suspects `target`. */
  private async onProbeRequest(payload: JsonValue): Promise<JsonValue> {
    const target = payload && typeof payload === 'object' && !Array.isArray(payload) ? payload['target'] : undefined;
    if (typeof target !== 'string' || !this.peers.has(target)) return { ok: false };
    try {
      const r = await this.request(target, PING, { suspect: true }, { timeoutMs: this.config.timing.probeTimeoutMs });
      const inc = incOf(r);
      return inc === undefined ? { ok: false } : { ok: true, inc };
    } catch {
      return { ok: false };
    }
  }

  /** Direct probe plus `indirectProbes` others asked to probe (Lifeguard). Answers feed the detector; silence lets its deadline expire. */
  private probe(id: string): void {
    const peer = this.peers.get(id);
    if (!peer || this.state !== NodeState.Running) return;
    if (!peer.ready()) this.dialPeer(peer);
    const t = this.config.timing;
    const onAnswer = (r: JsonValue): void => {
      const inc = incOf(r);
      if (inc !== undefined) this.detector.alive(id, inc);
    };
    // A probe that gets no answer is the evidence we wait for, not an error to report.
    this.request(id, PING, { suspect: true }, { timeoutMs: t.probeTimeoutMs }).then(onAnswer, () => undefined);
    const helpers = this.members().filter((m) => m.id !== id && m.state === MemberState.Alive);
    for (let i = 0; i < t.indirectProbes && helpers.length > 0; i++) {
      const h = helpers.splice(Math.floor(this.random() * helpers.length), 1)[0]!;
      this.request(h.id, PROBE, { target: id }, { timeoutMs: t.probeTimeoutMs * 2 }).then((r) => {
        if (r && typeof r === 'object' && !Array.isArray(r) && r['ok'] === true) onAnswer(r);
      }, () => undefined);
    }
  }

  private sendHeartbeats(): void {
    const hb = encodeEnvelope({ t: 'hb', inc: this.me.incarnation });
    for (const p of this.peers.values()) {
      if (p.ready()) this.enqueue(p, hb);
      else if (this.detector.get(p.id)?.state !== MemberState.Gone) this.dialPeer(p);
    }
  }

  private heartbeatLoop(): void {
    if (this.state !== NodeState.Running) return;
    this.sendHeartbeats();
    this.hbTimer = this.clock.setTimeout(() => this.heartbeatLoop(), this.config.timing.heartbeatIntervalMs);
    this.hbTimer.unref?.();
  }

  private rttLoop(): void {
    if (this.state !== NodeState.Running) return;
    for (const p of this.peers.values()) {
      if (!p.ready()) continue;
      const t0 = this.clock.now();
      this.request(p.id, PING, {}, { timeoutMs: this.config.timing.rttIntervalMs }).then(() => p.recordRtt(this.clock.now() - t0), () => undefined);
    }
    this.rttTimer = this.clock.setTimeout(() => this.rttLoop(), this.config.timing.rttIntervalMs);
    this.rttTimer.unref?.();
  }

  private onDetectorEvent(e: MembershipEvent): void {
    if (e.type === 'gone') this.dropPeer(e.member.id, e.reason);
    this.ring.push({ at: this.wall(), event: e });
    if (this.ring.length > EVENT_RING) this.ring.shift();
    for (const l of [...this.memberListeners]) {
      try {
        l(e);
      } catch (err) {
        this.emitError({ code: 'COHORT_LISTENER_FAILED', message: `membership listener threw: ${(err as Error)?.message ?? String(err)}` });
      }
    }
  }

  /** A gone member: close its connections, fail what waits on it. */
  private dropPeer(id: string, reason: string): void {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    const err = new CohortError('COHORT_PEER_GONE', `member ${peer.info.route} is gone: ${reason}`);
    peer.dropAll(err);
    for (const [pid, p] of this.pending) if (p.peerId === id) this.settle(pid, err);
    if (peer.out) peer.out.close('local');
    for (const c of peer.ins) c.close('local');
  }

  private sink(): DiscoverySink {
    return {
      candidates: (addrs) => {
        for (const a of addrs) {
          const key = addressKey(a);
          if (this.selfAddrs.has(key)) continue;
          let connected = false;
          for (const p of this.peers.values()) if (addressKey(p.info.channelAddress) === key && p.ready()) connected = true;
          if (!connected) this.dial(a);
        }
      },
      evidence: (id, inc) => this.detector.alive(id, inc),
      isKnown: (id) => this.peers.has(id),
      error: (err) => this.emitError({ code: err.code, message: err.message }),
    };
  }

  private emitError(e: ClusterErrorEvent): void {
    for (const l of [...this.errorListeners]) l(e);
  }

  private stopBackground(): void {
    if (this.hbTimer) this.clock.clearTimeout(this.hbTimer);
    if (this.rttTimer) this.clock.clearTimeout(this.rttTimer);
    this.membership?.close();
    this.detector.stop();
    for (const cancel of [...this.dials.values()]) cancel();
    this.dials.clear();
  }

  private finish(): void {
    const err = new CohortError('COHORT_CLOSED', `cluster node ${this.me.route} closed`);
    for (const id of [...this.pending.keys()]) this.settle(id, err);
    for (const p of this.peers.values()) p.dropAll(err);
    this.state = NodeState.Closed;
  }
}

function incOf(r: JsonValue): number | undefined {
  if (r && typeof r === 'object' && !Array.isArray(r) && typeof r['inc'] === 'number') return r['inc'];
  return undefined;
}
