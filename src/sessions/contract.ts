/**
 * The contract every session backend implements (replicated in memory over
 * the cluster channel, or Redis/Valkey). Framework adapters (node:http,
 * Express, Fastify, the express-session Store) depend on this only.
 */
import type { Session } from './model/session.js';

export interface CommitOptions {
  /**
   * true: resolve only when the peers that hold copies applied the change
   * (the response waits). Default: the manager's configured consistency.
   */
  readonly sync?: boolean;
}

export interface CommitResult {
  /** The session's version after the commit. */
  readonly version: number;
  /** Whether the commit carried changes (a delta), as opposed to a mere access. */
  readonly changed: boolean;
  /** Members (ids) that acknowledged (sync) or were sent to (async). */
  readonly replicatedTo: readonly string[];
  /** Member id → error, for sync commits. */
  readonly failed: Readonly<Record<string, string>>;
}

export interface LoadOptions {
  /**
   * Take ownership of a session whose route names another node (rewriting
   * the route to this node's). Default true; the express-session Store passes false.
   */
  readonly takeOver?: boolean;
}

export interface SessionEventMap {
  created: [SessionEvent];
  destroyed: [SessionEvent & { readonly reason: 'invalidated' | 'expired' }];
  attributeChanged: [SessionEvent & { readonly name: string }];
  /** Route take-over: `previousId` → `id` now owned here. */
  takenOver: [SessionEvent & { readonly previousId: string }];
}

export interface SessionEvent {
  readonly id: string;
  /** true when fired on a node that holds a copy, not the owner. */
  readonly replica: boolean;
}

/** Minimal structured logger (pino-compatible). */
export interface SessionLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: SessionLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface SessionManager {
  /** This node's route: the suffix of the ids it owns. */
  readonly route: string;
  /** True once start() finished (state transfer included). */
  readonly ready: boolean;
  /** Default max inactive interval of new sessions, ms. */
  readonly defaultMaxInactiveMs: number;
  /** Whether commits are synchronous unless a commit says otherwise. */
  readonly syncByDefault: boolean;
  start(): Promise<void>;
  /**
   * A new session, owned here, not stored until its first commit. `id`: use
   * this id's base (express-session Store generating its own ids); default random.
   */
  create(id?: string): Session;
  /** The session with this id (cookie value), or undefined if unknown, expired or destroyed. */
  load(id: string, options?: LoadOptions): Promise<Session | undefined>;
  /**
   * express-session's `reload()`: the stored copy of `session`, with this unit of work's uncommitted
   * attribute and lifetime changes discarded (commits of other requests or nodes included). Undefined
   * when the session is no longer stored (destroyed, expired, never committed). The caller uses the
   * returned object from then on (it may or may not be `session`).
   */
  reload(session: Session): Promise<Session | undefined>;
  /** End of a unit of work: store and replicate what changed (or the access). */
  commit(session: Session, options?: CommitOptions): Promise<CommitResult>;
  /** New id (same attributes), e.g. on login against session fixation. Takes effect at commit. */
  regenerateId(session: Session): void;
  /** Destroys the session everywhere. */
  invalidate(session: Session, options?: CommitOptions): Promise<void>;
  /** Ids of the sessions held here (owner or copy; in backup mode a subset of the cluster's), or all sessions (Redis). For the Store's all()/length(). */
  ids(): Promise<string[]>;
  /** Destroys every session (Store.clear()). */
  clear(): Promise<void>;
  on<E extends keyof SessionEventMap>(event: E, listener: (...args: SessionEventMap[E]) => void): this;
  off<E extends keyof SessionEventMap>(event: E, listener: (...args: SessionEventMap[E]) => void): this;
  /** Graceful: flushes pending replication. Safe to call twice. */
  close(): Promise<void>;
  /** Immediate. Safe to call twice. */
  destroy(): void;
}
