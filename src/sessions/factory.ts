/**
 * One entry point for the node runtime: validated `sessions` configuration →
 * a SessionManager. Backends register by name in a registry the application
 * owns (no module-global state): `replicated` (all-to-all or backup over the
 * cluster channel) and `redis`.
 */
import { z } from 'zod';
import type { ClusterChannel } from '../cluster/types.js';
import type { Clock } from '../util/clock.js';
import { ConfigError } from '../errors.js';
import { cookieConfigSchema, parseConfig, replicationConfigSchema, DEFAULT_MAX_INACTIVE_MS } from './config.js';
import type { SessionLogger, SessionManager } from './manager.js';
import { RedisSessionManager } from './redis/redis-manager.js';
import { ReplicatedSessionManager } from './replication/replicated-manager.js';

export const redisConfigSchema = z.strictObject({
  url: z.string().regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://'),
  prefix: z.string().default('cohort:sess:'),
  maxInactiveMs: z.number().int().positive().default(DEFAULT_MAX_INACTIVE_MS),
  consistency: z.enum(['async', 'sync']).default('async'),
  waitReplicas: z.number().int().min(0).default(0),
});

export const sessionsConfigSchema = z.strictObject({
  /** backend name in the registry */
  store: z.string().default('replicated'),
  replication: z.unknown().optional(),
  redis: z.unknown().optional(),
  cookie: cookieConfigSchema.optional(),
});
export type SessionsConfigInput = z.input<typeof sessionsConfigSchema>;

/** What a backend factory may use: narrow interfaces, no god object. */
export interface SessionDeps {
  readonly channel?: ClusterChannel;
  /** Used when there is no channel (Redis mode). */
  readonly route?: string;
  readonly clock?: Clock;
  readonly logger?: SessionLogger;
}

export type SessionBackendFactory = (config: z.output<typeof sessionsConfigSchema>, deps: SessionDeps, file?: string) => SessionManager;

/** Registry of session backends, owned by the application object. */
export class SessionBackendRegistry {
  private readonly factories = new Map<string, SessionBackendFactory>();

  register(name: string, factory: SessionBackendFactory): this {
    this.factories.set(name, factory);
    return this;
  }

  names(): string[] {
    return [...this.factories.keys()];
  }

  /** Validates `input` (the `sessions` section) and builds its backend. */
  create(input: unknown, deps: SessionDeps, file?: string): SessionManager {
    const cfg = parseConfig(sessionsConfigSchema, input, 'sessions', file);
    const f = this.factories.get(cfg.store);
    if (!f) throw new ConfigError(file, [`sessions.store: unknown backend ${JSON.stringify(cfg.store)} (expected one of ${this.names().join(', ')})`]);
    return f(cfg, deps, file);
  }
}

/** A registry with the built-in backends `replicated` and `redis`. */
export function defaultSessionBackends(): SessionBackendRegistry {
  return new SessionBackendRegistry()
    .register('replicated', (cfg, deps, file) => {
      if (!deps.channel) throw new ConfigError(file, ['sessions.store: "replicated" needs the cluster channel (is clustering enabled?)']);
      const config = parseConfig(replicationConfigSchema, cfg.replication, 'sessions.replication', file);
      return new ReplicatedSessionManager({ channel: deps.channel, config, clock: deps.clock, logger: deps.logger });
    })
    .register('redis', (cfg, deps, file) => {
      const r = parseConfig(redisConfigSchema, cfg.redis, 'sessions.redis', file);
      const route = deps.channel?.self.route ?? deps.route;
      if (!route) throw new ConfigError(file, ['sessions.redis: the node route is unknown (set the node route)']);
      return new RedisSessionManager({ route, url: r.url, prefix: r.prefix, maxInactiveMs: r.maxInactiveMs, consistency: r.consistency, waitReplicas: r.waitReplicas, clock: deps.clock, logger: deps.logger });
    });
}
