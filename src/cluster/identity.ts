/**
 * Identity on a connection: the `hello` exchange (the dialer speaks first,
 * the acceptor answers once it accepted the dialer's identity) and `refuse`.
 * The decision — same cluster? myself? route already in use? — is pure
 * (admission.ts); this file applies it: block or mark the address, refuse
 * with COHORT_ROUTE_CONFLICT, or admit the member (a new Peer, the
 * connection as its outgoing or incoming one, the detector told).
 */
import type { Clock } from '../util/clock.js';
import { admit } from './admission.js';
import type { ClusterErrorEvent } from './channel-deps.js';
import { ConnectionState, type Connection } from './connection.js';
import type { Dialer } from './dialer.js';
import type { FailureDetector } from './failure-detector.js';
import { addressKey } from './membership.js';
import { Peer } from './peer.js';
import type { ChannelCounters } from './snapshot.js';
import type { MemberInfo } from './types.js';

export interface IdentityPort {
  readonly clock: Clock;
  readonly dialer: Dialer;
  readonly counters: ChannelCounters;
  readonly detector: Pick<FailureDetector, 'byRoute' | 'confirmGone' | 'verified' | 'left'>;
  /** Verified members by id (identity adds to it). */
  readonly peers: Map<string, Peer>;
  self(): MemberInfo;
  /** The member at `dialKey` answered: nothing left to confirm there. */
  identified(dialKey: string): void;
  dialPeer(peer: Peer): void;
  error(e: ClusterErrorEvent): void;
}

export class Identity {
  constructor(private readonly port: IdentityPort) {}

  /** This node's identity as sent in `hello` (a copy). */
  wireSelf(): MemberInfo {
    const me = this.port.self();
    return { ...me, meta: { ...me.meta }, channelAddress: { ...me.channelAddress } };
  }

  onHello(conn: Connection, m: MemberInfo): void {
    const { detector, dialer, peers } = this.port;
    const dialKey = conn.dialKey;
    const holder = detector.byRoute(m.route);
    const decision = admit(this.port.self(), m, holder, holder ? (peers.get(holder.id)?.hasOpenConnection() ?? false) : false);
    switch (decision.kind) {
      case 'other-cluster':
        if (dialKey) dialer.block(dialKey);
        conn.close('local');
        return;
      case 'self':
        if (dialKey) dialer.markSelf(dialKey);
        conn.close('local');
        return;
      case 'refuse':
        this.port.counters.refused++;
        this.port.error({ code: 'COHORT_ROUTE_CONFLICT', message: `refused node ${m.id} at ${addressKey(m.channelAddress)}: ${decision.message}`, remote: conn.remote });
        conn.send({ t: 'refuse', code: 'COHORT_ROUTE_CONFLICT', message: decision.message });
        if (dialKey) dialer.block(dialKey);
        conn.close('local');
        return;
      case 'admit':
        if (decision.replaces) detector.confirmGone(decision.replaces, `replaced by node ${m.id} with the same route`);
    }
    let peer = peers.get(m.id);
    if (!peer) {
      peer = new Peer(m);
      peers.set(m.id, peer);
    }
    peer.info = m;
    peer.lastHeardAt = this.port.clock.now();
    conn.peerId = m.id;
    if (conn.role === 'client') {
      if (dialKey) this.port.identified(dialKey);
      if (peer.out && peer.out !== conn && peer.out.state === ConnectionState.Open) conn.close('local');
      else peer.out = conn;
    } else {
      peer.ins.add(conn);
      conn.send({ t: 'hello', member: this.wireSelf() });
    }
    detector.verified(m);
    peer.drain();
    if (!peer.ready()) this.port.dialPeer(peer);
  }

  onRefuse(conn: Connection, code: string, message: string): void {
    if (conn.dialKey) this.port.dialer.block(conn.dialKey);
    this.port.counters.refused++;
    this.port.error({ code, message: `refused by ${conn.remote}: ${message}`, remote: conn.remote });
    const peerId = conn.peerId;
    conn.close('local');
    if (peerId) this.port.detector.left(peerId);
  }
}
