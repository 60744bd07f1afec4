/**
 * Sticky routing through express-session's signed cookie: two real express-session apps (Cohort's Store,
 * Cohort's genid putting the node's route in the id) behind Cohort's balancer with
 * `stickysession: connect.sid`. Every request of a user reaches the node that created the session, so the
 * session is never taken over; with an unsigned routed id the same holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import session from 'express-session';
import { cohortStore } from '../../src/sessions/http/express-store.js';
import { startBalancer, request } from '../helpers/backends.js';
import { startCluster, stopAll } from './helpers/fixture.js';
import { closeServer, listen } from './helpers/http.js';

test('signed connect.sid cookies stay sticky through the balancer (raw and URL-encoded); no take-over happens', { timeout: 30_000 }, async () => {
  const { nodes } = await startCluster(2, { consistency: 'sync' });
  const Store = cohortStore(session.Store);
  const servers: Array<Awaited<ReturnType<typeof listen>>> = [];
  for (const n of nodes) {
    const store = new Store(n.manager);
    const app = express();
    app.use(session({ store, genid: () => store.genid(), secret: 'keyboard cat', resave: false, saveUninitialized: false }));
    app.get('/count', (req, res) => {
      const s = req.session as unknown as { n?: number };
      s.n = (s.n ?? 0) + 1;
      res.end(`${n.route} ${s.n}`);
    });
    servers.push(await listen(app));
  }
  const bal = await startBalancer({
    balancers: [{ name: 'b', slowstart: 0, stickysession: 'connect.sid', members: nodes.map((n, i) => ({ url: servers[i]!.url, route: n.route })) }],
    mounts: [{ path: '/', balancer: 'b' }],
  });
  try {
    for (let user = 0; user < 4; user++) {
      const first = await request(`${bal.url}/count`);
      const setCookie = String(first.headers['set-cookie']);
      const encoded = setCookie.split(';')[0]!; // connect.sid=s%3A<base>.<route>.<signature>
      assert.match(encoded, /^connect\.sid=s%3A[A-Za-z0-9_-]{24}\.n[12]\.[A-Za-z0-9%]+$/);
      const [home, one] = first.body.split(' ');
      assert.equal(one, '1');
      for (const cookie of [encoded, decodeURIComponent(encoded)]) {
        for (let i = 0; i < 3; i++) {
          const r = await request(`${bal.url}/count`, { headers: { cookie } });
          assert.equal(r.body.split(' ')[0], home, `user ${user}: request ${i} stays on ${home} (${cookie.length > 0 ? 'cookie sent' : ''})`);
        }
      }
      const last = await request(`${bal.url}/count`, { headers: { cookie: encoded } });
      assert.equal(last.body, `${home} 8`);
    }
    for (const n of nodes) assert.equal(n.manager.getStats().takeOvers, 0, `${n.route} took nothing over`);
  } finally {
    bal.close();
    for (const s of servers) await closeServer(s.server);
    stopAll(nodes);
  }
});
