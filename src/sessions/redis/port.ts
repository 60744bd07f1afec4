/**
 * The narrow port between the session manager and a Redis client library
 * (node-redis or ioredis, in Redis standalone, Redis Cluster or Sentinel
 * topology). The manager speaks raw commands through it; routing by key
 * slot, MOVED/ASK redirects, reconnecting and following a Sentinel failover
 * are the client library's job. Adapters: client-node-redis.ts,
 * client-ioredis.ts; chosen by name in connect.ts.
 */
import type { RedisCredentials, RedisTopology } from './config.js';

/** One Redis command and its arguments, e.g. `['HGETALL', key]`. */
export type RedisCommand = readonly string[];

/** Sends a command to one fixed server. */
export type RedisSender = (command: RedisCommand) => Promise<unknown>;

export interface RedisPort {
  readonly topology: RedisTopology['kind'];
  /** Connects (cluster: learns the slots; Sentinel: finds the master). Rejects with the client's error. */
  connect(): Promise<void>;
  /** One command to the master serving `key`'s slot (standalone and Sentinel: the master). */
  send(key: string, command: RedisCommand): Promise<unknown>;
  /**
   * Commands in order on one connection to the master serving `key`: WAIT
   * counts the writes of its own connection, so a write and its WAIT must
   * share one. Resolves to each command's reply; rejects on the first error.
   */
  sendOnOneConnection(key: string, commands: readonly RedisCommand[]): Promise<unknown[]>;
  /** A sender per master (the whole keyspace: SCAN, counting), the current ones. */
  masters(): Promise<RedisSender[]>;
  /** Graceful (QUIT / close). Safe to call twice. */
  close(): Promise<void>;
  /** Immediate. Safe to call twice. */
  destroy(): void;
}

/** What an adapter needs to build its client. */
export interface RedisPortOptions {
  readonly topology: RedisTopology;
  readonly credentials: RedisCredentials;
  readonly sentinelPassword?: string | undefined;
  readonly tls: boolean;
  readonly db: number;
  /** ms a command may wait (queued while reconnecting included). */
  readonly commandTimeoutMs: number;
  /** Background errors of the client (a lost connection while idle, a failed reconnect); must not throw. */
  readonly onClientError: (err: unknown) => void;
  /** Extra options for the ioredis constructors (ignored by node-redis). */
  readonly ioredisOptions?: object;
}

/** Builds a port; a test may inject its own. */
export type RedisPortFactory = (options: RedisPortOptions) => Promise<RedisPort>;

/** ms between reconnection attempts: 50 ms doubling, at most 1 s (a failover takes seconds; a request waits at most commandTimeoutMs). */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(1_000, 50 * 2 ** Math.min(10, Math.max(0, attempt - 1)));
}
