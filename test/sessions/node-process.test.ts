import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnNode } from './helpers/node-process.js';

test('node-process helper: spawns a node on an ephemeral port, detects its URL, SIGKILLs it by PID', async () => {
  const script = `
    const http = require('node:http');
    const s = http.createServer((q, r) => r.end('hi'));
    s.listen(0, '127.0.0.1', () => console.log('listening on http://127.0.0.1:' + s.address().port));
  `;
  const n = await spawnNode(process.execPath, ['-e', script], { route: 'p1' });
  try {
    assert.equal(await (await fetch(n.url)).text(), 'hi');
  } finally {
    await n.kill();
  }
  assert.equal(n.alive(), false);
  await assert.rejects(fetch(n.url));
});
