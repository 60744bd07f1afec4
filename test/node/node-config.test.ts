import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNodeConfig } from '../../src/node/config.js';
import { resolveNodeConfig } from '../../src/cli/node-command.js';
import { buildProgram } from '../../src/cli/main.js';
import { ConfigError } from '../../src/errors.js';

const base = { route: 'tc1', app: './app.mjs' };

test('node config: loadfactor is optional (1..100), loadReport off by default', () => {
  const d = parseNodeConfig(base);
  assert.equal(d.loadfactor, undefined);
  assert.equal(d.loadReport, false);
  assert.equal(parseNodeConfig({ ...base, loadfactor: 25, loadReport: true }).loadfactor, 25);
  for (const bad of [0, 101, 2.5, '5']) {
    assert.throws(() => parseNodeConfig({ ...base, loadfactor: bad }, 'n.yaml'), (e: unknown) => e instanceof ConfigError && /node\.loadfactor/.test(e.message), `loadfactor ${String(bad)}`);
  }
  assert.throws(() => parseNodeConfig({ ...base, loadReport: 'yes' }), /node\.loadReport/);
});

test('cohort node: --loadfactor and --load-report map to the node config', () => {
  const cfg = resolveNodeConfig({ ...base, loadfactor: '40', loadReport: true });
  assert.equal(cfg.loadfactor, 40);
  assert.equal(cfg.loadReport, true);
  assert.throws(() => resolveNodeConfig({ ...base, loadfactor: 'lots' }), /node\.loadfactor/);
  // The flags are declared on the command.
  const node = buildProgram().commands.find((c) => c.name() === 'node')!;
  const flags = node.options.map((o) => o.long);
  assert.ok(flags.includes('--loadfactor') && flags.includes('--load-report'), flags.join(' '));
});

test('cohort node: --no-resave / --no-save-uninitialized reach sessions.resave / saveUninitialized; absent flags leave express-session\'s defaults', async () => {
  const node = buildProgram().commands.find((c) => c.name() === 'node')!;
  node.exitOverride();
  node.action(() => {});
  await node.parseAsync(['--route', 'tc1', '--app', './app.mjs', '--no-resave', '--no-save-uninitialized'], { from: 'user' });
  const opts = node.opts();
  assert.deepEqual([opts.resave, opts.saveUninitialized], [false, false]);
  const off = resolveNodeConfig({ ...base, resave: false, saveUninitialized: false });
  assert.deepEqual([off.sessions.resave, off.sessions.saveUninitialized], [false, false]);
  const unset = resolveNodeConfig(base);
  assert.deepEqual([unset.sessions.resave, unset.sessions.saveUninitialized], [undefined, undefined]);
});
