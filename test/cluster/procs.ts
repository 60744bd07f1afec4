/** Spawning fixture processes for multi-process tests; every process is killed by PID by the caller's cleanup. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';

export const FIXTURE = fileURLToPath(new URL('./fixtures/node-proc.js', import.meta.url));

export interface Line {
  readonly ev: string;
  readonly [k: string]: unknown;
}

export class Proc {
  readonly lines: Line[] = [];
  readonly child: ChildProcess;
  private waiters: Array<() => void> = [];
  /** `wrap`: a command prefix that execs the node (e.g. ['ip', 'netns', 'exec', ns]), so the PID stays the node's. */
  constructor(readonly name: string, config: Record<string, unknown>, secret: string, wrap: readonly string[] = []) {
    const argv = [...wrap, process.execPath, FIXTURE, JSON.stringify(config)];
    this.child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, COHORT_CLUSTER_SECRET: secret }, stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      try {
        this.lines.push(JSON.parse(l) as Line);
      } catch {
        this.lines.push({ ev: 'raw', text: l });
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits for a line matching `pred` (already seen or future). */
  async wait(pred: (l: Line) => boolean, ms: number, what: string): Promise<Line> {
    const end = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find(pred);
      if (hit) return hit;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`${this.name}: timed out after ${ms} ms waiting for ${what}; saw ${JSON.stringify(this.lines.slice(-8))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async stats(): Promise<Line> {
    const n = this.lines.length;
    this.child.stdin!.write('stats\n');
    const idx = () => this.lines.findIndex((l, i) => i >= n && l.ev === 'stats');
    await this.wait(() => idx() >= 0, 3000, 'stats');
    return this.lines[idx()]!;
  }

  kill(sig: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try {
        process.kill(this.pid, sig);
      } catch {
        // already exited
      }
    }
  }

  exited(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((r) => this.child.once('exit', () => r()));
  }
}

export { freePort } from '../helpers/ports.js';

export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Whether multicast works on the loopback interface here (checked at runtime). */
export async function multicastOnLoopback(group: string, port: number): Promise<string | undefined> {
  const a = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  try {
    await new Promise<void>((r, j) => {
      a.once('error', j);
      a.bind(port, () => r());
    });
    a.addMembership(group, '127.0.0.1');
    a.setMulticastInterface('127.0.0.1');
    a.setMulticastLoopback(true);
    const got = new Promise<boolean>((r) => {
      a.once('message', () => r(true));
      setTimeout(() => r(false), 500);
    });
    a.send('probe', port, group);
    return (await got) ? undefined : 'no multicast datagram came back on 127.0.0.1 within 500 ms';
  } catch (err) {
    return `multicast on loopback unavailable: ${(err as Error).message}`;
  } finally {
    a.close();
  }
}
