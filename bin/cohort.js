#!/usr/bin/env node
// The `cohort` command. The implementation is compiled TypeScript in dist/.
//
// The balancer wants a larger young generation (64 MiB semi-spaces, V8's default is 16): a proxy allocates
// short-lived objects per request; fewer scavenges gave more requests/s and a lower p99 in paired
// peer-benchmark runs (docs/performance.md). The flag used to sit in the shebang (`env -S node …`), which
// fails where `env` has no -S (BusyBox, Alpine). `v8.setFlagsFromString()` is no substitute: the heap is
// already configured when this file runs (measured: new space stays at its default size). So `balancer`
// and `demo` re-execute Node once with the flag, unless it is already given (node flag or NODE_OPTIONS) or
// COHORT_V8_REEXEC=0. The parent forwards signals and exits as the child does; the child dies with the
// parent (IPC channel closed, e.g. the parent was SIGKILLed).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const YOUNG_GENERATION_FLAG = '--max-semi-space-size=64';
const WANTS_YOUNG_GENERATION = new Set(['balancer', 'demo']);
const FORWARDED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR2', 'SIGQUIT'];

const args = process.argv.slice(2);

function hasSemiSpaceFlag() {
  return process.execArgv.some((a) => a.startsWith('--max-semi-space-size')) || (process.env.NODE_OPTIONS ?? '').includes('--max-semi-space-size');
}

function reexec() {
  const child = spawn(process.execPath, [...process.execArgv, YOUNG_GENERATION_FLAG, fileURLToPath(import.meta.url), ...args], {
    // Own process group: a terminal's Ctrl-C reaches the parent only, which forwards it once.
    detached: true,
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, COHORT_REEXEC_CHILD: '1' },
  });
  const forward = (sig) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
  };
  for (const sig of FORWARDED_SIGNALS) process.on(sig, forward);
  child.on('error', (err) => {
    console.error(`cohort: cannot start ${process.execPath}: ${err.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const sig of FORWARDED_SIGNALS) process.off(sig, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

function run() {
  if (process.env.COHORT_REEXEC_CHILD === '1') {
    delete process.env.COHORT_REEXEC_CHILD;
    if (process.channel) {
      process.channel.unref();
      process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
    }
  }
  import('../dist/src/cli/main.js')
    .then((m) => m.main(args))
    .catch((err) => {
      if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli')) {
        console.error('cohort: not built yet — run `npm run build` (or `npm ci`, then `npm run build`).');
        process.exit(1);
      }
      console.error(err);
      process.exit(1);
    });
}

if (WANTS_YOUNG_GENERATION.has(args[0] ?? '') && !hasSemiSpaceFlag() && process.env.COHORT_V8_REEXEC !== '0') reexec();
else run();
