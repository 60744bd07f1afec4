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
import { cookieConfigSchema, parseConfig, replicationConfigSchema } from './config.js';
import type { SessionLogger, SessionManager } from './manager.js';
import { redisManagerFromConfig } from './redis/from-config.js';
import { ReplicatedSessionManager } from './replication/replicated-manager.js';

export { redisConfigSchema } from './redis/config.js';

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
      const route = deps.channel?.self.route ?? deps.route;
      if (!route) throw new ConfigError(file, ['sessions.redis: the node route is unknown (set the node route)']);
      return redisManagerFromConfig({ redis: cfg.redis, replication: cfg.replication, route, clock: deps.clock, logger: deps.logger, file });
    });
}
