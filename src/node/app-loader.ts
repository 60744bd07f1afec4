import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CohortError } from '../errors.js';

export type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** The shapes of app a node can run. */
export type LoadedApp =
  | { readonly kind: 'listener'; readonly listener: Listener }
  | { readonly kind: 'express'; readonly listener: Listener }
  | { readonly kind: 'fastify'; readonly instance: FastifyInstanceLike };

export interface FastifyInstanceLike {
  register(plugin: unknown, opts?: unknown): unknown;
  ready(): PromiseLike<unknown>;
  routing(req: IncomingMessage, res: ServerResponse): void;
  close(): PromiseLike<unknown>;
}

function isFastify(x: unknown): x is FastifyInstanceLike {
  if (x === null || (typeof x !== 'object' && typeof x !== 'function')) return false;
  const f = x as Record<string, unknown>;
  return typeof f.register === 'function' && typeof f.ready === 'function' && typeof f.routing === 'function';
}

/**
 * Imports the app module. Its default export (or the module's `app`) may be
 * a request listener `(req, res)`, an Express app, a Fastify instance, or a
 * function returning (a promise of) one of those.
 */
export async function loadApp(modulePath: string): Promise<LoadedApp> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(modulePath)).href)) as Record<string, unknown>;
  } catch (err) {
    throw new CohortError('COHORT_APP_LOAD', `cannot load the app module ${modulePath}: ${(err as Error).message}`, { cause: err });
  }
  let app = mod.default ?? mod.app;
  if (typeof app === 'function' && app.length === 0 && !isFastify(app)) app = await (app as () => unknown)();
  if (isFastify(app)) return { kind: 'fastify', instance: app };
  if (typeof app === 'function') {
    const f = app as Listener & { handle?: unknown; use?: unknown };
    return { kind: typeof f.handle === 'function' && typeof f.use === 'function' ? 'express' : 'listener', listener: f };
  }
  throw new CohortError('COHORT_APP_LOAD', `the app module ${modulePath} must export default a request listener (req, res), an Express app or a Fastify instance`);
}
