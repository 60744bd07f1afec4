/**
 * Cohort's Fastify plugin follows fastify-plugin's conventions: applies to the parent scope, gives
 * @fastify/session's `session.get/set`, closes the manager on `onClose` when asked, and does not clash
 * with an existing `request.session` decorator (@fastify/session registered first keeps it; no
 * FST_ERR_DEC_ALREADY_PRESENT). @fastify/session with Cohort's Store replicates across two nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { cohortFastifySessions } from '../../src/sessions/http/fastify.js';
import { cohortStore } from '../../src/sessions/http/express-store.js';
import { ManagerState } from '../../src/sessions/replication/replicated-manager.js';
import { startCluster, stopAll } from './helpers/fixture.js';

test('session.get/set, request.sessionId, parent scope, onClose closes the manager (closeManager)', async () => {
  const { nodes } = await startCluster(1);
  try {
    const f = Fastify();
    await f.register(cohortFastifySessions as never, { manager: nodes[0]!.manager, closeManager: true });
    f.get('/', async (req) => {
      const s = (req as unknown as { session: { get(k: string): number | undefined; set(k: string, v: unknown): void } }).session;
      s.set('n', (s.get('n') ?? 0) + 1);
      return { n: s.get('n'), id: (req as unknown as { sessionId: string }).sessionId };
    });
    const r1 = await f.inject({ url: '/' });
    const cookie = String(r1.headers['set-cookie']).split(';')[0]!;
    const r2 = await f.inject({ url: '/', headers: { cookie } });
    assert.equal(r2.json().n, 2);
    assert.equal(`JSESSIONID=${r2.json().id}`, cookie);
    await f.close();
    assert.equal(nodes[0]!.manager.lifecycle, ManagerState.Closed);
  } finally {
    stopAll(nodes);
  }
});

test('@fastify/session registered first keeps request.session; Cohort\'s plugin steps aside instead of crashing; Cohort\'s Store replicates it across nodes', async () => {
  const { nodes } = await startCluster(2, { consistency: 'sync' });
  const Store = cohortStore();
  const apps = [];
  try {
    for (const n of nodes) {
      const f = Fastify();
      await f.register(fastifyCookie);
      await f.register(fastifySession, { secret: 'a secret with a minimum length of 32 characters', cookie: { secure: false }, store: new Store(n.manager) as never, saveUninitialized: false });
      await f.register(cohortFastifySessions as never, { manager: n.manager });
      f.get('/', async (req) => {
        const n2 = ((req.session.get('n' as never) as number | undefined) ?? 0) + 1;
        req.session.set('n' as never, n2 as never);
        return { n: n2 };
      });
      await f.ready();
      apps.push(f);
    }
    const r1 = await apps[0]!.inject({ url: '/' });
    const cookie = String(r1.headers['set-cookie']).split(';')[0]!;
    assert.match(cookie, /^sessionId=/, '@fastify/session\'s cookie');
    assert.equal((await apps[1]!.inject({ url: '/', headers: { cookie } })).json().n, 2, 'read and written on the other node');
    assert.equal((await apps[0]!.inject({ url: '/', headers: { cookie } })).json().n, 3);
  } finally {
    for (const f of apps) await f.close();
    stopAll(nodes);
  }
});
