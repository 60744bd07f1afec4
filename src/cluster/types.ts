/**
 * The contract between the cluster layer (membership + authenticated channel)
 * and what is built on it (session replication, the balancer's node discovery,
 * the node runtime, the dashboard). Keep it narrow: consumers depend on these
 * types only, never on sockets or on a particular membership service.
 */

/** A JSON-compatible value: the only thing that travels on the channel. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A node's identity as the cluster knows it. */
export interface MemberInfo {
  /** Random id, new at every process start (hex or base64url). */
  readonly id: string;
  /** Unique in the cluster, like Tomcat's jvmRoute; the session id's suffix. */
  readonly route: string;
  /** Raised by the node itself to refute suspicion; restarts start at a fresh id. */
  readonly incarnation: number;
  readonly clusterName: string;
  /** Where its cluster channel listens. */
  readonly channelAddress: { readonly host: string; readonly port: number };
  /** Wall-clock start time (ms since epoch), informative only. */
  readonly startTime: number;
  /**
   * Free-form attributes a node publishes: e.g. `http` (its app URL for the
   * balancer), `role` ('node' | 'balancer'), `ready` ('true' once state
   * transfer is done), `load`.
   */
  readonly meta: Readonly<Record<string, string>>;
}

export enum MemberState {
  Alive = 'alive',
  Suspect = 'suspect',
  Gone = 'gone',
}

export interface MemberView extends MemberInfo {
  readonly state: MemberState;
  /** Monotonic ms of the last evidence of life. */
  readonly lastSeen: number;
}

export type MembershipEvent =
  | { readonly type: 'added'; readonly member: MemberView }
  | { readonly type: 'suspected'; readonly member: MemberView; readonly reason: string }
  | { readonly type: 'gone'; readonly member: MemberView; readonly reason: string }
  | { readonly type: 'back'; readonly member: MemberView }
  | { readonly type: 'updated'; readonly member: MemberView };

/**
 * Tribes' channelSendOptions. `async`: queued, ordered per peer, resolved when
 * written. `received`: resolved when the peer acknowledged receipt.
 * `applied`: resolved when the peer's handler finished (its promise settled).
 */
export type SendMode = 'async' | 'received' | 'applied';

export interface SendOptions {
  readonly mode?: SendMode;
  /** ms; default 5000. */
  readonly timeoutMs?: number;
}

export interface BroadcastResult {
  /** Member ids that acknowledged (or were written to, for async). */
  readonly ok: readonly string[];
  /** Member id → error message. */
  readonly failed: Readonly<Record<string, string>>;
}

/** Called for each message of a topic. A returned promise delays an `applied` ack; a returned value answers a request. */
export type MessageHandler = (from: MemberView, payload: JsonValue) => JsonValue | void | Promise<JsonValue | void>;

export interface PeerCounters {
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly authFailures: number;
  readonly queueDepth: number;
  readonly dropped: number;
  /** ms, smoothed; undefined until measured. */
  readonly rttMs: number | undefined;
}

/** What session replication, node discovery and the dashboard use. */
export interface ClusterChannel {
  readonly self: MemberInfo;
  /** Members other than self that are alive or suspect (not gone). */
  members(): readonly MemberView[];
  /** Listen for membership changes. Returns an unsubscribe function. */
  onMembership(listener: (event: MembershipEvent) => void): () => void;
  /** Publish new meta for self (e.g. ready=true, load=0.3); peers see an 'updated' event. */
  setMeta(meta: Record<string, string>): void;
  /** Register the handler of a topic (one per topic). */
  handle(topic: string, handler: MessageHandler): void;
  send(to: string, topic: string, payload: JsonValue, options?: SendOptions): Promise<void>;
  broadcast(topic: string, payload: JsonValue, options?: SendOptions): Promise<BroadcastResult>;
  /** Request/response: resolves with the handler's return value on the peer. */
  request(to: string, topic: string, payload: JsonValue, options?: { readonly timeoutMs?: number }): Promise<JsonValue>;
  counters(): Readonly<Record<string, PeerCounters>>;
  start(): Promise<void>;
  /** Graceful: tells peers it leaves, flushes queues. Safe to call twice. */
  close(): Promise<void>;
  /** Immediate. Safe to call twice. */
  destroy(): void;
}
