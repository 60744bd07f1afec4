/**
 * The products' cluster sections (`cohort node`'s `node.cluster`, the
 * balancer's `cluster`): DNS, multicast and mutual-TLS keys, their flags, their
 * errors, and what they become in the cluster library's configuration.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNodeConfig } from '../../src/node/config.js';
import { resolveNodeConfig } from '../../src/cli/node-command.js';
import { parseBalancerConfig } from '../../src/config/load.js';
import { membershipFor, securityFor } from '../../src/config/cluster-section.js';
import { parseClusterConfig } from '../../src/cluster/config.js';
import { ConfigError } from '../../src/errors.js';
import { hasOpenssl, makePki, tlsFiles } from '../helpers/certs.js';

const node = (cluster: Record<string, unknown>) => parseNodeConfig({ route: 'tc1', app: './app.mjs', cluster });
const balancer = (cluster: Record<string, unknown>) => parseBalancerConfig({ balancers: [{ name: 'b' }], cluster });

/** The ConfigError's lines (throws if `fn` does not throw one). */
function configErrorLines(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

test('dns: a bare name means A and AAAA both; the object form maps type → rrtype, port and intervalMs', () => {
  assert.deepEqual(membershipFor(node({ dns: 'cohort.svc' }).cluster), { type: 'dns', name: 'cohort.svc', rrtype: 'A+AAAA' });
  assert.deepEqual(membershipFor(node({ dns: { name: 'cohort.svc' } }).cluster), { type: 'dns', name: 'cohort.svc', rrtype: 'A+AAAA' });
  assert.deepEqual(membershipFor(node({ dns: { name: 'cohort.svc', type: 'AAAA', port: 4100, intervalMs: 2000 } }).cluster), { type: 'dns', name: 'cohort.svc', rrtype: 'AAAA', port: 4100, intervalMs: 2000 });
  assert.deepEqual(membershipFor(node({ dns: { name: '_cohort._tcp.cohort.svc', type: 'SRV' } }).cluster), { type: 'dns', name: '_cohort._tcp.cohort.svc', rrtype: 'SRV' });
  // the balancer's default port for A/AAAA answers is passed in; SRV ignores it; an explicit port wins
  assert.deepEqual(membershipFor(balancer({ dns: 'cohort.svc' }).cluster!, 4000), { type: 'dns', name: 'cohort.svc', rrtype: 'A+AAAA', port: 4000 });
  assert.deepEqual(membershipFor(balancer({ dns: { name: 'x', type: 'SRV' } }).cluster!, 4000), { type: 'dns', name: 'x', rrtype: 'SRV' });
  assert.deepEqual(membershipFor(balancer({ dns: { name: 'x', port: 4200 } }).cluster!, 4000), { type: 'dns', name: 'x', rrtype: 'A+AAAA', port: 4200 });
  // whatever the products produce, the library accepts
  for (const dns of ['cohort.svc', { name: 'x', type: 'A' }, { name: 'x', type: 'SRV', intervalMs: 100 }]) {
    const c = parseClusterConfig({ route: 'a', secret: 'x'.repeat(16), membership: membershipFor(node({ dns }).cluster) });
    assert.equal(c.membership.type, 'dns');
  }
});

test('dns: errors name the key and what was expected', () => {
  assert.deepEqual(configErrorLines(() => node({ dns: { name: 'x', type: 'MX' } })).slice(1), ['  node.cluster.dns: type: expected A, AAAA, A+AAAA or SRV']);
  assert.match(configErrorLines(() => node({ dns: { name: 'x', type: 'SRV', port: 4000 } })).join('\n'), /node\.cluster\.dns\.port: SRV records carry the members' ports/);
  assert.match(configErrorLines(() => node({ dns: 5 })).join('\n'), /node\.cluster\.dns: expected a DNS name, or \{name, type/);
  assert.match(configErrorLines(() => node({ dns: { name: 'x', ttl: 3 } })).join('\n'), /node\.cluster\.dns\.ttl: unknown key/);
  assert.match(configErrorLines(() => balancer({ dns: { name: 'x', intervalMs: 0 } })).join('\n'), /cluster\.dns\.intervalMs: expected milliseconds > 0/);
});

test('multicast: true, or the library\'s keys including bind, intervalMs, dropTimeMs and loopback; on the balancer too', () => {
  assert.deepEqual(membershipFor(node({ multicast: true }).cluster), { type: 'multicast' });
  const spec = { address: '228.0.0.5', port: 45565, ttl: 2, interface: '10.0.0.1', bind: '0.0.0.0', intervalMs: 250, dropTimeMs: 1500, loopback: false };
  assert.deepEqual(membershipFor(node({ multicast: spec }).cluster), { type: 'multicast', ...spec });
  assert.deepEqual(membershipFor(balancer({ multicast: true }).cluster!), { type: 'multicast' });
  assert.deepEqual(membershipFor(balancer({ multicast: { bind: '228.0.0.4' } }).cluster!), { type: 'multicast', bind: '228.0.0.4' });
  assert.deepEqual(membershipFor(balancer({}).cluster!), { type: 'static', members: [] });
  const lib = parseClusterConfig({ route: 'a', secret: 'x'.repeat(16), membership: membershipFor(node({ multicast: spec }).cluster) });
  assert.deepEqual(lib.membership, { type: 'multicast', ...spec });
  assert.match(configErrorLines(() => balancer({ multicast: { port: 70000 } })).join('\n'), /cluster\.multicast\.port: expected a port 1\.\.65535/);
  assert.match(configErrorLines(() => balancer({ multicast: 'yes' })).join('\n'), /cluster\.multicast: expected true, false, or \{address/);
  assert.match(configErrorLines(() => node({ multicast: { group: '228.0.0.4' } })).join('\n'), /node\.cluster\.multicast\.group: unknown key/);
});

test('discovery precedence: dns, then multicast, then the static members', () => {
  assert.equal(membershipFor(node({ dns: 'x', multicast: true, members: ['127.0.0.1:4001'] }).cluster).type, 'dns');
  assert.equal(membershipFor(node({ multicast: true, members: ['127.0.0.1:4001'] }).cluster).type, 'multicast');
  assert.deepEqual(membershipFor(node({ members: ['127.0.0.1:4001'] }).cluster), { type: 'static', members: ['127.0.0.1:4001'] });
});

test('cohort node flags: --dns NAME as before, --dns-type / --dns-port, --multicast keeps the file\'s settings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-nodecfg-'));
  try {
    const base = { route: 'tc1', app: './app.mjs' };
    assert.equal(resolveNodeConfig({ ...base, dns: 'cohort.svc' }).cluster.dns, 'cohort.svc');
    assert.deepEqual(resolveNodeConfig({ ...base, dns: 'cohort.svc', dnsType: 'srv' }).cluster.dns, { name: 'cohort.svc', type: 'SRV' });
    assert.deepEqual(resolveNodeConfig({ ...base, dns: 'cohort.svc', dnsPort: '4100' }).cluster.dns, { name: 'cohort.svc', port: 4100 });
    assert.match(configErrorLines(() => resolveNodeConfig({ ...base, dnsType: 'AAAA' })).join('\n'), /node\.cluster\.dns: --dns-type and --dns-port need the name to resolve: add --dns NAME/);
    assert.match(configErrorLines(() => resolveNodeConfig({ ...base, dns: 'x', dnsType: 'MX' })).join('\n'), /node\.cluster\.dns: type: expected A, AAAA, A\+AAAA or SRV/);
    const file = join(dir, 'node.yaml');
    writeFileSync(file, 'node:\n  route: tc1\n  app: ./app.mjs\n  cluster:\n    dns: { name: cohort.svc, type: SRV, intervalMs: 2000 }\n    multicast: { address: 228.0.0.9, bind: 0.0.0.0 }\n');
    // --dns sets the name; the file's other dns keys stay
    assert.deepEqual(resolveNodeConfig({ config: file, dns: 'other.svc' }).cluster.dns, { name: 'other.svc', type: 'SRV', intervalMs: 2000 });
    assert.deepEqual(resolveNodeConfig({ config: file, dnsType: 'A' }).cluster.dns, { name: 'cohort.svc', type: 'A', intervalMs: 2000 });
    assert.deepEqual(resolveNodeConfig({ config: file, multicast: true }).cluster.multicast, { address: '228.0.0.9', bind: '0.0.0.0' });
    assert.equal(resolveNodeConfig({ ...base, multicast: true }).cluster.multicast, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster.tls: unreadable or non-PEM files are a ConfigError naming the key and the file, at load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-nodecfg-'));
  try {
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
    const missing = join(dir, 'missing.crt');
    const lines = configErrorLines(() => node({ tls: { ca: missing, cert: notPem, key: notPem } }));
    assert.ok(lines.some((l) => l.includes(`node.cluster.tls.ca: expected a readable PEM file, cannot read "${missing}" (ENOENT)`)), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes(`node.cluster.tls.cert: expected a PEM file, "${notPem}" has no "-----BEGIN" line`)), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('node.cluster.tls.key:')), lines.join('\n'));
    const blines = configErrorLines(() => balancer({ tls: { ca: missing, cert: notPem, key: notPem } }));
    assert.ok(blines.some((l) => l.includes(`cluster.tls.ca: expected a readable PEM file, cannot read "${missing}"`)), blines.join('\n'));
    assert.match(configErrorLines(() => node({ tls: { ca: notPem, cert: notPem } })).join('\n'), /node\.cluster\.tls\.key: .*expected string/i);
    // the CLI: partial flags say which one is missing
    assert.match(configErrorLines(() => resolveNodeConfig({ route: 'tc1', app: './a.mjs', clusterTlsCa: notPem, clusterTlsCert: notPem })).join('\n'), /node\.cluster\.tls\.key: mutual TLS needs ca, cert and key: add --cluster-tls-key FILE/);
    assert.match(configErrorLines(() => resolveNodeConfig({ route: 'tc1', app: './a.mjs', clusterTlsCa: missing, clusterTlsCert: notPem, clusterTlsKey: notPem })).join('\n'), /node\.cluster\.tls\.ca: expected a readable PEM file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cluster.tls: a usable identity is accepted (with or without a secret) and passed to the library; a key that does not match its certificate is refused at load', { skip: hasOpenssl() ? false : 'openssl not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-nodecfg-'));
  try {
    makePki(dir, { ca: ['n1', 'n2'] });
    const files = tlsFiles(dir, 'n1');
    const n = node({ tls: files });
    assert.deepEqual(securityFor(n.cluster), { tls: files });
    assert.deepEqual(securityFor(node({ tls: files, secretFile: '/etc/cohort/secret' }).cluster), { secretFile: '/etc/cohort/secret', tls: files });
    const flags = resolveNodeConfig({ route: 'tc1', app: './a.mjs', clusterTlsCa: files.ca, clusterTlsCert: files.cert, clusterTlsKey: files.key });
    assert.deepEqual(flags.cluster.tls, files);
    assert.deepEqual(securityFor(balancer({ tls: files }).cluster!), { tls: files });
    const mismatched = { ...files, key: join(dir, 'n2.key') };
    assert.match(configErrorLines(() => node({ tls: mismatched })).join('\n'), /node\.cluster\.tls: cert ".*n1\.crt", key ".*n2\.key" and ca ".*ca\.crt" are not a usable TLS identity \(.*\)/);
    assert.match(configErrorLines(() => balancer({ tls: mismatched })).join('\n'), /  cluster\.tls: cert /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
