/**
 * Accepting, dialling and confirming connections. Every connection, accepted
 * or dialled, is tracked here until it closes; a dial either verifies a
 * discovered address or confirms a suspect member: a refused connect there
 * confirms it gone (deferred one turn, so that a `leave` it wrote first is
 * read first), a reset asks again shortly. What a closed connection means for
 * the member (suspicion, re-dial) is decided here too; authentication
 * failures are counted, never evidence about a member.
 */
import type { Socket } from 'node:net';
import type { Clock } from '../util/clock.js';
import { CohortError } from '../errors.js';
import type { ClusterErrorEvent } from './channel-deps.js';
import { Connection, type CloseReason, type ConnectionSecurity } from './connection.js';
import { ProtocolVersionError } from './handshake.js';
import type { Dialer } from './dialer.js';
import type { Envelope } from './envelope.js';
import { addressKey, type Address } from './membership.js';
import type { Peer } from './peer.js';
import type { ChannelCounters } from './snapshot.js';
import type { MemberInfo } from './types.js';

/** Confirmation dials per address before giving up (a dying listener that keeps resetting). */
const MAX_CONFIRM_TRIES = 25;
/** ms before asking again after a reset. */
const CONFIRM_RETRY_MS = 20;

export interface ConnectionsPort {
  readonly clock: Clock;
  readonly security: ConnectionSecurity;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly dialer: Dialer;
  readonly counters: ChannelCounters;
  running(): boolean;
  peer(id: string): Peer | undefined;
  /** This node's identity, as the dialer's first message. */
  hello(): MemberInfo;
  onEnvelope(conn: Connection, env: Envelope, bytes: number): void;
  suspect(id: string, reason: string): void;
  confirmGone(id: string, reason: string): void;
  error(e: ClusterErrorEvent): void;
}

export class Connections {
  /** Every connection not yet closed, identified or not. */
  readonly all = new Set<Connection>();
  /** Address key → member id whose liveness a refusal there confirms. */
  private readonly confirmAt = new Map<string, { readonly id: string; readonly addr: Address; tries: number }>();

  constructor(private readonly port: ConnectionsPort) {}

  get size(): number {
    return this.all.size;
  }

  /** An accepted socket: the acceptor answers once it accepted the dialer's identity. */
  accept(socket: Socket): void {
    if (!this.port.running()) {
      socket.destroy();
      return;
    }
    this.adopt(new Connection(this.options('server', socket)));
  }

  /** Dials an address to verify it (discovery) or to confirm a suspect member (`expectId`): a refused connect confirms it gone. */
  dial(addr: Address, expectId?: string): void {
    if (!this.port.running()) return;
    const dialer = this.port.dialer;
    // an attempt already in flight for this address (e.g. a discovery dial) must confirm too
    if (expectId !== undefined) {
      const key = addressKey(addr);
      this.confirmAt.set(key, { id: expectId, addr, tries: this.confirmAt.get(key)?.tries ?? 0 });
    }
    dialer.dial(
      addr,
      expectId !== undefined,
      (socket, key) => {
        if (!this.port.running()) {
          dialer.done(key);
          socket.destroy();
          return;
        }
        const conn = new Connection(this.options('client', socket));
        conn.dialKey = key;
        this.adopt(conn);
      },
      (err, key) => {
        const c = this.confirmAt.get(key);
        if (c && err.code === 'ECONNREFUSED') {
          this.confirmAt.delete(key);
          // Deferred past this event-loop turn: a `leave` that a departing peer wrote before closing its
          // port may sit in the same poll batch as this refusal, and must be read first.
          this.port.clock.setTimeout(() => this.port.confirmGone(c.id, `connection refused by ${key}`), 0).unref?.();
        } else if (c && err.code === 'ECONNRESET') this.retryConfirm(key);
        else this.confirmAt.delete(key);
      },
    );
  }

  /** Dials a known member at its channel address (confirming it). */
  dialPeer(peer: Peer): void {
    this.dial(peer.info.channelAddress, peer.id);
  }

  /** The member at `dialKey` answered with its identity: nothing left to confirm there. */
  identified(dialKey: string): void {
    this.port.dialer.done(dialKey);
    this.confirmAt.delete(dialKey);
  }

  countAuthFailure(err: Error | undefined, remote: string, peer?: Peer): void {
    this.port.counters.authFailures++;
    if (peer) peer.authFailures++;
    this.port.error({ code: (err as CohortError | undefined)?.code ?? 'COHORT_TLS_AUTH', message: `authentication failed on connection ${remote}: ${err?.message ?? 'unknown'}`, remote, ...(peer ? { peer: peer.id } : {}) });
  }

  private options(role: 'client' | 'server', socket: Socket) {
    return {
      role,
      socket,
      security: this.port.security,
      clock: this.port.clock,
      maxFrameBytes: this.port.maxFrameBytes,
      handshakeTimeoutMs: this.port.handshakeTimeoutMs,
      handlers: {
        onOpen: (c: Connection) => {
          // the dialer speaks first; the acceptor answers once it accepted the dialer's identity
          if (c.role === 'client') c.send({ t: 'hello', member: this.port.hello() });
        },
        onEnvelope: (c: Connection, env: Envelope, bytes: number) => this.port.onEnvelope(c, env, bytes),
        onClose: (c: Connection, reason: CloseReason, err?: Error) => this.onClose(c, reason, err),
      },
    } as const;
  }

  private adopt(conn: Connection): void {
    this.all.add(conn);
    conn.start();
  }

  /** A dying process's listener can still accept, then reset: that is no answer yet, so ask again soon. */
  private retryConfirm(key: string): void {
    const c = this.confirmAt.get(key);
    if (!c) return;
    if (c.tries >= MAX_CONFIRM_TRIES || !this.port.running()) {
      this.confirmAt.delete(key);
      return;
    }
    c.tries++;
    this.port.clock.setTimeout(() => this.dial(c.addr, c.id), CONFIRM_RETRY_MS).unref?.();
  }

  private onClose(conn: Connection, reason: CloseReason, err?: Error): void {
    this.all.delete(conn);
    if (conn.dialKey && !conn.peerId) {
      this.port.dialer.done(conn.dialKey);
      if (reason !== 'local') this.retryConfirm(conn.dialKey);
      else this.confirmAt.delete(conn.dialKey);
    }
    const peer = conn.peerId ? this.port.peer(conn.peerId) : undefined;
    if (reason === 'auth') this.countAuthFailure(err, conn.remote, peer);
    else if (reason === 'version') {
      this.port.counters.versionRefused++;
      const v = err instanceof ProtocolVersionError ? err : undefined;
      this.port.error({
        code: 'COHORT_CLUSTER_VERSION',
        message: `refused connection ${conn.remote} (${conn.role === 'client' ? 'dialed' : 'accepted'}): it speaks cluster protocol version ${v?.peerVersion ?? '?'}, this node speaks version ${v?.localVersion ?? '?'}`,
        remote: conn.remote,
        ...(v ? { localVersion: v.localVersion, peerVersion: v.peerVersion } : {}),
      });
    } else if (reason === 'protocol') {
      this.port.counters.protocolErrors++;
      this.port.error({ code: (err as CohortError | undefined)?.code ?? 'COHORT_PROTOCOL', message: `closed connection ${conn.remote}: ${err?.message ?? 'protocol error'}`, remote: conn.remote, ...(peer ? { peer: peer.id } : {}) });
    } else if (!conn.peerId && reason !== 'local') this.port.counters.handshakeAborted++;
    if (!peer) return;
    if (peer.out === conn) peer.out = undefined;
    peer.ins.delete(conn);
    if (!this.port.running() || reason === 'local') return;
    // An authentication failure closes the connection and is counted; it is not evidence about the member.
    // A lost connection is evidence only if it was the last one with that member (a crashed process drops
    // them all; a duplicate or a single broken one is just re-dialed).
    if ((reason === 'remote' || reason === 'timeout') && !peer.hasOpenConnection()) this.port.suspect(peer.id, 'connection lost');
    if (!peer.ready()) this.dialPeer(peer);
  }
}
