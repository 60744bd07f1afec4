/**
 * The cluster node: the {@link ClusterChannel} implementation. It wires the
 * socket edge (net.ts), connections (connection.ts), the failure detector and
 * a membership service, and implements send modes, request/response, bounded
 * per-peer queues, probes, heartbeats, identity exchange and route uniqueness.
 * Decisions about liveness live in the detector; this file moves bytes.
 */
import type { Socket } from 'node:net';
import { CohortError } from '../errors.js';
import { sleep, systemClock, systemRandom, type Clock, type Random, type TimerHandle } from '../util/clock.js';
import { parseClusterConfig, resolveSecret, type ClusterConfig } from './config.js';
import { Connection, ConnectionState, type CloseReason, type ConnectionSecurity } from './connection.js';
import { deriveClusterKeys, SEALED_OVERHEAD, type ClusterKeys } from './crypto.js';
import { encodeEnvelope, toMemberInfo, BATCH_RECORD_OVERHEAD, type Envelope } from './envelope.js';
import { FailureDetector } from './failure-detector.js';
import { addressKey, type MembershipRegistry, type Address, type DiscoverySink, type MembershipService } from './membership.js';
import { defaultMembershipRegistry, type ClusterErrorEvent, type ClusterNodeDeps } from './node-deps.js';
import { plainNet, tlsNet, type ListeningServer, type NetFactory } from './net.js';
export { defaultMembershipRegistry, type ClusterErrorEvent, type ClusterNodeDeps } from './node-deps.js';
import { Peer } from './peer.js';
import { PendingCalls } from './pending.js';
import { Dialer } from './dialer.js';
import { admit } from './admission.js';
import { Prober, PING_TOPIC, PROBE_TOPIC } from './prober.js';
import { answerRequest, deliverMessage, type DispatchPort } from './dispatch.js';
import { buildSnapshot, type ClusterSnapshot, type ClusterStats, type TimedEvent } from './view.js';
import { MemberState, type BroadcastResult, type ClusterChannel, type JsonValue, type MemberInfo, type MemberView, type MembershipEvent, type MessageHandler, type PeerCounters, type SendOptions } from './types.js';

/** Topics under this prefix are the cluster layer's own. */
export const RESERVED_TOPIC_PREFIX = '__cohort.';
const EVENT_RING = 200;

enum NodeState {
  Created = 'created',
  Starting = 'starting',
  Running = 'running',
  Closing = 'closing',
  Closed = 'closed',
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
  private readonly net: NetFactory;
  private readonly keys: ClusterKeys | undefined;
  private readonly security: ConnectionSecurity;
  /** Membership services by type, owned by this node (register custom ones before start()). */
  readonly registry: MembershipRegistry;
  private readonly deps: ClusterNodeDeps;
  private readonly detector: FailureDetector;
  private readonly prober: Prober;
  private readonly dispatch: DispatchPort;
  private me: MemberInfo;
  private state = NodeState.Created;
  private server: ListeningServer | undefined;
  private membership: MembershipService | undefined;
  private readonly peers = new Map<string, Peer>();
  private readonly conns = new Set<Connection>();
  private readonly dialer: Dialer;
  /** Address key → member id whose liveness a refusal there confirms. */
  private readonly confirmAt = new Map<string, { readonly id: string; readonly addr: Address; tries: number }>();
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly pending: PendingCalls;
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
    const secret = resolveSecret(config, deps.env ?? process.env);
    this.keys = secret !== undefined ? deriveClusterKeys(secret) : undefined;
    // mutual TLS replaces the secret handshake on the channel; a secret, if also given, still seals multicast heartbeats
    this.net = deps.net ?? (config.tls ? tlsNet(config.tls) : plainNet);
    this.security = this.net.tls ? { kind: 'tls' } : { kind: 'secret', keys: this.keys!, random: this.random };
    this.registry = deps.membershipRegistry ?? defaultMembershipRegistry();
    if (isWildcard(config.listen.host) && !config.advertise) {
      throw new CohortError('COHORT_CONFIG_INVALID', `cluster.advertise.host is required when cluster.listen.host is the wildcard ${JSON.stringify(config.listen.host)}`);
    }
    this.me = {
      id: this.random.bytes(12).toString('base64url'),
      route: config.route,
      incarnation: 0,
      clusterName: config.clusterName,
      channelAddress: { host: config.advertise?.host ?? config.listen.host, port: config.advertise?.port ?? config.listen.port },
      startTime: this.clock.wallNow(),
      meta: { ...config.meta },
    };
    this.pending = new PendingCalls(this.clock);
    this.dialer = new Dialer(this.net, this.clock, config.timing.connectTimeoutMs);
    const t = config.timing;
    this.detector = new FailureDetector(
      { clock: this.clock, suspectAfterMs: t.suspectAfterMs, confirmTimeoutMs: t.confirmTimeoutMs, probeIntervalMs: t.probeIntervalMs },
      { emit: (e) => this.onDetectorEvent(e), probe: (id) => this.probe(id) },
    );
    this.prober = new Prober(
      {
        request: (to, topic, payload, o) => this.request(to, topic, payload, o),
        liveMembers: () => this.members(),
        isPeer: (id) => this.peers.has(id),
        alive: (id, inc) => this.detector.alive(id, inc),
        incarnation: () => this.me.incarnation,
        refute: () => {
          this.me = { ...this.me, incarnation: this.me.incarnation + 1 };
          this.sendHeartbeats();
          return this.me.incarnation;
        },
      },
      this.random,
      t,
    );
    this.dispatch = {
      handler: (topic) => this.handlers.get(topic),
      internal: (topic, payload) => (topic === PING_TOPIC ? Promise.resolve(this.prober.onPing(payload)) : topic === PROBE_TOPIC ? this.prober.onProbeRequest(payload) : undefined),
      reply: (conn, env) => this.reply(conn, env),
      error: (code, message, peer) => this.emitError({ code, message, peer }),
    };
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
    this.dialer.markSelf(addressKey(this.me.channelAddress));
    this.detector.start();
    this.state = NodeState.Running;
    this.heartbeatLoop();
    this.rttLoop();
    try {
      this.membership = this.registry.create(this.config.membership, { clock: this.clock, self: () => this.me, keys: this.keys, deps: this.deps as Record<string, unknown> });
      await this.membership.start(this.sink());
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.state === NodeState.Closing || this.state === NodeState.Closed) return;
    this.state = NodeState.Closing;
    this.stopBackground();
    const leave = encodeEnvelope({ t: 'leave' });
    // on every connection: the peer must read the leave before the end of whichever connection it reads first
    // (identified or not: a peer that identified us before we identified it must hear it too)
    for (const c of this.conns) if (c.state === ConnectionState.Open) c.sendEncoded(leave);
    await new Promise((r) => setImmediate(r));
    const deadline = this.clock.now() + 1000;
    while ([...this.conns].some((c) => c.bufferedBytes > 0) && this.clock.now() < deadline) await sleep(this.clock, 10);
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
    const id = this.pending.id();
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
    const id = this.pending.id();
    return this.call(peer, id, { t: 'req', id, topic, p: payload }, options.timeoutMs ?? this.config.timing.sendTimeoutMs, 'COHORT_REQUEST_TIMEOUT');
  }

  // ---- sending ----

  private unknown(to: string): CohortError {
    if (this.state !== NodeState.Running) return new CohortError('COHORT_CLOSED', `cluster node ${this.me.route} is ${this.state}`);
    return new CohortError('COHORT_UNKNOWN_MEMBER', `no live member with id ${to}`);
  }

  private call(peer: Peer, id: number, env: Envelope, timeoutMs: number, timeoutCode: string): Promise<JsonValue> {
    const answer = this.pending.wait(id, peer.id, timeoutMs, timeoutCode, `no answer from ${peer.info.route} within ${timeoutMs} ms`);
    this.enqueue(peer, encodeEnvelope(env), undefined, (e) => this.pending.settle(id, e));
    return answer;
  }

  /**
   * Hands an encoded envelope to the peer's outgoing connection, or queues it
   * until that connection is ready. Bounded: past maxQueueBytes the message is
   * dropped (counted, error event) and the peer is suspected.
   */
  private enqueue(peer: Peer, plain: Buffer, written?: () => void, dropped?: (e: Error) => void): void {
    if (plain.length + BATCH_RECORD_OVERHEAD + SEALED_OVERHEAD > this.config.limits.maxFrameBytes) {
      dropped?.(new CohortError('COHORT_MESSAGE_TOO_LARGE', `message of ${plain.length} bytes exceeds cluster.limits.maxFrameBytes (${this.config.limits.maxFrameBytes}); split it (e.g. chunked requests)`));
      return;
    }
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

  /** Dials an address to verify it (discovery) or to confirm a suspect member (`expectId`): a refused connect confirms it gone. */
  private dial(addr: Address, expectId?: string): void {
    if (this.state !== NodeState.Running) return;
    // an attempt already in flight for this address (e.g. a discovery dial) must confirm too
    if (expectId !== undefined) {
      const key = addressKey(addr);
      this.confirmAt.set(key, { id: expectId, addr, tries: this.confirmAt.get(key)?.tries ?? 0 });
    }
    this.dialer.dial(
      addr,
      expectId !== undefined,
      (socket, key) => {
        if (this.state !== NodeState.Running) {
          this.dialer.done(key);
          socket.destroy();
          return;
        }
        const conn = new Connection(this.connOpts('client', socket));
        conn.dialKey = key;
        this.adopt(conn);
      },
      (err, key) => {
        const c = this.confirmAt.get(key);
        if (c && err.code === 'ECONNREFUSED') {
          this.confirmAt.delete(key);
          // Deferred past this event-loop turn: a `leave` that a departing peer wrote before closing its
          // port may sit in the same poll batch as this refusal, and must be read first.
          this.clock.setTimeout(() => this.detector.confirmGone(c.id, `connection refused by ${key}`), 0).unref?.();
        } else if (c && err.code === 'ECONNRESET') this.retryConfirm(key);
        else this.confirmAt.delete(key);
      },
    );
  }

  /** A dying process's listener can still accept, then reset: that is no answer yet, so ask again soon. */
  private retryConfirm(key: string): void {
    const c = this.confirmAt.get(key);
    if (!c) return;
    if (c.tries >= 25 || this.state !== NodeState.Running) {
      this.confirmAt.delete(key);
      return;
    }
    c.tries++;
    this.clock.setTimeout(() => this.dial(c.addr, c.id), 20).unref?.();
  }

  private dialPeer(peer: Peer): void {
    this.dial(peer.info.channelAddress, peer.id);
  }

  private onConnClose(conn: Connection, reason: CloseReason, err?: Error): void {
    this.conns.delete(conn);
    if (conn.dialKey && !conn.peerId) {
      this.dialer.done(conn.dialKey);
      if (reason !== 'local') this.retryConfirm(conn.dialKey);
      else this.confirmAt.delete(conn.dialKey);
    }
    const peer = conn.peerId ? this.peers.get(conn.peerId) : undefined;
    if (reason === 'auth') this.countAuthFailure(err, conn.remote, peer);
    else if (reason === 'protocol') {
      this.stats_.protocolErrors++;
      this.emitError({ code: (err as CohortError | undefined)?.code ?? 'COHORT_PROTOCOL', message: `closed connection ${conn.remote}: ${err?.message ?? 'protocol error'}`, remote: conn.remote, ...(peer ? { peer: peer.id } : {}) });
    } else if (!conn.peerId && reason !== 'local') this.stats_.handshakeAborted++;
    if (!peer) return;
    if (peer.out === conn) peer.out = undefined;
    peer.ins.delete(conn);
    if (this.state !== NodeState.Running || reason === 'local') return;
    // An authentication failure closes the connection and is counted; it is not evidence about the member.
    // A lost connection is evidence only if it was the last one with that member (a crashed process drops
    // them all; a duplicate or a single broken one is just re-dialed).
    if ((reason === 'remote' || reason === 'timeout') && !peer.hasOpenConnection()) this.detector.suspect(peer.id, 'connection lost');
    if (!peer.ready()) this.dialPeer(peer);
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
      else if (env.t === 'leave') {
        const known = conn.dialKey === undefined ? undefined : [...this.peers.values()].find((p) => addressKey(p.info.channelAddress) === conn.dialKey);
        if (known) this.detector.left(known.id);
        conn.close('local');
      }
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
    peer.lastHeardAt = this.clock.now();
    switch (env.t) {
      case 'hb':
        this.detector.alive(peer.id, env.inc);
        return;
      case 'msg':
        this.detector.alive(peer.id, peer.info.incarnation);
        if (!env.topic.startsWith(RESERVED_TOPIC_PREFIX)) deliverMessage(this.dispatch, conn, this.detector.get(peer.id)!, env);
        return;
      case 'req':
        this.detector.alive(peer.id, peer.info.incarnation);
        answerRequest(this.dispatch, conn, this.detector.get(peer.id)!, env);
        return;
      case 'ack':
        this.detector.alive(peer.id, peer.info.incarnation);
        this.pending.settle(env.id, env.ok ? undefined : new CohortError('COHORT_REMOTE_FAILED', `${peer.info.route}: ${env.err ?? 'failed'}`));
        return;
      case 'res':
        this.detector.alive(peer.id, peer.info.incarnation);
        this.pending.settle(env.id, env.ok ? undefined : new CohortError('COHORT_REMOTE_FAILED', `${peer.info.route}: ${env.err ?? 'failed'}`), env.p ?? null);
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
    const dialKey = conn.dialKey;
    const holder = this.detector.byRoute(m.route);
    const decision = admit(this.me, m, holder, holder ? (this.peers.get(holder.id)?.hasOpenConnection() ?? false) : false);
    switch (decision.kind) {
      case 'other-cluster':
        if (dialKey) this.dialer.block(dialKey);
        conn.close('local');
        return;
      case 'self':
        if (dialKey) this.dialer.markSelf(dialKey);
        conn.close('local');
        return;
      case 'refuse':
        this.stats_.refused++;
        this.emitError({ code: 'COHORT_ROUTE_CONFLICT', message: `refused node ${m.id} at ${addressKey(m.channelAddress)}: ${decision.message}`, remote: conn.remote });
        conn.send({ t: 'refuse', code: 'COHORT_ROUTE_CONFLICT', message: decision.message });
        if (dialKey) this.dialer.block(dialKey);
        conn.close('local');
        return;
      case 'admit':
        if (decision.replaces) this.detector.confirmGone(decision.replaces, `replaced by node ${m.id} with the same route`);
    }
    let peer = this.peers.get(m.id);
    if (!peer) {
      peer = new Peer(m);
      this.peers.set(m.id, peer);
    }
    peer.info = m;
    peer.lastHeardAt = this.clock.now();
    conn.peerId = m.id;
    if (conn.role === 'client') {
      if (dialKey) {
        this.dialer.done(dialKey);
        this.confirmAt.delete(dialKey);
      }
      if (peer.out && peer.out !== conn && peer.out.state === ConnectionState.Open) conn.close('local');
      else peer.out = conn;
    } else {
      peer.ins.add(conn);
      conn.send({ t: 'hello', member: this.wireSelf() });
    }
    this.detector.verified(m);
    peer.drain();
    if (!peer.ready()) this.dialPeer(peer);
  }

  private onRefuse(conn: Connection, code: string, message: string): void {
    if (conn.dialKey) this.dialer.block(conn.dialKey);
    this.stats_.refused++;
    this.emitError({ code, message: `refused by ${conn.remote}: ${message}`, remote: conn.remote });
    const peerId = conn.peerId;
    conn.close('local');
    if (peerId) this.detector.left(peerId);
  }

  /** The detector asks for a probe of a suspect member. */
  private probe(id: string): void {
    const peer = this.peers.get(id);
    if (!peer || this.state !== NodeState.Running) return;
    if (!peer.ready()) this.dialPeer(peer);
    this.prober.probe(id);
  }

  private sendHeartbeats(): void {
    const hb = encodeEnvelope({ t: 'hb', inc: this.me.incarnation });
    for (const p of this.peers.values()) {
      if (p.ready()) this.enqueue(p, hb);
      else if (this.detector.get(p.id)?.state !== MemberState.Gone && this.clock.now() - p.lastDialAt >= this.config.timing.reconnectMs) {
        // reconnect loop for members without an outgoing connection (immediate dials on loss bypass it)
        p.lastDialAt = this.clock.now();
        this.dialPeer(p);
      }
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
      this.request(p.id, PING_TOPIC, {}, { timeoutMs: this.config.timing.rttIntervalMs }).then(() => p.recordRtt(this.clock.now() - t0), () => undefined);
    }
    this.rttTimer = this.clock.setTimeout(() => this.rttLoop(), this.config.timing.rttIntervalMs);
    this.rttTimer.unref?.();
  }

  private onDetectorEvent(e: MembershipEvent): void {
    if (e.type === 'gone') this.dropPeer(e.member.id, e.reason);
    this.ring.push({ at: this.clock.wallNow(), event: e });
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
    this.pending.failPeer(id, err);
    if (peer.out) peer.out.close('local');
    for (const c of peer.ins) c.close('local');
  }

  private sink(): DiscoverySink {
    return {
      candidates: (addrs) => {
        for (const a of addrs) {
          const key = addressKey(a);
          if (this.dialer.isSelf(key)) continue;
          let connected = false;
          for (const p of this.peers.values()) if (addressKey(p.info.channelAddress) === key && p.ready()) connected = true;
          if (!connected) this.dial(a);
        }
      },
      evidence: (id, inc, maxChannelSilenceMs) => {
        if (maxChannelSilenceMs !== undefined) {
          const peer = this.peers.get(id);
          if (!peer || this.clock.now() - peer.lastHeardAt > maxChannelSilenceMs) return;
        }
        this.detector.alive(id, inc);
      },
      isKnown: (id) => this.peers.has(id),
      error: (err) => this.emitError({ code: err.code, message: err.message }),
    };
  }

  private emitError(e: ClusterErrorEvent): void {
    for (const l of [...this.errorListeners]) {
      try {
        l(e);
      } catch (err) {
        // the error channel itself failed: surface it as a process warning rather than lose both
        process.emitWarning(`cohort cluster error listener threw: ${(err as Error)?.message ?? String(err)} (while reporting ${e.code}: ${e.message})`);
      }
    }
  }

  private stopBackground(): void {
    if (this.hbTimer) this.clock.clearTimeout(this.hbTimer);
    if (this.rttTimer) this.clock.clearTimeout(this.rttTimer);
    this.membership?.close();
    this.detector.stop();
    this.dialer.cancelAll();
  }

  private finish(): void {
    const err = new CohortError('COHORT_CLOSED', `cluster node ${this.me.route} closed`);
    this.pending.failAll(err);
    for (const p of this.peers.values()) p.dropAll(err);
    this.state = NodeState.Closed;
  }
}
