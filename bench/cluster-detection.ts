/**
 * Failure-detection figures on loopback with real processes (not part of `npm test`):
 *   node dist/bench/cluster-detection.js [kills=20] [stops=10] [saturateSeconds=0]
 * Prints median/max detection time for SIGKILL and SIGSTOP, and with
 * saturateSeconds > 0 counts false removals while both cores are busy.
 */
import { spawn } from 'node:child_process';
import { Proc, freePort } from '../test/cluster/procs.js';

const SECRET = 'bench-secret-0123456789abcdef';
const [kills = 20, stops = 10, saturate = 0] = process.argv.slice(2).map(Number);
const procs: Proc[] = [];
const busy: number[] = [];

function stat(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? `median ${s[Math.floor(s.length / 2)]} ms, max ${s[s.length - 1]} ms, min ${s[0]} ms (n=${s.length})` : 'n/a';
}

async function main(): Promise<void> {
  const ports = [await freePort(), await freePort(), await freePort()];
  const members = ports.map((p) => `127.0.0.1:${p}`);
  const cfg = (route: string, port: number) => ({ route, listen: { host: '127.0.0.1', port }, membership: { type: 'static', members, refreshMs: 250 } });
  const a = new Proc('a', cfg('a', ports[0]!), SECRET);
  const b = new Proc('b', cfg('b', ports[1]!), SECRET);
  procs.push(a, b);
  const since = (ev: string, route: string, t: number) => (l: { ev: string; [k: string]: unknown }) => l.ev === ev && l['route'] === route && (l['at'] as number) >= t;
  const killT: number[] = [];
  const stopT: number[] = [];
  for (let i = 0; i < kills + stops; i++) {
    const t0 = Date.now();
    const c = new Proc('c', cfg('c', ports[2]!), SECRET);
    procs.push(c);
    await a.wait(since('added', 'c', t0), 10_000, 'a sees c');
    await b.wait(since('added', 'c', t0), 10_000, 'b sees c');
    await c.wait(since('added', 'a', t0), 10_000, 'c sees a');
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 250));
    const t1 = Date.now();
    const stop = i >= kills;
    c.kill(stop ? 'SIGSTOP' : 'SIGKILL');
    const ga = await a.wait(since('gone', 'c', t1), 10_000, 'a sees c gone');
    const gb = await b.wait(since('gone', 'c', t1), 10_000, 'b sees c gone');
    for (const [who, g, p] of [['a', ga, a], ['b', gb, b]] as const) {
      const ms = (g['at'] as number) - t1;
      (stop ? stopT : killT).push(ms);
      if (!stop && ms > 100) console.log(`  slow: ${who} ${ms} ms: ${JSON.stringify(p.lines.filter((l) => l['route'] === 'c' && (l['at'] as number) >= t1))}`);
    }
    c.kill('SIGKILL');
    await c.exited();
  }
  console.log(`SIGKILL → gone (each of 2 observers, ${kills} kills): ${stat(killT)}`);
  console.log(`SIGSTOP → gone (each of 2 observers, ${stops} stops): ${stat(stopT)}`);
  if (saturate > 0) {
    const t0 = Date.now();
    const c = new Proc('c', cfg('c', ports[2]!), SECRET);
    procs.push(c);
    await a.wait(since('added', 'c', t0), 10_000, 'a sees c');
    for (let i = 0; i < 2; i++) busy.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }).pid!);
    const t1 = Date.now();
    await new Promise((r) => setTimeout(r, saturate * 1000));
    const bad = [a, b, c].flatMap((p) => p.lines.filter((l) => (l.ev === 'gone' || l.ev === 'suspected') && (l['at'] as number) >= t1).map((l) => `${p.name}:${l.ev}:${l['route']}:${l['reason']}`));
    console.log(`saturated ${saturate} s with 2 busy loops on 2 cores: ${bad.filter((x) => x.includes(':gone:')).length} false removals, ${bad.filter((x) => x.includes(':suspected:')).length} suspicions ${JSON.stringify(bad)}`);
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const pid of busy) process.kill(pid, 'SIGKILL');
    for (const p of procs) p.kill('SIGKILL');
  });
