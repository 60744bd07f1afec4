import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClusterNode, type ClusterNode } from '../../src/cluster/index.js';
import { until } from './helpers.js';
import { hasOpenssl, makePki, tlsFiles } from '../helpers/certs.js';

test('mutual TLS instead of the secret: members of the CA join, a certificate from another CA is refused and counted', { skip: hasOpenssl() ? false : 'openssl not installed' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-tls-'));
  const nodes: ClusterNode[] = [];
  try {
    makePki(dir, { ca: ['n1', 'n2'], evil: ['x'] });
    const tls = (n: string) => tlsFiles(dir, n);
    const a = createClusterNode({ route: 'a', listen: { host: '127.0.0.1', port: 0 }, tls: tls('n1') }, { env: {} });
    nodes.push(a);
    await a.start();
    const addr = `127.0.0.1:${a.self.channelAddress.port}`;
    const b = createClusterNode({ route: 'b', listen: { host: '127.0.0.1', port: 0 }, tls: tls('n2'), membership: { type: 'static', members: [addr] } }, { env: {} });
    nodes.push(b);
    await b.start();
    await until(() => a.members().length === 1 && b.members().length === 1, 5000, 'TLS discovery');
    a.handle('echo', (_f, p) => p);
    assert.equal(await b.request(a.self.id, 'echo', 'over tls'), 'over tls');
    // an outsider with a certificate from another CA (trusting ours, even)
    const x = createClusterNode({ route: 'x', listen: { host: '127.0.0.1', port: 0 }, tls: { ...tls('x'), ca: join(dir, 'ca.crt') }, membership: { type: 'static', members: [addr], refreshMs: 100 } }, { env: {} });
    nodes.push(x);
    await x.start();
    await until(() => a.stats().authFailures >= 1, 5000, 'TLS auth failure counted');
    assert.equal(a.members().length, 1);
    assert.equal(x.members().length, 0);
  } finally {
    for (const n of nodes) n.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
