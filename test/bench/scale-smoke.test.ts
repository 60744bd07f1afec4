/**
 * `npm run bench:scale` still runs: the smallest case (3 nodes, backup:1, 1 s of load) end to end, and its
 * JSON has every figure. No figure is compared with a target (the machine is shared).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../helpers/cluster-procs.js';

test('bench:scale, smallest case: every figure is measured', { timeout: 90_000 }, async () => {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'bench', 'scale.js')], {
    env: { ...process.env, SIZES: '3', MODES: 'backup:1', SECONDS: '1', IDLE: '1', FILL: '20', USERS: '2', JSON: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 0, err);
  const rows = JSON.parse(out.slice(out.indexOf('\n[') + 1)) as Array<Record<string, number | string>>;
  assert.equal(rows.length, 1);
  const r = rows[0]!;
  assert.equal(r['nodes'], 3);
  assert.equal(r['mode'], 'backup:1');
  for (const k of ['reqPerSecPerNode', 'bytesPerWrite', 'heartbeatMsgsPerSecPerNode', 'detectMedianMs', 'detectMaxMs', 'transferMs', 'rssMiBPerNode']) {
    assert.ok(typeof r[k] === 'number' && Number.isFinite(r[k]) && (r[k] as number) > 0, `${k} = ${r[k]}`);
  }
  assert.ok((r['transferredSessions'] as number) > 0, 'the joiner received sessions');
});
