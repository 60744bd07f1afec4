/**
 * How `cohort node` gives an app its replicated sessions:
 *  - an app without a session layer gets Cohort's `req.session` (node:http, Express) or Cohort's Fastify
 *    plugin;
 *  - an app that brings express-session or @fastify/session keeps it — its cookie name, options, genid,
 *    `req.session` — and Cohort supplies the store: before the app is imported, the default store of each
 *    (express-session's MemoryStore, @fastify/session's in-memory Store) is replaced, for this process, by
 *    Cohort's Store on this node's manager. An app that passes its own store (connect-redis, ...) keeps it,
 *    and the startup message says so: its sessions live in that store, Cohort adds nothing on top (adding
 *    `req.session` would make express-session skip itself silently, and a second `request.session`
 *    decorator would crash Fastify).
 * Nothing is chosen silently: `describe()` is logged at startup.
 */
import { readFileSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { SessionLogger, SessionManager } from '../sessions/contract.js';
import { cohortStore } from '../sessions/http/express-store.js';
import { withSessions } from '../sessions/http/middleware.js';
import { cohortFastifySessions } from '../sessions/http/fastify.js';
import { routedGenid } from '../sessions/http/genid.js';
import type { CookieConfigInput } from '../sessions/config.js';
import type { RequestSessionOptions } from '../sessions/http/request-session.js';
import type { SessionCookieCounts } from '../sessions/http/cookie-metrics.js';
import type { Listener, LoadedApp } from './app-loader.js';

/** Options of Cohort's own req.session / Fastify plugin from the node config (`sessions.resave`, `saveUninitialized`, `migrate`), and the counters the node publishes. */
export interface CohortRequestOptions {
  readonly resave?: boolean;
  readonly saveUninitialized?: boolean;
  readonly migrate?: RequestSessionOptions['migrate'];
  readonly cookieCounts?: SessionCookieCounts;
}

/** Which session layer serves the app's requests. */
export type AppSessionsMode = 'cohort' | 'express-session' | 'fastify-session';

export interface AppSessions {
  readonly mode: AppSessionsMode;
  /** Whether the sessions are Cohort's (replicated or in Cohort's Redis), or in a store the app chose. */
  readonly store: 'cohort' | 'app';
  /** The startup message. */
  readonly message: string;
  readonly handler: Listener;
}

interface Supplied {
  /** Resolved entry of the library, if the app can import it. */
  readonly entry: string | undefined;
  /** Cohort stores the library created as its default store. */
  created: number;
  /** Calls of express-session's `session(options)` / registrations of @fastify/session (the app uses it). */
  used: number;
}

/** Replaces the default stores of express-session and @fastify/session for the app at `appPath`. Call before importing the app. */
export class StoreSupply {
  readonly express: Supplied;
  readonly fastify: Supplied;

  constructor(appPath: string, manager: SessionManager) {
    const req = createRequire(resolve(appPath));
    this.express = { entry: tryResolve(req, 'express-session'), created: 0, used: 0 };
    this.fastify = { entry: tryResolve(req, '@fastify/session'), created: 0, used: 0 };
    const ex = this.express;
    if (ex.entry) {
      const Base = req(join(dirname(ex.entry), 'session', 'store.js')) as abstract new () => object;
      const Store = cohortStore(Base);
      class CohortMemoryStore extends Store {
        constructor() {
          super(manager);
          ex.created++;
        }
      }
      preload(join(dirname(ex.entry), 'session', 'memory.js'), CohortMemoryStore);
      // session(options) without a genid gets one that puts this node's route in the id (sticky, also signed).
      // The real module is compiled apart and the cache entry holds the wrapper: an ESM `import` of a CommonJS
      // module already loaded would not see exports replaced afterwards.
      const real = compileApart(ex.entry) as ((o?: Record<string, unknown>) => unknown) & Record<string, unknown>;
      const genid = routedGenid(() => manager.route);
      const session = function session(this: unknown, o: Record<string, unknown> = {}) {
        ex.used++;
        return real.call(this, o.genid === undefined ? { ...o, genid } : o);
      };
      Object.assign(session, real);
      preload(ex.entry, session);
    }
    const fx = this.fastify;
    if (fx.entry) {
      const Store = cohortStore();
      class CohortFastifyStore extends Store {
        constructor() {
          super(manager);
          fx.created++;
        }
      }
      preload(join(dirname(fx.entry), 'lib', 'store.js'), Object.assign(CohortFastifyStore, { Store: CohortFastifyStore, MemoryStore: CohortFastifyStore, default: CohortFastifyStore }));
      // The plugin without an idGenerator gets one that puts this node's route in the id (as for express-session).
      const real = compileApart(fx.entry) as ((f: unknown, o: Record<string, unknown>, next: unknown) => unknown) & Record<string | symbol, unknown>;
      const idGenerator = routedGenid(() => manager.route);
      const fastifySession = function fastifySession(this: unknown, f: unknown, o: Record<string, unknown>, next: unknown) {
        fx.used++;
        return real.call(this, f, o.idGenerator === undefined ? { ...o, idGenerator } : o, next);
      };
      Object.assign(fastifySession, real); // fastify-plugin's metadata symbols, Store, MemoryStore, ...
      preload(fx.entry, fastifySession);
    }
  }

  /** Whether the app uses the library: express-session's `session()` was called; @fastify/session was registered (known after `ready()`). */
  loaded(which: 'express' | 'fastify'): boolean {
    return this[which].used > 0;
  }
}

function tryResolve(req: NodeJS.Require, name: string): string | undefined {
  try {
    return req.resolve(name);
  } catch {
    return undefined;
  }
}

/** Loads the CommonJS module `file` outside the cache (its own requires resolve and cache as usual); its exports. */
function compileApart(file: string): unknown {
  const m = new Module(file) as Module & { _compile(code: string, filename: string): unknown };
  m.filename = file;
  m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(dirname(file));
  m._compile(readFileSync(file, 'utf8'), file);
  m.loaded = true;
  return m.exports;
}

/** Puts `exports` in the CommonJS cache under `file`, as if `file` had been loaded. */
function preload(file: string, exports: unknown): void {
  const m = new Module(file);
  m.filename = file;
  m.exports = exports;
  m.loaded = true;
  (Module as unknown as { _cache: Record<string, unknown> })._cache[file] = m;
}

/** Wires the loaded app to its sessions (see the header), registering Cohort's Fastify plugin when it is Cohort's turn. */
export async function wireAppSessions(app: LoadedApp, manager: SessionManager, supply: StoreSupply, o: { cookie: CookieConfigInput; logger: SessionLogger; request?: CohortRequestOptions }): Promise<AppSessions> {
  const req = o.request ?? {};
  if (app.kind === 'fastify') {
    const inst = app.instance;
    // Registered last, Cohort's plugin steps aside when the app's own session plugin decorated request.session.
    let taken = false;
    inst.register(cohortFastifySessions, { manager, cookie: o.cookie, logger: o.logger, ...req, onDecoratorTaken: () => void (taken = true) });
    await inst.ready();
    const handler: Listener = (req, res) => inst.routing(req, res);
    if (!taken) return { mode: 'cohort', store: 'cohort', message: 'sessions: Cohort\'s Fastify plugin (request.session, replicated)', handler };
    if (!supply.loaded('fastify')) return { mode: 'fastify-session', store: 'app', message: 'sessions: the app decorates request.session with its own session plugin; its sessions live in that plugin\'s store (Cohort does not replicate them)', handler };
    return supply.fastify.created > 0
      ? { mode: 'fastify-session', store: 'cohort', message: 'sessions: the app registers @fastify/session; Cohort supplies its store (replicated) — the app\'s cookie name and options apply; ids without the app\'s idGenerator carry this node\'s route', handler }
      : { mode: 'fastify-session', store: 'app', message: 'sessions: the app registers @fastify/session with its own store; its sessions live there (Cohort does not replicate them)', handler };
  }
  if (app.kind === 'express' && supply.loaded('express')) {
    const handler = app.listener;
    return supply.express.created > 0
      ? { mode: 'express-session', store: 'cohort', message: 'sessions: the app uses express-session; Cohort supplies its store (replicated) — the app\'s cookie name and options apply; ids without the app\'s genid carry this node\'s route', handler }
      : { mode: 'express-session', store: 'app', message: 'sessions: the app uses express-session with its own store; its sessions live there (Cohort does not replicate them)', handler };
  }
  return { mode: 'cohort', store: 'cohort', message: 'sessions: Cohort\'s req.session (replicated)', handler: withSessions(manager, app.listener as never, { cookie: o.cookie, logger: o.logger, ...req }) };
}
