/** Network-namespace test hosts: the `ip` command, and why namespaces can't be used here (or undefined). */
import { execFileSync } from 'node:child_process';

export function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A reason to skip (not root, no `ip netns`), or undefined when a namespace `${tag}-probe` can be made and removed. */
export function netnsUnavailable(tag: string): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  try {
    ip('netns', 'add', `${tag}-probe`);
    ip('netns', 'del', `${tag}-probe`);
    return undefined;
  } catch (err) {
    return `ip netns unavailable: ${(err as Error).message.split('\n')[0]}`;
  }
}
