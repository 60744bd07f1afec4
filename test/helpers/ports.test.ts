import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { canBind, freePort } from './ports.js';

test('freePort: distinct ports, free to bind, below the kernel\'s ephemeral range (where outgoing connections take theirs)', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports = [];
  for (let i = 0; i < 50; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, ports.length, 'never the same port twice');
  if (low >= 11_000) for (const p of ports) assert.ok(p >= 10_000 && p < low, `${p} outside [10000, ${low})`);
  for (const p of ports.slice(0, 5)) assert.ok(await canBind(p));
});
