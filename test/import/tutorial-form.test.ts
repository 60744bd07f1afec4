/**
 * import-httpd on the Tomcat clustering tutorial's form (issue 12, item 7):
 * ProxyPass/ProxyPassReverse inside <Location>/<LocationMatch> with
 * Order/Allow lines, members without route=; then the converted file runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { importHttpd } from '../../src/import/httpd.js';
import { parseBalancerConfig } from '../../src/config/load.js';
import { BIN, freePort } from '../helpers/cluster-procs.js';
import { startBackend, request, until } from '../helpers/backends.js';

/** Written the way the tutorial writes it: mounts inside <Location>, no route= on the members. */
function tutorial(listen: string, m1: string, m2: string): string {
  return `
LoadModule proxy_module modules/mod_proxy.so
LoadModule proxy_balancer_module modules/mod_proxy_balancer.so
Listen ${listen}
ServerName www.example.com
<Proxy balancer://tccluster>
    BalancerMember ${m1}
    BalancerMember ${m2}
</Proxy>
<Location /examples>
    Order allow,deny
    Allow from all
    ProxyPass balancer://tccluster/examples stickysession=JSESSIONID|jsessionid nofailover=Off lbmethod=byrequests timeout=5 maxattempts=1
    ProxyPassReverse balancer://tccluster/examples
</Location>
<Location /docs>
    Require all granted
    ProxyPass balancer://tccluster/docs stickysession=JSESSIONID|jsessionid
    ProxyPassReverse balancer://tccluster/docs
</Location>
`;
}

test('the tutorial form: both mounts, their parameters, access lines recognised, route-less members warned with what to set', () => {
  const { config, warnings } = importHttpd(tutorial('8000', 'http://127.0.0.1:8081', 'http://127.0.0.1:8082'), 'tc.conf');
  const cfg = parseBalancerConfig(config);
  assert.deepEqual(cfg.mounts!.map((m) => [m.path, m.balancer, m.upstream]), [['/examples', 'tccluster', '/examples'], ['/docs', 'tccluster', '/docs']]);
  const b = cfg.balancers[0]!;
  assert.equal(b.stickysession, 'JSESSIONID|jsessionid');
  assert.equal(b.nofailover, false);
  assert.equal(b.method, 'byrequests');
  assert.equal(b.timeout, 5);
  assert.equal(b.maxattempts, 1);
  const routeWarnings = warnings.filter((w) => /has no route=/.test(w));
  assert.equal(routeWarnings.length, 2, warnings.join('\n'));
  assert.match(routeWarnings[0]!, /^tc\.conf:7: BalancerMember http:\/\/127\.0\.0\.1:8081 in tccluster has no route=.*cohort node --route tc1.*jvmRoute="tc1".*--routes tc1,tc2/);
  // Open access is what Cohort does anyway: no warning for Order/Allow from all/Require all granted.
  assert.ok(!warnings.some((w) => /Order|Allow|Require|access control/.test(w)), warnings.join('\n'));
  // Every other line is accounted for.
  assert.ok(warnings.some((w) => /^tc\.conf:2: LoadModule proxy_module/.test(w)));
  assert.ok(warnings.some((w) => /^tc\.conf:5: ServerName: not mapped/.test(w)));
});

test('--routes fills the route-less members in order and says what each node must run with', () => {
  const { config, warnings } = importHttpd(tutorial('8000', 'http://127.0.0.1:8081', 'http://127.0.0.1:8082'), 'tc.conf', { routes: ['tc1', 'tc2', 'tc3'] });
  const members = (config.balancers as { members: { url: string; route?: string }[] }[])[0]!.members;
  assert.deepEqual(members.map((m) => m.route), ['tc1', 'tc2']);
  assert.ok(warnings.some((w) => /127\.0\.0\.1:8082 in tccluster: route=tc2 from --routes — run that node with `cohort node --route tc2` \(a Tomcat: jvmRoute="tc2"/.test(w)), warnings.join('\n'));
  assert.ok(warnings.some((w) => /--routes has 3 routes for 2 members.*tc3/.test(w)));
  assert.ok(!warnings.some((w) => /has no route=/.test(w)));
});

test('<LocationMatch>, restrictive access and unknown lines in a <Location> are warned, never dropped silently', () => {
  const text = `<Proxy balancer://c>
BalancerMember http://127.0.0.1:8081 route=a
</Proxy>
<LocationMatch "^/app(/.*)?$">
  Order deny,allow
  Deny from all
  Allow from 10.0.0.0/8
  ProxyPass balancer://c/app
  Header set X-Foo bar
</LocationMatch>
<LocationMatch "\\.(jsp|do)$">
  ProxyPass balancer://c
</LocationMatch>
<VirtualHost *:80>
  DocumentRoot /var/www
</VirtualHost>
`;
  const { config, warnings } = importHttpd(text, 'm.conf');
  assert.deepEqual((config.mounts as { path: string }[]).map((m) => m.path), ['/app']);
  assert.ok(warnings.some((w) => w.startsWith('m.conf:8: <LocationMatch ^/app(/.*)?$> becomes the prefix mount /app')), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.startsWith('m.conf:6: access control in <LocationMatch ^/app(/.*)?$> (lines 6, 7) is not imported')), warnings.join('\n'));
  assert.ok(warnings.some((w) => /^m\.conf:9: Header in <LocationMatch .*not mapped/.test(w)));
  assert.ok(warnings.some((w) => /^m\.conf:12: ProxyPass in <LocationMatch .*not a plain path prefix/.test(w)));
  assert.ok(warnings.some((w) => /^m\.conf:14: <VirtualHost \*:80>: the block's directives are imported one by one/.test(w)));
  assert.ok(warnings.some((w) => /^m\.conf:15: DocumentRoot: not mapped/.test(w)));
});

test('run it: import the tutorial form with --routes, start a balancer from the converted file, both mounts served and sticky', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-tut-'));
  const [a, b] = [await startBackend('tc1'), await startBackend('tc2')];
  t.after(async () => {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  const conf = join(dir, 'httpd.conf');
  writeFileSync(conf, tutorial(`127.0.0.1:${port}`, a.url, b.url));
  const out = join(dir, 'cohort.yaml');
  const imp = spawnSync(process.execPath, [BIN, 'import-httpd', conf, '--routes', 'tc1,tc2', '-o', out], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(imp.status, 0, imp.stderr);
  assert.match(imp.stderr, /route=tc1 from --routes/);
  const yaml = parse(readFileSync(out, 'utf8')) as { mounts: unknown[] };
  assert.equal(yaml.mounts.length, 2);
  assert.equal(spawnSync(process.execPath, [BIN, 'check-config', out], { encoding: 'utf8' }).status, 0);
  const child = spawn(process.execPath, [BIN, 'balancer', '--config', out, '--no-access-log', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await until(() => /listening on http/.test(err) || child.exitCode !== null, 15_000, 'the balancer');
  const front = `http://127.0.0.1:${port}`;
  for (const path of ['/examples/servlets/index.html', '/docs/config/index.html']) {
    const r = await request(`${front}${path}`);
    assert.equal(r.status, 200, `${path}: ${err}`);
  }
  assert.ok([...a.seen, ...b.seen].some((s) => s.url === '/examples/servlets/index.html'));
  assert.ok([...a.seen, ...b.seen].some((s) => s.url === '/docs/config/index.html'));
  // Sticky on the routes --routes gave: every request with a .tc2 session goes to tc2.
  for (let i = 0; i < 4; i++) await request(`${front}/docs/s${i}`, { headers: { cookie: 'JSESSIONID=ABC123.tc2' } });
  assert.equal(b.seen.filter((s) => /^\/docs\/s\d$/.test(s.url)).length, 4);
  assert.equal(a.seen.filter((s) => /^\/docs\/s\d$/.test(s.url)).length, 0);
});
