/**
 * The package as a user installs it (issue 12, item 1): `npm pack`, install
 * the tarball into an empty project (dependencies from the npm cache, or the
 * registry when the cache lacks them), run the installed `cohort` command.
 * And the V8 flag the balancer wants, applied without `env -S`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { until } from '../helpers/backends.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'cohort.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('the package is cohort-cluster and its command is cohort', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
  assert.equal(pkg.name, 'cohort-cluster');
  assert.deepEqual(Object.keys(pkg.bin), ['cohort']);
});

test('the shebang is portable: no `env -S` (BusyBox env has no -S)', () => {
  const first = readFileSync(BIN, 'utf8').split('\n')[0];
  assert.equal(first, '#!/usr/bin/env node');
});

test('`cohort --version` prints the package version', () => {
  assert.equal(execFileSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' }).trim(), VERSION);
});

test('`cohort balancer` runs with --max-semi-space-size=64 (re-executed once); SIGTERM reaches it and the exit code passes through', { skip: !existsSync('/proc/self/task') && 'needs /proc' }, async () => {
  const child = spawn(process.execPath, [BIN, 'balancer', '--listen', '127.0.0.1:0', '--member', 'a=http://127.0.0.1:9', '--no-access-log', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    await until(() => /listening on http/.test(err) || child.exitCode !== null, 15_000, 'the balancer to listen');
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    assert.equal(kids.length, 1, 'one re-executed child');
    const argv = readFileSync(`/proc/${kids[0]}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.includes('--max-semi-space-size=64'), argv.join(' '));
    assert.ok(argv.includes('balancer'));
    // Already given: no second process.
    const direct = execFileSync(process.execPath, ['--max-semi-space-size=32', BIN, 'balancer', '--help'], { encoding: 'utf8' });
    assert.match(direct, /Usage: cohort balancer/);
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.throws(() => process.kill(Number(kids[0]), 0), /ESRCH/, 'the child is gone');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('npm pack, install the tarball into an empty project, run `cohort --version` and `cohort demo --help` from it', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-pack-'));
  try {
    // dist/ is built (these tests run from it); --ignore-scripts skips `prepare` (a second build).
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const [packed] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    const files = packed!.files.map((f) => f.path);
    for (const f of ['bin/cohort.js', 'dist/src/cli/main.js', 'examples/demo-app.mjs', 'package.json']) assert.ok(files.includes(f), `${f} in the tarball`);
    assert.ok(!files.some((f) => f.startsWith('dist/test/')), 'no tests in the tarball');
    const project = join(dir, 'project');
    execFileSync('mkdir', [project]);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'try-cohort', version: '1.0.0', private: true }));
    // --prefer-offline: the dependencies come from the local npm cache (filled by `npm ci`), the registry otherwise.
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, packed!.filename)], { cwd: project, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 200_000 });
    const cohort = join(project, 'node_modules', '.bin', 'cohort');
    assert.equal(execFileSync(cohort, ['--version'], { encoding: 'utf8' }).trim(), VERSION);
    const help = execFileSync(cohort, ['demo', '--help'], { encoding: 'utf8' });
    assert.match(help, /Usage: cohort demo/);
    assert.match(help, /--restart-after/);
    // The library as the docs import it (docs/sessions.md, docs/cluster.md).
    const lib = execFileSync(process.execPath, ['--input-type=module', '-e', "import { cohortStore, createClusterNode, formatMembersTable, BalancerServer } from 'cohort-cluster'; console.log([cohortStore, createClusterNode, formatMembersTable, BalancerServer].map((f) => typeof f).join(','));"], { cwd: project, encoding: 'utf8' });
    assert.equal(lib.trim(), 'function,function,function,function');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
