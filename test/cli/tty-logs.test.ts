/**
 * The demo reads well in a terminal (issue 12, item 8): human-readable log
 * lines on a TTY, JSON otherwise or when asked; the dashboard history says
 * what an event is (a node becoming ready is good news).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prettyLine } from '../../src/util/log-pretty.js';
import { clusterEventTone, memberTransitionTone } from '../../src/manager/history-tone.js';
import { ClusterSource } from '../../src/manager/dashboard-source-cluster.js';
import { BALANCERS_PANEL_SCRIPT } from '../../src/manager/dashboard-panel-balancers.js';
import { CLUSTER_PANEL_SCRIPT } from '../../src/manager/dashboard-panel-cluster.js';
import { MemberState } from '../../src/cluster/types.js';
import { ManualClock } from '../../src/util/clock.js';
import { FakeCluster } from '../manager/fake-cluster.js';
import { BIN } from '../helpers/cluster-procs.js';

const LINE = JSON.stringify({ level: 40, time: '2026-12-04T01:02:03.456Z', name: 'cohort-node-tc1', route: 'tc1', msg: 'member tc2 gone', reason: 'no answer for 900 ms' });

test('prettyLine: time, level, name, message, then key=value; colour only when asked; non-JSON passes through', () => {
  assert.equal(prettyLine(LINE, false), '01:02:03.456 WARN  cohort-node-tc1 member tc2 gone  route=tc1 reason="no answer for 900 ms"\n');
  const coloured = prettyLine(LINE, true);
  assert.match(coloured, /\x1b\[33mWARN \x1b\[0m/);
  assert.equal(prettyLine('not json', true), 'not json\n');
  assert.equal(prettyLine(JSON.stringify({ level: 30, time: 0, msg: 'x', n: 3, o: { a: 1 } }), false), '00:00:00.000 INFO  x  n=3 o={"a":1}\n');
});

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('`cohort balancer` on a terminal writes human-readable lines; through a pipe JSON; --log-format json on a terminal JSON', { skip: !hasScript() && 'needs script(1) from util-linux for a pseudo-terminal', timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-tty-'));
  try {
    const args = `${BIN} balancer --listen 127.0.0.1:0 --member a=http://127.0.0.1:9 --no-access-log`;
    // `timeout` sends SIGTERM after 3 s: the balancer logs "shutting down" (info) and exits.
    const onTerminal = (extra: string) => {
      const out = join(dir, `typescript${extra.replace(/\W/g, '')}`);
      spawnSync('script', ['-qfec', `timeout -s TERM 3 ${process.execPath} ${args} ${extra}`, out], { encoding: 'utf8', timeout: 30_000 });
      return readFileSync(out, 'utf8');
    };
    const tty = onTerminal('');
    assert.match(tty, /\d\d:\d\d:\d\d\.\d{3} \x1b\[32mINFO \x1b\[0m \x1b\[2mcohort-balancer\x1b\[0m shutting down: finishing in-flight requests/);
    assert.doesNotMatch(tty, /"msg":/);
    assert.match(onTerminal('--log-format json'), /"msg":"shutting down: finishing in-flight requests"/);
    const piped = spawnSync('timeout', ['-s', 'TERM', '3', process.execPath, ...args.split(' ')], { encoding: 'utf8', timeout: 30_000 });
    assert.match(piped.stderr, /^\{"level":30,.*"msg":"shutting down: finishing in-flight requests"\}$/m);
    const bad = spawnSync(process.execPath, [BIN, 'node', '--log-format', 'xml', '--route', 'a', '--app', 'x.mjs'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--log-format: expected auto \| json \| pretty, got "xml"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('history tones: a member back to ok and a node ready are good; failures bad; suspicion and not ready warnings; a graceful leave neutral', () => {
  assert.equal(memberTransitionTone('ok'), 'good');
  for (const to of ['error', 'check-failed', 'ejected']) assert.equal(memberTransitionTone(to), 'bad');
  assert.equal(clusterEventTone('ready'), 'good');
  assert.equal(clusterEventTone('back'), 'good');
  assert.equal(clusterEventTone('not ready'), 'warn');
  assert.equal(clusterEventTone('suspected (no heartbeat for 900 ms)'), 'warn');
  assert.equal(clusterEventTone('gone (left)'), 'info');
  assert.equal(clusterEventTone('gone (no answer to probes for 1200 ms)'), 'bad');
  assert.equal(clusterEventTone('added'), 'info');
});

test('the cluster source tags its history entries with the tone, and both panels draw it as a class', () => {
  const fake = new FakeCluster();
  const src = new ClusterSource(() => fake, new ManualClock(0), 50, () => 7);
  fake.put('tc1', MemberState.Alive, { role: 'node', ready: 'false' });
  fake.put('tc1', MemberState.Alive, { role: 'node', ready: 'true' }, 'updated');
  assert.deepEqual(src.snapshot().history.map((h) => [h.text, h.tone]), [['tc1: added', 'info'], ['tc1: ready', 'good']]);
  src.close();
  for (const script of [BALANCERS_PANEL_SCRIPT, CLUSTER_PANEL_SCRIPT]) assert.match(script, /' tone-' \+ e\.tone/);
});
