import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBalancerConfig, parseBalancerConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'cohort-config-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

test('the issue\'s example configuration loads with httpd names and defaults', () => {
  const f = write('ok.yaml', `
listen: 127.0.0.1:8080
balancers:
  - name: tccluster
    method: byrequests
    stickysession: JSESSIONID|jsessionid
    stickysessionsep: "."
    nofailover: false
    maxattempts: 1
    timeout: 0
    failonstatus: []
    members:
      - url: http://127.0.0.1:8081
        route: tc1
        loadfactor: 1
        max: 150
        retry: 60
        lbset: 0
        status: []
mounts:
  - { path: /examples, balancer: tccluster, upstream: /examples }
`);
  const cfg = loadBalancerConfig(f);
  assert.equal(cfg.balancers[0]!.members[0]!.route, 'tc1');
  assert.equal(cfg.timeouts.connect, 5);
  assert.equal(cfg.limits.maxheadersize, 16384);
});

test('invalid config names the file, the key path and what was expected', () => {
  const f = write('bad.yaml', `
balancers:
  - name: tccluster
    members:
      - url: http://127.0.0.1:8081
        loadfactor: 500
`);
  assert.throws(() => loadBalancerConfig(f), (err: ConfigError) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /bad\.yaml/);
    assert.match(err.message, /balancers\[0\]\.members\[0\]\.loadfactor: expected an integer 1\.\.100/);
    return true;
  });
});

test('unknown keys are rejected', () => {
  assert.throws(() => parseBalancerConfig({ balancers: [{ name: 'x', members: [], stickysesion: 'typo' }] }, 'f.yaml'), /balancers\[0\]\.stickysesion: unknown key/);
  assert.throws(() => parseBalancerConfig({ balancers: [{ name: 'x' }], lisen: '1' }, 'f.yaml'), /lisen: unknown key/);
});

test('mount must name a balancer; duplicate routes are refused', () => {
  assert.throws(() => parseBalancerConfig({ balancers: [{ name: 'a' }], mounts: [{ path: '/', balancer: 'b' }] }), /mounts\[0\]\.balancer: expected the name of a balancer/);
  assert.throws(() => parseBalancerConfig({ balancers: [{ name: 'a', members: [{ url: 'http://x:1', route: 'r' }, { url: 'http://y:1', route: 'r' }] }] }), /duplicate route/);
});

test('YAML syntax errors name the line', () => {
  const f = write('syntax.yaml', 'balancers:\n  - name: [oops\n');
  assert.throws(() => loadBalancerConfig(f), /syntax\.yaml: invalid configuration\n {2}line \d+/);
});
