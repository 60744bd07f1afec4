/**
 * Cohort's own req.session has express-session's surface: a persistent cookie object, touch/resetMaxAge,
 * regenerate/destroy/reload/save with callbacks or promises, req.sessionID, and the options name, genid,
 * rolling, resave, saveUninitialized, unset and proxy; values are stored as JSON stores store them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import type { Request, Response } from 'express';
import { sessionMiddleware, type SessionMiddlewareOptions, type SessionRequest } from '../../src/sessions/http/middleware.js';
import { SessionErrorCode } from '../../src/sessions/errors.js';
import { startCluster, stopAll, type TestNode } from './helpers/fixture.js';
import { closeServer, get, listen } from './helpers/http.js';

type Handler = (req: SessionRequest & Request, res: Response) => void | Promise<void>;

async function apps(n: number, options: SessionMiddlewareOptions, routes: Record<string, Handler>) {
  const { nodes } = await startCluster(n, { consistency: 'sync' });
  const servers: Array<Awaited<ReturnType<typeof listen>>> = [];
  for (const node of nodes) {
    const app = express();
    app.use(sessionMiddleware(node.manager, options) as never);
    for (const [path, h] of Object.entries(routes)) {
      app.get(path, async (req, res) => {
        try {
          await h(req as never, res);
        } catch (e) {
          res.status(500).end(`${(e as { code?: string }).code ?? ''} ${(e as Error).message}`);
        }
      });
    }
    servers.push(await listen(app));
  }
  return {
    nodes: nodes as TestNode[],
    url: (i: number) => servers[i]!.url,
    stop: async () => {
      for (const s of servers) await closeServer(s.server);
      stopAll(nodes);
    },
  };
}

const cookieOf = (setCookie: string[], name = 'JSESSIONID') => setCookie.find((c) => c.startsWith(`${name}=`))?.split(';')[0];
const attr = (setCookie: string[], name: string, a: string) => {
  const c = setCookie.find((x) => x.startsWith(`${name}=`));
  return c?.split('; ').find((p) => p.toLowerCase().startsWith(a.toLowerCase()));
};

test('req.session.cookie is one object per request: maxAge/expires/originalMaxAge assignments stick, reach Set-Cookie, and persist on the other node', async () => {
  const c = await apps(2, { cookie: { maxAgeMs: 60_000 } }, {
    '/set': (req, res) => {
      req.session.user = 'bob';
      req.session.cookie.maxAge = 5000;
      res.end(JSON.stringify([req.session.cookie.originalMaxAge, req.session.cookie === req.session.cookie]));
    },
    '/read': (req, res) => void res.end(JSON.stringify({ o: req.session.cookie.originalMaxAge, id: req.sessionID === req.session.id, httpOnly: req.session.cookie.httpOnly, path: req.session.cookie.path, sameSite: req.session.cookie.sameSite, secure: req.session.cookie.secure })),
    '/attrs': (req, res) => {
      req.session.cookie.httpOnly = false;
      req.session.cookie.sameSite = 'strict'; // express-session's spelling
      res.end();
    },
    '/browser': (req, res) => {
      req.session.cookie.expires = null;
      req.session.n = 1;
      res.end(String(req.session.cookie.maxAge));
    },
  });
  try {
    const r = await get(`${c.url(0)}/set`);
    assert.equal(r.body, '[5000,true]');
    assert.equal(attr(r.setCookie, 'JSESSIONID', 'Max-Age'), 'Max-Age=5');
    const r2 = await get(`${c.url(1)}/read`, cookieOf(r.setCookie));
    assert.deepEqual(JSON.parse(r2.body), { o: 5000, id: true, httpOnly: true, path: '/', sameSite: 'Lax', secure: false });
    assert.equal(attr(r2.setCookie, 'JSESSIONID', 'Max-Age'), 'Max-Age=5', 'the persistent cookie is re-sent with the session\'s lifetime');
    const at = await get(`${c.url(0)}/attrs`, cookieOf(r.setCookie));
    assert.equal(attr(at.setCookie, 'JSESSIONID', 'HttpOnly'), undefined, 'an attribute changed by the app reaches Set-Cookie');
    assert.equal(attr(at.setCookie, 'JSESSIONID', 'SameSite'), 'SameSite=Strict');
    const b = await get(`${c.url(0)}/browser`);
    assert.equal(b.body, 'null');
    assert.equal(attr(b.setCookie, 'JSESSIONID', 'Expires'), undefined, 'a browser-session cookie');
  } finally {
    await c.stop();
  }
});

test('touch() and resetMaxAge() reset maxAge to originalMaxAge; both chain like express-session', async () => {
  const c = await apps(1, { cookie: { maxAgeMs: 60_000 } }, {
    '/': async (req, res) => {
      req.session.cookie.maxAge = 10;
      await new Promise((r) => setTimeout(r, 20));
      const before = req.session.cookie.maxAge!;
      const chained = req.session.touch() === req.session;
      const after = req.session.cookie.maxAge!;
      req.session.cookie.maxAge = 1000;
      req.session.resetMaxAge();
      res.end(JSON.stringify([before < 0, after > 0 && after <= 10, chained, req.session.cookie.originalMaxAge]));
    },
  });
  try {
    assert.equal((await get(`${c.url(0)}/`)).body, '[true,true,true,1000]');
  } finally {
    await c.stop();
  }
});

test('regenerate, destroy (req.session is gone, cookie cleared), reload (missing: "failed to load session"), save — callbacks and promises', async () => {
  const c = await apps(2, {}, {
    '/login': (req, res) => {
      req.session.user = 'bob';
      res.end(req.sessionID);
    },
    '/regen': (req, res) => {
      const old = req.sessionID;
      req.session.regenerate((err) => {
        if (err) throw err;
        req.session.fresh = true;
        res.end(String(old === req.sessionID));
      });
    },
    '/whoami': (req, res) => void res.end(String(req.session.user ?? req.session.fresh ?? 'nobody')),
    '/logout': async (req, res) => {
      await req.session.destroy();
      res.end(String(req.session));
    },
    '/reload': async (req, res) => {
      await req.session.reload();
      res.end(String(req.session.user));
    },
    '/save': (req, res) => {
      req.session.saved = 1;
      req.session.save((err) => res.end(err ? 'err' : 'saved'));
    },
  });
  try {
    const l = await get(`${c.url(0)}/login`);
    const jar = cookieOf(l.setCookie)!;
    assert.equal((await get(`${c.url(1)}/reload`, jar)).body, 'bob', 'reload on the other node');
    const r = await get(`${c.url(0)}/regen`, jar);
    assert.equal(r.body, 'false');
    const jar2 = cookieOf(r.setCookie)!;
    assert.notEqual(jar2, jar);
    assert.equal((await get(`${c.url(1)}/whoami`, jar)).body, 'nobody', 'the old session is gone everywhere');
    assert.equal((await get(`${c.url(1)}/whoami`, jar2)).body, 'true');
    const out = await get(`${c.url(1)}/logout`, jar2);
    assert.equal(out.body, 'undefined');
    assert.match(cookieOf(out.setCookie) ?? '', /^JSESSIONID=$/);
    assert.equal((await get(`${c.url(0)}/whoami`, jar2)).body, 'nobody');
    const s = await get(`${c.url(0)}/save`);
    assert.equal(s.body, 'saved');
    assert.ok(cookieOf(s.setCookie));
  } finally {
    await c.stop();
  }
  let other: TestNode | undefined;
  const gone = await apps(2, {}, {
    '/login': (req, res) => void ((req.session.user = 'x'), res.end()),
    '/reload': async (req, res) => {
      // another request (on the other node) destroys the session meanwhile
      const s = await other!.manager.load(req.sessionID);
      await other!.manager.invalidate(s!);
      req.session.reload((err) => res.status(err ? 500 : 200).end(err ? (err as Error).message : 'ok'));
    },
    '/r': (req, res) => void res.end(String(req.session.user)),
  });
  other = gone.nodes[1];
  try {
    const jar = cookieOf((await get(`${gone.url(0)}/login`)).setCookie)!;
    const r = await get(`${gone.url(0)}/reload`, jar);
    assert.deepEqual([r.status, r.body], [500, 'failed to load session']);
    const after = await get(`${gone.url(0)}/r`, jar);
    assert.deepEqual([after.status, after.body], [200, 'undefined'], 'a request with a destroyed session gets a new one, not an error');
  } finally {
    await gone.stop();
  }
});

test('options: name, genid, rolling, resave, saveUninitialized, unset and proxy keep express-session\'s meanings', async () => {
  let gen = 0;
  const c = await apps(1, { name: 'sid', genid: () => `AAAAAAAAAAAAAAAAAAAAAA${String(++gen).padStart(2, '0')}`, rolling: true, unset: 'destroy', proxy: true }, {
    '/w': (req, res) => void ((req.session.n = 1), res.end(req.sessionID)),
    '/r': (req, res) => void res.end(String(req.session.n)),
    '/unset': (req, res) => {
      (req as { session?: unknown }).session = null;
      res.end();
    },
  });
  try {
    const w = await get(`${c.url(0)}/w`, undefined, { 'x-forwarded-proto': 'https' });
    assert.match(w.body, /^AAAAAAAAAAAAAAAAAAAAAA01\.n1$/, 'genid gives the base; the route is this node\'s');
    const jar = cookieOf(w.setCookie, 'sid')!;
    assert.ok(jar, 'name');
    assert.equal(attr(w.setCookie, 'sid', 'Secure'), 'Secure', 'proxy: true trusts X-Forwarded-Proto');
    const r = await get(`${c.url(0)}/r`, jar);
    assert.equal(r.body, '1');
    assert.ok(cookieOf(r.setCookie, 'sid'), 'rolling: the cookie on an unmodified session');
    await get(`${c.url(0)}/unset`, jar);
    assert.equal((await get(`${c.url(0)}/r`, jar)).body, 'undefined', 'unset: destroy');
  } finally {
    await c.stop();
  }
  const keep = await apps(1, { saveUninitialized: true, resave: true, proxy: false }, {
    '/': (_req, res) => void res.end(),
    '/unset': (req, res) => {
      req.session.n = 2;
      delete (req as { session?: unknown }).session;
      res.end();
    },
    '/r': (req, res) => void res.end(String(req.session.n)),
  });
  try {
    const u = await get(`${keep.url(0)}/`, undefined, { 'x-forwarded-proto': 'https' });
    assert.ok(cookieOf(u.setCookie), 'saveUninitialized: a session untouched by the handler is stored');
    assert.equal(attr(u.setCookie, 'JSESSIONID', 'Secure'), undefined, 'proxy: false ignores X-Forwarded-Proto');
    const jar = cookieOf(u.setCookie)!;
    assert.equal(keep.nodes[0]!.manager.getStats().owned, 1);
    const v0 = keep.nodes[0]!.manager.peek(jar.split('=')[1]!)!.version;
    await get(`${keep.url(0)}/`, jar);
    assert.equal(keep.nodes[0]!.manager.peek(jar.split('=')[1]!)!.version, v0 + 1, 'resave: stored again although unchanged');
    await get(`${keep.url(0)}/unset`, jar);
    assert.equal((await get(`${keep.url(0)}/r`, jar)).body, '2', 'unset: keep (default) stores the session');
  } finally {
    await keep.stop();
  }
});

test('values are stored as JSON stores store them: a Date becomes its ISO string; a function still throws at the assigning line', async () => {
  const c = await apps(2, {}, {
    '/w': (req, res) => {
      req.session.at = new Date('2026-12-04T00:00:00.000Z');
      try {
        req.session.f = () => 1;
        res.end('no throw');
      } catch (e) {
        res.end(`${(e as { code: string }).code} ${String(req.session.f)}`);
      }
    },
    '/r': (req, res) => void res.end(String(req.session.at)),
  });
  try {
    const w = await get(`${c.url(0)}/w`);
    assert.equal(w.body, `${SessionErrorCode.Unserializable} undefined`);
    assert.equal((await get(`${c.url(1)}/r`, cookieOf(w.setCookie))).body, '2026-12-04T00:00:00.000Z');
  } finally {
    await c.stop();
  }
});
