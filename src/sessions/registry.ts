/**
 * The session backend registry: validated `sessions` configuration → a
 * SessionManager. Backends register by name in a registry the application
 * owns (no module-global state) — `replicated` (all-to-all or backup over the
 * cluster channel) and `redis` built in — each with the schema of its own key
 * of the `sessions` section and a factory. The node runtime builds its
 * manager here, and `node.sessions` in src/node/config.ts is this registry's
 * {@link SessionBackendRegistry.sectionSchema}, so the two cannot disagree.
 *
 *   registry.register('mongo', { key: 'mongo', schema: mongoSchema, create: (config, deps) => new MongoManager(...) });
 */
import { z } from 'zod';
import type { ClusterChannel } from '../cluster/types.js';
import type { Clock, Random } from '../util/clock.js';
import { ConfigError } from '../errors.js';
import { cookieConfigSchema, parseConfig, replicationConfigSchema, type CookieConfig } from './config.js';
import type { SessionLogger, SessionManager } from './contract.js';
import { redisConfigSchema } from './redis/config.js';
import { migrateConfigSchema, type MigrateConfig } from './http/migration-config.js';
import { redisManagerFromConfig } from './redis/from-config.js';
import { ReplicatedSessionManager } from './replication/replicated-manager.js';

/** What a backend factory may use: narrow interfaces, no god object. */
export interface SessionDeps {
  readonly channel?: ClusterChannel;
  /** Used when there is no channel (Redis mode). */
  readonly route?: string;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly logger?: SessionLogger;
  /** false: the caller publishes readiness in the channel meta itself (the node runtime); default true. */
  readonly publishReady?: boolean;
}

/** One backend: the schema of its key in the `sessions` section, and how to build it from the validated value. */
export interface SessionBackend<S extends z.ZodType = z.ZodType> {
  /** Its key in the `sessions` section (default: the backend's name), e.g. `replication`, `redis`. */
  readonly key?: string;
  readonly schema: S;
  /** `section`: the whole validated `sessions` section, for settings a backend shares with others (Redis honours `replication`'s). */
  create(config: z.output<S>, deps: SessionDeps, file: string | undefined, section: SessionsSection): SessionManager;
}

/** The `sessions` section once validated: the backend's name, the cookie, Cohort's req.session options, the migration, and each backend's key. */
export interface SessionsSection {
  readonly store: string;
  readonly cookie?: CookieConfig;
  /** express-session's `resave` for Cohort's req.session (unset: express-session's default, true). */
  readonly resave?: boolean;
  /** express-session's `saveUninitialized` for Cohort's req.session (unset: express-session's default, true). */
  readonly saveUninitialized?: boolean;
  /** Import the previous session layer's sessions on first use (migration-config.ts). */
  readonly migrate?: MigrateConfig;
  readonly [key: string]: unknown;
}

/** The raw `sessions` section (before validation). */
export type SessionsConfigInput = { readonly store?: string; readonly cookie?: z.input<typeof cookieConfigSchema> } & Record<string, unknown>;

/** Registry of session backends, owned by the application object. */
export class SessionBackendRegistry {
  private readonly backends = new Map<string, SessionBackend>();

  register<S extends z.ZodType>(name: string, backend: SessionBackend<S>): this {
    this.backends.set(name, backend as unknown as SessionBackend);
    return this;
  }

  names(): string[] {
    return [...this.backends.keys()];
  }

  private keyOf(name: string): string {
    return this.backends.get(name)?.key ?? name;
  }

  /**
   * The `sessions` section's schema: `store` (a registered name, default
   * `replicated`), `cookie`, `resave`, `saveUninitialized`, `migrate`, and each backend's key (optional; the chosen
   * backend's is validated even when absent, so its defaults apply). Unknown keys are rejected.
   */
  sectionSchema(): z.ZodType<SessionsSection, SessionsConfigInput | undefined> {
    const shape: Record<string, z.ZodType> = {
      store: z.string().default('replicated'),
      cookie: cookieConfigSchema.optional(),
      resave: z.boolean().optional(),
      saveUninitialized: z.boolean().optional(),
      migrate: migrateConfigSchema.optional(),
    };
    for (const [name, b] of this.backends) shape[this.keyOf(name)] = b.schema.optional();
    return z.strictObject(shape).superRefine((v, ctx) => {
      const store = v.store as string;
      if (!this.backends.has(store)) {
        ctx.addIssue({ code: 'custom', path: ['store'], message: `unknown backend ${JSON.stringify(store)} (expected one of ${this.names().join(', ')})` });
      }
    }) as unknown as z.ZodType<SessionsSection, SessionsConfigInput | undefined>;
  }

  /** Validates `input` (the `sessions` section) and builds its backend. */
  create(input: unknown, deps: SessionDeps, file?: string): SessionManager {
    return this.build(parseConfig(this.sectionSchema(), input, 'sessions', file), deps, file);
  }

  /** Builds the backend of an already validated section (see {@link sectionSchema}). */
  build(section: SessionsSection, deps: SessionDeps, file?: string): SessionManager {
    const backend = this.backends.get(section.store);
    if (!backend) throw new ConfigError(file, [`sessions.store: unknown backend ${JSON.stringify(section.store)} (expected one of ${this.names().join(', ')})`]);
    const key = this.keyOf(section.store);
    const config = parseConfig(backend.schema, section[key], `sessions.${key}`, file);
    return backend.create(config, deps, file, section);
  }
}

/** A registry with the built-in backends `replicated` and `redis`. */
export function defaultSessionBackends(): SessionBackendRegistry {
  return new SessionBackendRegistry()
    .register('replicated', {
      key: 'replication',
      schema: replicationConfigSchema,
      create: (config, deps, file) => {
        if (!deps.channel) throw new ConfigError(file, ['sessions.store: "replicated" needs the cluster channel (is clustering enabled?)']);
        return new ReplicatedSessionManager({
          channel: deps.channel, config, clock: deps.clock, random: deps.random, logger: deps.logger,
          ...(deps.publishReady !== undefined ? { publishReady: deps.publishReady } : {}),
        });
      },
    })
    .register('redis', {
      schema: redisConfigSchema,
      create: (redis, deps, file, section) => {
        const route = deps.channel?.self.route ?? deps.route;
        if (!route) throw new ConfigError(file, ['sessions.redis: the node route is unknown (set the node route)']);
        // The same session settings as the replicated modes (sessions.replication), the connection from sessions.redis.
        return redisManagerFromConfig({ redis, replication: section.replication, route, clock: deps.clock, random: deps.random, logger: deps.logger, file });
      },
    });
}

/** The `sessions` section's schema with the built-in backends. */
export const sessionsConfigSchema = defaultSessionBackends().sectionSchema();
