/**
 * Three real `cohort balancer` processes in one fleet (they join the same
 * cluster membership) in front of the same two loopback app servers:
 * a member disabled on one stops getting traffic from all three; a balancer
 * killed with SIGKILL leaves the others serving; restarted, it catches up
 * with the changes it missed. Plus a forged change from a process that joins
 * the cluster as a balancer: refused and counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { BIN, freePort, waitFor } from '../helpers/cluster-procs.js';
import { PASSWORD, startBackend, testHash, TOKEN, type Backend } from '../manager/helpers.js';
import { createClusterNode } from '../../src/cluster/index.js';

interface Proc {
  child: ChildProcess;
  front: string;
  manager: string;
  stderr: string;
}

const auth = { authorization: `Bearer ${TOKEN}` };

async function spawnBalancer(configFile: string, children: Set<ChildProcess>): Promise<Proc> {
  const child = spawn(process.execPath, [BIN, 'balancer', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const p: Proc = { child, front: '', manager: '', stderr: '' };
  child.stderr!.on('data', (d: Buffer) => {
    p.stderr = (p.stderr + d.toString()).slice(-50_000);
  });
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`balancer exited: ${p.stderr.slice(-2000)}`);
    p.front = /cohort balancer listening on (http:\/\/\S+)/.exec(p.stderr)?.[1] ?? '';
    p.manager = /cohort balancer manager on (http:\/\/[^/\s]+)/.exec(p.stderr)?.[1] ?? '';
    return p.front !== '' && p.manager !== '';
  }, 20_000, 'balancer to listen');
  return p;
}

async function api(p: Proc, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const r = await fetch(`${p.manager}/balancer-manager/api${path}`, {
    method: init.method ?? 'GET',
    headers: { ...auth, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    signal: AbortSignal.timeout(5000),
  });
  return { status: r.status, body: r.status === 204 ? undefined : await r.json() };
}

async function member(p: Proc, route: string): Promise<{ status: string[]; loadfactor: number }> {
  return (await api(p, `/balancers/tc/members/${route}`)).body;
}

/** n sequential GETs through a balancer; all must answer 200. Returns the routes that answered. */
async function traffic(p: Proc, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${p.front}/x`, { signal: AbortSignal.timeout(5000) });
    assert.equal(r.status, 200, `request ${i} through ${p.front}`);
    out.push((await r.text()).trim());
  }
  return out;
}

async function peersOf(p: Proc): Promise<number> {
  const r = await api(p, '/sources/fleet');
  return r.status === 200 ? r.body.peers.length : -1;
}

test('a fleet of three balancers agrees on manager changes, survives a SIGKILL and catches up on restart', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-fleet-'));
  const children = new Set<ChildProcess>();
  const backends: Backend[] = [await startBackend('a'), await startBackend('b')];
  const intruder: { stop?: () => void } = {};
  try {
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, randomBytes(32).toString('base64'), { mode: 0o600 });
    const ports = [await freePort(), await freePort(), await freePort()];
    const hash = await testHash();
    const files = ports.map((port, i) => {
      const file = join(dir, `balancer-${i}.yaml`);
      writeFileSync(file, stringify({
        listen: '127.0.0.1:0',
        accesslog: false,
        loglevel: 'warn',
        balancers: [{ name: 'tc', slowstart: 0, members: backends.map((b) => ({ url: b.url, route: b.route })) }],
        manager: { listen: '127.0.0.1:0', users: [{ name: 'alice', password: hash }], token: TOKEN },
        cluster: { listen: `127.0.0.1:${port}`, secretFile, members: ports.filter((p) => p !== port).map((p) => `127.0.0.1:${p}`) },
      }));
      return file;
    });
    const procs = await Promise.all(files.map((f) => spawnBalancer(f, children)));
    for (const p of procs) await waitFor(async () => (await peersOf(p)) === 2, 20_000, 'every balancer to see its two peers');
    for (const p of procs) assert.deepEqual(new Set(await traffic(p, 6)), new Set(['a', 'b']));

    // Disable a on balancer 0: the other two apply it within a second.
    const disabledAt = Date.now();
    assert.equal((await api(procs[0]!, '/balancers/tc/members/a', { method: 'POST', body: { status: { disabled: true } } })).status, 200);
    for (const p of procs.slice(1)) await waitFor(async () => (await member(p, 'a')).status.includes('disabled'), 5000, 'the peer to disable a');
    // Reported, not asserted (no timed assertions on a shared machine): typically a few ms on loopback.
    t.diagnostic(`a manager change applied on both peers after ${Date.now() - disabledAt} ms`);
    // The dashboard shows every balancer: balancer 0's fleet panel has both peers, and their members as they see them.
    await waitFor(async () => {
      const snap = (await api(procs[0]!, '/sources/fleet')).body;
      return snap.peers.length === 2 && snap.peers.every((p: any) => p.view?.balancers[0].members.find((m: any) => m.route === 'a')?.flags === 'D');
    }, 10_000, 'balancer 0\'s fleet panel to show a disabled on both peers');
    const hitsA = backends[0]!.hits;
    for (const p of procs) assert.deepEqual(new Set(await traffic(p, 6)), new Set(['b']));
    assert.equal(backends[0]!.hits, hitsA, 'no balancer sends to the disabled member');
    // Persisted by each: balancer 2's state file has it.
    await waitFor(() => {
      try {
        return JSON.parse(readFileSync(`${files[2]}.state.json`, 'utf8')).balancers[0].configured.some((c: any) => c.now?.route === 'a' && c.now.status.includes('disabled'));
      } catch {
        return false;
      }
    }, 5000, 'balancer 2 to save the change');

    // ... and its fleet registers (the stamps), for after a restart.
    await waitFor(() => {
      try {
        return JSON.parse(readFileSync(`${files[2]}.fleet.json`, 'utf8')).highest >= 1;
      } catch {
        return false;
      }
    }, 5000, 'balancer 2 to save its fleet registers');

    // SIGKILL balancer 2: the others keep serving.
    const exited = new Promise((r) => procs[2]!.child.once('exit', r));
    process.kill(procs[2]!.child.pid!, 'SIGKILL');
    await exited;
    for (const p of procs.slice(0, 2)) assert.deepEqual(new Set(await traffic(p, 4)), new Set(['b']));

    // Changes it misses: balancer 1 enables a and gives b loadfactor 7.
    assert.equal((await api(procs[1]!, '/balancers/tc/members/a', { method: 'POST', body: { status: { disabled: false } } })).status, 200);
    assert.equal((await api(procs[1]!, '/balancers/tc/members/b', { method: 'POST', body: { loadfactor: 7 } })).status, 200);
    await waitFor(async () => !(await member(procs[0]!, 'a')).status.includes('disabled') && (await member(procs[0]!, 'b')).loadfactor === 7, 5000, 'balancer 0 to apply balancer 1\'s changes');

    // Restart balancer 2 (same config, same channel port): its saved state says a is disabled;
    // the state exchange on join brings it up to date.
    procs[2] = await spawnBalancer(files[2]!, children);
    await waitFor(async () => {
      const a = await member(procs[2]!, 'a');
      const b = await member(procs[2]!, 'b');
      return !a.status.includes('disabled') && b.loadfactor === 7;
    }, 10_000, 'the restarted balancer to catch up');
    assert.ok((await traffic(procs[2]!, 8)).includes('a'), 'the restarted balancer sends to a again');

    // Shared evidence: backend b goes away; only balancer 0 sends it traffic. Balancers 1 and 2, which sent
    // it nothing for a while, avoid it on balancer 0's word.
    await new Promise((r) => setTimeout(r, 1200));
    await backends[1]!.close();
    const seenBy0 = await traffic(procs[0]!, 6);
    assert.ok(seenBy0.every((r) => r === 'a'), 'balancer 0 fails over to a');
    for (const p of procs.slice(1)) {
      await waitFor(async () => {
        const b = (await api(p, '/balancers/tc/members/b')).body;
        return b.health === 'error' && /saw it fail/.test(b.reason?.message ?? '');
      }, 5000, 'a peer to avoid b on balancer 0\'s report');
    }
    const hitsBefore = backends[0]!.hits;
    assert.deepEqual(new Set(await traffic(procs[1]!, 4)), new Set(['a']));
    assert.equal(backends[0]!.hits, hitsBefore + 4, 'balancer 1 sent nothing to b (no failed attempt first)');
    const m1 = await (await fetch(`${procs[1]!.manager}/metrics`)).text();
    assert.match(m1, /cohort_fleet_evidence_total\{outcome="avoided"\} [1-9]/);
    // The dashboard page carries the fleet panel.
    const page = await fetch(`${procs[0]!.manager}/balancer-manager/dashboard`, { headers: { authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}` } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Balancer fleet/);

    // A forged change: a process with the cluster secret joins as a balancer and sends a change
    // it claims another balancer wrote, then a stale one in its own name.
    const node = createClusterNode({
      clusterName: 'cohort',
      route: 'lb-intruder',
      listen: { host: '127.0.0.1', port: 0 },
      secretFile,
      membership: { type: 'static', members: [`127.0.0.1:${ports[0]}`] },
      meta: { role: 'balancer' },
    } as never);
    await node.start();
    intruder.stop = () => node.destroy();
    await waitFor(() => node.members().some((m) => m.meta.role === 'balancer'), 10_000, 'the intruder to join');
    const target = node.members().find((m) => m.channelAddress.port === ports[0])!;
    const entry = (writer: string, version: number) => ({ kind: 'member', balancer: 'tc', url: `${backends[0]!.url}/`, stamp: { version, writer }, value: { route: 'a', loadfactor: 1, lbset: 0, max: 100, retry: 60, status: ['disabled'] } });
    await assert.rejects(node.send(target.id, 'fleet.change', { entries: [entry('lb-someone-else', 1000)] }, { mode: 'applied' }), /COHORT_FLEET_FORGED|written by/);
    await assert.rejects(node.send(target.id, 'fleet.change', { entries: [entry('lb-intruder', 1)] }, { mode: 'applied' }), /older than|STALE/);
    const metrics = await (await fetch(`${procs[0]!.manager}/metrics`)).text();
    assert.match(metrics, /cohort_fleet_refused_total\{reason="forged"\} 1/);
    assert.match(metrics, /cohort_fleet_refused_total\{reason="stale"\} 1/);
    assert.ok(!(await member(procs[0]!, 'a')).status.includes('disabled'), 'the refused changes changed nothing');
  } finally {
    intruder.stop?.();
    const waits: Promise<unknown>[] = [];
    for (const c of children) {
      waits.push(new Promise((r) => c.once('exit', r)));
      process.kill(c.pid!, 'SIGKILL');
    }
    await Promise.all(waits);
    for (const b of backends) await b.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});
