/**
 * The bounded per-peer send queues and the bounded answers. A message goes
 * straight to the peer's outgoing connection when it is ready and nothing is
 * queued (order is kept), else into the peer's queue until the connection is
 * ready. Past `maxQueueBytes` a message is dropped (counted, error event) and
 * the peer is suspected; a message larger than a frame can carry is refused.
 */
import { CohortError } from '../errors.js';
import type { ClusterErrorEvent } from './channel-deps.js';
import { ConnectionState, type Connection } from './connection.js';
import { SEALED_OVERHEAD } from './crypto.js';
import { encodeEnvelope, BATCH_RECORD_OVERHEAD, type Envelope } from './envelope.js';
import type { Peer } from './peer.js';
import type { ChannelCounters } from './snapshot.js';

export interface SendQueuePort {
  readonly limits: { readonly maxFrameBytes: number; readonly maxQueueBytes: number };
  readonly counters: ChannelCounters;
  peer(id: string): Peer | undefined;
  /** The peer's queue is full: evidence for the failure detector. */
  suspect(id: string, reason: string): void;
  /** No ready outgoing connection: dial the peer. */
  dial(peer: Peer): void;
  error(e: ClusterErrorEvent): void;
}

export class SendQueues {
  constructor(private readonly port: SendQueuePort) {}

  /**
   * Hands an encoded envelope to the peer's outgoing connection, or queues it
   * until that connection is ready. `written` is called when handed to the
   * connection, `dropped` if it never will be.
   */
  enqueue(peer: Peer, plain: Buffer, written?: () => void, dropped?: (e: Error) => void): void {
    const { limits, counters } = this.port;
    if (plain.length + BATCH_RECORD_OVERHEAD + SEALED_OVERHEAD > limits.maxFrameBytes) {
      dropped?.(new CohortError('COHORT_MESSAGE_TOO_LARGE', `message of ${plain.length} bytes exceeds cluster.limits.maxFrameBytes (${limits.maxFrameBytes}); split it (e.g. chunked requests)`));
      return;
    }
    if (peer.backlogBytes() + plain.length > limits.maxQueueBytes) {
      peer.dropped++;
      counters.dropped++;
      const err = new CohortError('COHORT_QUEUE_FULL', `send queue to ${peer.info.route} is full (${peer.backlogBytes()} bytes waiting, limit ${limits.maxQueueBytes}); message dropped`);
      if (peer.dropped === 1 || peer.dropped % 1000 === 0) this.port.error({ code: err.code, message: err.message, peer: peer.id });
      this.port.suspect(peer.id, 'send queue full');
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
    if (!conn) this.port.dial(peer);
  }

  /**
   * Answers on the connection the message came in on. Bounded like the send
   * queue: a peer that sends but does not read its answers would otherwise
   * make us buffer without limit. Past maxQueueBytes the answer is dropped and
   * the connection closed (counted, error event); the peer can reconnect.
   */
  reply(conn: Connection, env: Envelope): void {
    if (conn.state !== ConnectionState.Open) return;
    const { limits, counters } = this.port;
    const p = conn.peerId ? this.port.peer(conn.peerId) : undefined;
    const plain = encodeEnvelope(env);
    if (conn.bufferedBytes + plain.length > limits.maxQueueBytes) {
      counters.dropped++;
      if (p) p.dropped++;
      const err = new CohortError('COHORT_QUEUE_FULL', `answers to ${p?.info.route ?? conn.remote} are not being read (${conn.bufferedBytes} bytes waiting, limit ${limits.maxQueueBytes}); answer dropped and connection closed`);
      this.port.error({ code: err.code, message: err.message, remote: conn.remote, ...(p ? { peer: p.id } : {}) });
      conn.close('protocol', err);
      return;
    }
    const n = conn.sendEncoded(plain);
    if (p) {
      p.bytesOut += n;
      p.messagesOut++;
    }
  }
}
