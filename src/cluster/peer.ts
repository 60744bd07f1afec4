/**
 * What the node keeps per verified member: its connections, its bounded send
 * queue and its counters. No protocol decisions here.
 *
 * Each node sends its own messages on the connection it dialed (`out`), so
 * messages to a peer are ordered; answers (acks, responses) go back on the
 * connection the message came in on.
 */
import type { MemberInfo, PeerCounters } from './types.js';
import { ConnectionState, type Connection } from './connection.js';

export interface QueuedFrame {
  readonly plain: Buffer;
  /** Called when handed to the connection (async sends resolve then). */
  readonly written?: () => void;
  /** Called if the frame is dropped (queue full, peer gone). */
  readonly dropped?: (err: Error) => void;
}

export class Peer {
  info: MemberInfo;
  out: Connection | undefined;
  readonly ins = new Set<Connection>();
  queue: QueuedFrame[] = [];
  queueBytes = 0;
  lastDialAt = -Infinity;
  /** Clock time of the last envelope received from this member on any of its connections (set at hello). */
  lastHeardAt = -Infinity;
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  authFailures = 0;
  dropped = 0;
  rttMs: number | undefined;

  constructor(info: MemberInfo) {
    this.info = info;
  }

  get id(): string {
    return this.info.id;
  }

  /** An open, identified outgoing connection. */
  ready(): Connection | undefined {
    return this.out && this.out.state === ConnectionState.Open && this.out.peerId === this.info.id ? this.out : undefined;
  }

  /** Bytes waiting for this peer: our queue plus what the socket has not sent yet. */
  backlogBytes(): number {
    return this.queueBytes + (this.out ? this.out.bufferedBytes : 0);
  }

  hasOpenConnection(): boolean {
    if (this.ready()) return true;
    for (const c of this.ins) if (c.state === ConnectionState.Open) return true;
    return false;
  }

  /** Writes queued frames to the outgoing connection. */
  drain(): void {
    const conn = this.ready();
    if (!conn || this.queue.length === 0) return;
    const q = this.queue;
    this.queue = [];
    this.queueBytes = 0;
    for (const f of q) {
      this.bytesOut += conn.sendEncoded(f.plain);
      this.messagesOut++;
      f.written?.();
    }
  }

  /** Drops every queued frame with `err`. */
  dropAll(err: Error): void {
    const q = this.queue;
    this.queue = [];
    this.queueBytes = 0;
    for (const f of q) f.dropped?.(err);
  }

  recordRtt(ms: number): void {
    this.rttMs = this.rttMs === undefined ? ms : this.rttMs * 0.8 + ms * 0.2;
  }

  counters(): PeerCounters {
    return {
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      authFailures: this.authFailures,
      queueDepth: this.queue.length,
      dropped: this.dropped,
      rttMs: this.rttMs,
    };
  }
}
