/**
 * The cluster channel: the {@link ClusterChannel} implementation and its
 * lifecycle. It wires the socket edge (net.ts) and its parts, one file each:
 *  - connections.ts: accepting, dialling and confirming connections;
 *  - identity.ts: hello / refuse on a connection (decisions in admission.ts);
 *  - send-queue.ts: the bounded per-peer send queues and answers;
 *  - heartbeat.ts: the heartbeat / reconnect and RTT loops;
 *  - the failure detector, the prober and a membership service.
 * It implements send modes, request/response and the envelope routing.
 * Decisions about liveness live in the detector; this file moves bytes.
 */
import type { Socket } from 'node:net';
import { CohortError } from '../errors.js';
import { StateMachine } from '../util/transitions.js';
import { sleep, systemClock, systemRandom, type Clock, type Random, type TimerHandle } from '../util/clock.js';
import { parseClusterConfig, resolveSecret, type ClusterConfig } from './config.js';
import { ConnectionState, type Connection, type ConnectionSecurity } from './connection.js';
import { deriveClusterKeys, type ClusterKeys } from './crypto.js';
import { encodeEnvelope, toMemberInfo, type Envelope } from './envelope.js';
import { FailureDetector } from './failure-detector.js';
import { addressKey, type MembershipRegistry, type DiscoverySink, type MembershipService } from './membership.js';
import { defaultMembershipRegistry, type ClusterErrorEvent, type ClusterNodeDeps } from './channel-deps.js';
import { plainNet, tlsNet, type ListeningServer, type NetFactory } from './net.js';
export { defaultMembershipRegistry, type ClusterErrorEvent, type ClusterNodeDeps } from './channel-deps.js';
import type { Peer } from './peer.js';
import { PendingCalls } from './pending.js';
import { Dialer } from './dialer.js';
import { Prober, PING_TOPIC, PROBE_TOPIC } from './prober.js';
import { answerRequest, deliverMessage, type DispatchPort } from './dispatch.js';
import { Connections } from './connections.js';
import { Identity } from './identity.js';
import { SendQueues } from './send-queue.js';
import { Heartbeats } from './heartbeat.js';
import { buildSnapshot, type ChannelCounters, type ClusterSnapshot, type ClusterStats, type TimedEvent } from './snapshot.js';
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
  private readonly detector: FailureDetector;
  private readonly prober: Prober;
  private readonly dispatch: DispatchPort;
  private me: MemberInfo;
  /** created → starting → running → closing → closed (guarded: util/transitions.ts; events on the `cohort:state` channel). */
  private readonly life = new StateMachine<NodeState>('cluster-node', NodeState.Created, undefined, () => this.me?.route);
  private get state(): NodeState {
    return this.life.state;
  }
  private server: ListeningServer | undefined;
  private membership: MembershipService | undefined;
  private readonly peers = new Map<string, Peer>();
  private readonly dialer: Dialer;
  private readonly connections: Connections;
  private readonly identity: Identity;
  private readonly queues: SendQueues;
  private readonly heartbeats: Heartbeats;
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly pending: PendingCalls;
  private readonly memberListeners = new Set<(e: MembershipEvent) => void>();
  private readonly errorListeners = new Set<(e: ClusterErrorEvent) => void>();
  private readonly ring: TimedEvent[] = [];
  private readonly counters_: ChannelCounters = { authFailures: 0, handshakeAborted: 0, protocolErrors: 0, refused: 0, versionRefused: 0, dropped: 0 };

  constructor(config: ClusterConfig, deps: ClusterNodeDeps = {}) {
    this.config = config;
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? systemRandom;
    const secret = resolveSecret(config, deps.env ?? process.env);
    this.keys = secret !== undefined ? deriveClusterKeys(secret) : undefined;
    // mutual TLS replaces the secret handshake on the channel; a secret, if also given, still seals multicast heartbeats
    this.net = deps.net ?? (config.tls ? tlsNet(config.tls) : plainNet);
    this.security = this.net.tls ? { kind: 'tls' } : { kind: 'secret', keys: this.keys!, random: this.random, ...(deps.protocolVersion !== undefined ? { protocolVersion: deps.protocolVersion } : {}) };
    this.registry = deps.membershipRegistry ?? defaultMembershipRegistry(deps);
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
    const running = (): boolean => this.state === NodeState.Running;
    const error = (e: ClusterErrorEvent): void => this.emitError(e);
    const peer = (id: string): Peer | undefined => this.peers.get(id);
    this.queues = new SendQueues({
      limits: config.limits,
      counters: this.counters_,
      peer,
      suspect: (id, reason) => this.detector.suspect(id, reason),
      dial: (p) => this.connections.dialPeer(p),
      error,
    });
    this.connections = new Connections({
      clock: this.clock,
      security: this.security,
      maxFrameBytes: config.limits.maxFrameBytes,
      handshakeTimeoutMs: t.handshakeTimeoutMs,
      dialer: this.dialer,
      counters: this.counters_,
      running,
      peer,
      hello: () => this.identity.wireSelf(),
      onEnvelope: (c, env, bytes) => this.onEnvelope(c, env, bytes),
      suspect: (id, reason) => this.detector.suspect(id, reason),
      confirmGone: (id, reason) => this.detector.confirmGone(id, reason),
      error,
    });
    this.identity = new Identity({
      clock: this.clock,
      dialer: this.dialer,
      counters: this.counters_,
      detector: this.detector,
      peers: this.peers,
      self: () => this.me,
      identified: (key) => this.connections.identified(key),
      dialPeer: (p) => this.connections.dialPeer(p),
      error,
    });
    this.heartbeats = new Heartbeats({
      clock: this.clock,
      timing: t,
      running,
      peers: () => this.peers.values(),
      incarnation: () => this.me.incarnation,
      isGone: (id) => this.detector.get(id)?.state === MemberState.Gone,
      send: (p, plain) => this.queues.enqueue(p, plain),
      dial: (p) => this.connections.dialPeer(p),
      ping: (p, timeoutMs) => this.request(p.id, PING_TOPIC, {}, { timeoutMs }),
    });
    this.prober = new Prober(
      {
        request: (to, topic, payload, o) => this.request(to, topic, payload, o),
        liveMembers: () => this.members(),
        isPeer: (id) => this.peers.has(id),
        alive: (id, inc) => this.detector.alive(id, inc),
        incarnation: () => this.me.incarnation,
        refute: () => {
          this.me = { ...this.me, incarnation: this.me.incarnation + 1 };
          this.heartbeats.sendNow();
          return this.me.incarnation;
        },
      },
      this.random,
      t,
    );
    this.dispatch = {
      handler: (topic) => this.handlers.get(topic),
      internal: (topic, payload) => (topic === PING_TOPIC ? Promise.resolve(this.prober.onPing(payload)) : topic === PROBE_TOPIC ? this.prober.onProbeRequest(payload) : undefined),
      reply: (conn, env) => this.queues.reply(conn, env),
      error: (code, message, peer) => this.emitError({ code, message, peer }),
    };
  }

  get self(): MemberInfo {
    return this.me;
  }

  /** Every open connection, identified or not (the tests' window on the sockets). */
  private get conns(): Set<Connection> {
    return this.connections.all;
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
    for (const p of this.peers.values()) this.queues.enqueue(p, encodeEnvelope({ t: 'meta', inc: this.me.incarnation, meta: this.me.meta }));
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
    return { ...this.counters_, connections: this.conns.size, pending: this.pending.size };
  }

  /** JSON snapshot of the members view, counters and recent events (for the admin API and `cohort members`). */
  snapshot(): ClusterSnapshot {
    return buildSnapshot(this.me, this.state, this.detector.all(), this.counters(), this.stats(), this.ring);
  }

  async start(): Promise<void> {
    if (this.state !== NodeState.Created) return;
    this.life.transition([NodeState.Created], NodeState.Starting);
    this.server = await this.net.listen(this.config.listen.host, this.config.listen.port, (s: Socket) => this.connections.accept(s), (err, remote) => this.connections.countAuthFailure(err, remote));
    if (!this.config.advertise?.port) this.me = { ...this.me, channelAddress: { host: this.me.channelAddress.host, port: this.server.port } };
    this.dialer.markSelf(addressKey(this.me.channelAddress));
    if (!this.life.tryTransition([NodeState.Starting], NodeState.Running)) {
      // destroyed while the listener was opening
      await this.server.close();
      return;
    }
    this.detector.start();
    this.heartbeats.start();
    try {
      this.membership = this.registry.create(this.config.membership, { clock: this.clock, self: () => this.me, keys: this.keys });
      await this.membership.start(this.sink());
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.state === NodeState.Closing || this.state === NodeState.Closed) return;
    this.life.transition([NodeState.Created, NodeState.Starting, NodeState.Running], NodeState.Closing);
    this.stopBackground();
    const leave = encodeEnvelope({ t: 'leave' });
    const conns = this.conns;
    // on every connection: the peer must read the leave before the end of whichever connection it reads first
    // (identified or not: a peer that identified us before we identified it must hear it too)
    for (const c of conns) if (c.state === ConnectionState.Open) c.sendEncoded(leave);
    await new Promise((r) => setImmediate(r));
    const deadline = this.clock.now() + 1000;
    while ([...conns].some((c) => c.bufferedBytes > 0) && this.clock.now() < deadline) await sleep(this.clock, 10);
    for (const c of [...conns]) c.close('local');
    this.finish();
    await this.server?.close();
  }

  destroy(): void {
    if (this.state === NodeState.Closed) return;
    this.life.tryTransition([NodeState.Created, NodeState.Starting, NodeState.Running], NodeState.Closing);
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
        this.queues.enqueue(peer, encodeEnvelope({ t: 'msg', id, topic, ack: 'none', p: payload }), () => settle(), (e) => settle(e));
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
    this.queues.enqueue(peer, encodeEnvelope(env), undefined, (e) => this.pending.settle(id, e));
    return answer;
  }

  // ---- envelopes ----

  private onEnvelope(conn: Connection, env: Envelope, bytes: number): void {
    if (!conn.peerId) {
      if (env.t === 'hello') this.identity.onHello(conn, toMemberInfo(env.member));
      else if (env.t === 'refuse') this.identity.onRefuse(conn, env.code, env.message);
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
        this.identity.onRefuse(conn, env.code, env.message);
        return;
      case 'hello':
        conn.close('protocol', new CohortError('COHORT_PROTOCOL', 'second hello on a connection'));
        return;
    }
  }

  /** The detector asks for a probe of a suspect member. */
  private probe(id: string): void {
    const peer = this.peers.get(id);
    if (!peer || this.state !== NodeState.Running) return;
    if (!peer.ready()) this.connections.dialPeer(peer);
    this.prober.probe(id);
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
          if (!connected) this.connections.dial(a);
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
    this.heartbeats.stop();
    this.membership?.close();
    this.detector.stop();
    this.dialer.cancelAll();
  }

  private finish(): void {
    const err = new CohortError('COHORT_CLOSED', `cluster node ${this.me.route} closed`);
    this.pending.failAll(err);
    for (const p of this.peers.values()) p.dropAll(err);
    // close() and a destroy() during it both finish: the first one closes
    this.life.tryTransition([NodeState.Closing], NodeState.Closed);
  }
}
