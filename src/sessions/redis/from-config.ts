/**
 * A RedisSessionManager from the validated `sessions` settings: the
 * `sessions.redis` section for the connection, and the same session
 * settings the replicated modes honour (`sessions.replication`:
 * maxInactiveMs, maxAttributeBytes, maxSessionBytes, consistency), which
 * `sessions.redis.maxInactiveMs` / `consistency` override when set.
 */
import type { Clock, Random } from '../../util/clock.js';
import { parseConfig, replicationConfigSchema, type ReplicationConfig } from '../config.js';
import type { SessionLogger } from '../contract.js';
import { redisConfigSchema, type RedisConfig } from './config.js';
import { RedisSessionManager } from './redis-manager.js';

export interface RedisBackendInput {
  /** `sessions.redis` as written (URL string or object), or already parsed. */
  readonly redis: unknown;
  /** `sessions.replication` as written, or already parsed. */
  readonly replication?: unknown;
  readonly route: string;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly logger?: SessionLogger;
  /** The config file, for error messages. */
  readonly file?: string;
}

/** Validates both sections (ConfigError naming file and key) and builds the manager (not started). */
export function redisManagerFromConfig(input: RedisBackendInput): RedisSessionManager {
  const redis: RedisConfig = parseConfig(redisConfigSchema, input.redis, 'sessions.redis', input.file);
  const repl: ReplicationConfig = parseConfig(replicationConfigSchema, input.replication, 'sessions.replication', input.file);
  const { maxInactiveMs, consistency, ...connection } = redis;
  return new RedisSessionManager({
    ...connection,
    route: input.route,
    maxInactiveMs: maxInactiveMs ?? repl.maxInactiveMs,
    consistency: consistency ?? repl.consistency,
    maxAttributeBytes: repl.maxAttributeBytes,
    maxSessionBytes: repl.maxSessionBytes,
    ...(input.clock ? { clock: input.clock } : {}),
    ...(input.random ? { random: input.random } : {}),
    ...(input.logger ? { logger: input.logger } : {}),
  });
}
