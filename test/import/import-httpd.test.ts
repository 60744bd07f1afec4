import test from 'node:test';
import assert from 'node:assert/strict';
import { importHttpd } from '../../src/import/httpd.js';
import { parseBalancerConfig } from '../../src/config/load.js';

const TUTORIAL = `
Listen 80
ProxyRequests Off
<Proxy "balancer://tccluster">
    BalancerMember "http://192.168.1.50:8080" route=tc1 loadfactor=1 max=150 smax=100 retry=30
    BalancerMember "http://192.168.1.51:8080" route=tc2 loadfactor=2 status=+H lbset=1
    ProxySet lbmethod=bybusyness nofailover=Off
</Proxy>
ProxyPass        "/examples" "balancer://tccluster/examples" stickysession=JSESSIONID|jsessionid scolonpathdelim=On
ProxyPassReverse "/examples" "balancer://tccluster/examples"
<Location "/balancer-manager">
    SetHandler balancer-manager
    Order Deny,Allow
    Allow from all
</Location>
`;

test('import-httpd converts the tutorial configuration into a valid Cohort config', () => {
  const { config, warnings } = importHttpd(TUTORIAL, 'httpd.conf');
  const cfg = parseBalancerConfig(config, 'converted');
  const b = cfg.balancers[0]!;
  assert.equal(b.name, 'tccluster');
  assert.equal(b.method, 'bybusyness');
  assert.equal(b.stickysession, 'JSESSIONID|jsessionid');
  assert.equal(b.nofailover, false);
  assert.deepEqual(b.members.map((m) => [m.url, m.route, m.loadfactor, m.lbset, m.status]), [
    ['http://192.168.1.50:8080', 'tc1', 1, 0, []],
    ['http://192.168.1.51:8080', 'tc2', 2, 1, ['hot-standby']],
  ]);
  assert.equal(b.members[0]!.retry, 30);
  assert.deepEqual(cfg.mounts, [{ path: '/examples', balancer: 'tccluster', upstream: '/examples', reverse: true }]);
  assert.equal(cfg.listen, '127.0.0.1:80');
  assert.ok(warnings.some((w) => /balancer-manager was open to everyone.*with authentication/.test(w)), warnings.join('\n'));
  // the manager is kept — authenticated, on its own loopback listener — not dropped and not copied open
  assert.ok(cfg.manager);
  assert.equal(cfg.manager.path, '/balancer-manager');
  assert.equal(cfg.manager.listen, '127.0.0.1:8090');
  assert.equal(cfg.manager.metricsauth, 'remote');
  assert.ok(warnings.some((w) => /smax=100/.test(w)));
  assert.ok(warnings.some((w) => /Listen 80/.test(w)));
});

test('import-httpd warns about what it cannot map and skips non-balancer targets', () => {
  const { config, warnings } = importHttpd(`
<Proxy balancer://a>
  BalancerMember ajp://10.0.0.1:8009 route=x
  BalancerMember http://10.0.0.2:8080 route=y redirect=x
</Proxy>
ProxyPass /static http://cdn.example/
ProxyPass /app balancer://a/ stickysession=JSESSIONID
Header add Set-Cookie "ROUTEID=.%{BALANCER_WORKER_ROUTE}e; path=/" env=BALANCER_ROUTE_CHANGED
`, 'x.conf');
  const cfg = parseBalancerConfig(config);
  assert.equal(cfg.balancers[0]!.members.length, 1);
  assert.ok(warnings.some((w) => w.startsWith('x.conf:3:') && /ajp/.test(w)));
  assert.ok(warnings.some((w) => /redirect=x/.test(w)));
  assert.ok(warnings.some((w) => /only balancer:\/\/ targets/.test(w)));
  assert.ok(warnings.some((w) => /ROUTEID cookie/.test(w)));
});
