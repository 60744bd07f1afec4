/**
 * Real node processes for the multi-process failover test (3 nodes, SIGKILL
 * the owner of half the users) once the cluster layer and node runtime
 * exist: spawn a node with its own port, wait until it prints its URL, kill
 * it by PID. Pair with ./virtual-users.ts:
 *
 *   const nodes = await Promise.all(['n1','n2','n3'].map((r) => spawnNode(process.execPath, ['bin/cohort.js', 'node', '--route', r, ...])));
 *   const users = Array.from({length: 50}, (_, i) => new VirtualUser(i, () => nodes));
 *   await runUsers(users, 20, (step) => step === 5 && nodes[0].kill());
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface SpawnedNode {
  readonly route: string;
  readonly url: string;
  readonly pid: number;
  readonly output: readonly string[];
  alive(): boolean;
  /** SIGKILL by default; resolves when the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnOptions {
  readonly route: string;
  readonly env?: NodeJS.ProcessEnv;
  /** First capture group = the node's base URL. */
  readonly readyPattern?: RegExp;
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

/** Spawns `command args`, resolves once a stdout/stderr line matches readyPattern. */
export function spawnNode(command: string, args: readonly string[], opts: SpawnOptions): Promise<SpawnedNode> {
  const pattern = opts.readyPattern ?? /(https?:\/\/[\d.:[\]a-z]+:\d+)/i;
  const child: ChildProcess = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  let exited = false;
  const gone = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true;
      r();
    }),
  );
  return new Promise<SpawnedNode>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${opts.route}: not ready within ${opts.timeoutMs ?? 10_000} ms; output:\n${output.join('\n')}`));
    }, opts.timeoutMs ?? 10_000);
    let ready = false;
    const onLine = (line: string) => {
      output.push(line);
      const m = !ready && pattern.exec(line);
      if (!m) return;
      ready = true;
      clearTimeout(timer);
      resolve({
        route: opts.route,
        url: m[1]!,
        pid: child.pid!,
        output,
        alive: () => !exited,
        async kill(signal = 'SIGKILL') {
          if (!exited) process.kill(child.pid!, signal);
          await gone;
        },
      });
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code) => {
      if (!ready) {
        clearTimeout(timer);
        reject(new Error(`${opts.route}: exited with ${code} before ready; output:\n${output.join('\n')}`));
      }
    });
  });
}
