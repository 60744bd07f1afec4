/**
 * The netns lab of the chaos run: namespaces joined by a bridge, a silent
 * partition between nodes that leaves the root namespace (the balancer) able
 * to reach every node, healing, and deletion. Root and `ip netns` required;
 * skipped otherwise.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { NetnsLab, checkNetns, type NetnsNode } from '../../chaos/netns.js';

let skip: string | false = false;
try {
  checkNetns();
} catch (err) {
  skip = (err as Error).message;
}

/** Connects from inside `from` (or the root namespace) to addr:port; resolves 'ok', 'timeout' or an error code. */
function probe(from: NetnsNode | undefined, address: string, port: number): Promise<string> {
  const code = `const s=require('net').connect(${port},'${address}');s.setTimeout(700,()=>{console.log('timeout');process.exit()});s.on('connect',()=>{console.log('ok');process.exit()});s.on('error',e=>{console.log(e.code);process.exit()})`;
  const child = from ? spawn('ip', ['netns', 'exec', from.ns, process.execPath, '-e', code]) : spawn(process.execPath, ['-e', code]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => void (out += d.toString()));
  return new Promise((r) => child.once('exit', () => r(out.trim())));
}

test('netns lab: partition cuts nodes off from each other silently, not from the root namespace; heal restores; destroy removes everything', { skip, timeout: 30_000 }, async () => {
  const lab = new NetnsLab();
  // A listener in each namespace, killed by PID at the end.
  const listeners: number[] = [];
  try {
    const [a, b] = lab.create(2);
    for (const n of [a!, b!]) {
      const l = spawn('ip', ['netns', 'exec', n.ns, process.execPath, '-e', `require('net').createServer(s=>s.end()).listen(9000,'${n.address}',()=>console.log('up'))`]);
      listeners.push(l.pid!);
      await new Promise((r) => l.stdout.once('data', r));
    }
    assert.equal(await probe(a, b!.address, 9000), 'ok');
    lab.partition(a!);
    assert.equal(await probe(a, b!.address, 9000), 'timeout', 'a → b cut');
    assert.equal(await probe(b, a!.address, 9000), 'timeout', 'b → a cut');
    assert.equal(await probe(undefined, a!.address, 9000), 'ok', 'the root namespace still reaches a');
    assert.equal(await probe(undefined, b!.address, 9000), 'ok', 'the root namespace still reaches b');
    lab.heal(a!);
    assert.equal(await probe(a, b!.address, 9000), 'ok', 'healed');
  } finally {
    for (const pid of listeners) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    const names = lab.nodes.map((n) => n.ns);
    lab.destroy();
    lab.destroy();
    const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    for (const ns of names) assert.ok(!left.includes(ns), `${ns} left behind`);
    assert.throws(() => execFileSync('ip', ['link', 'show', lab.bridge], { stdio: 'pipe' }), 'bridge left behind');
  }
});

test('checkNetns says why the netns profile cannot run', { skip: skip === false ? 'netns is available here' : false }, () => {
  assert.ok(typeof skip === 'string' && skip.length > 0);
});
