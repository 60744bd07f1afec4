/**
 * Outgoing connection attempts: at most one in flight per address, each with a
 * connect timeout; addresses known to be this node are never dialed, and
 * addresses that refused us (route conflict) or belong to another cluster are
 * left alone for a while unless a known member must be confirmed there.
 */
import type { Socket } from 'node:net';
import type { Clock, TimerHandle } from '../util/clock.js';
import { addressKey, type Address } from './membership.js';
import type { NetFactory } from './net.js';

/** How long a refusing / foreign address is left alone, ms. */
export const BLOCK_MS = 10_000;

export class Dialer {
  private readonly inflight = new Map<string, () => void>();
  private readonly self = new Set<string>();
  private readonly blocked = new Map<string, number>();

  constructor(private readonly net: NetFactory, private readonly clock: Clock, private readonly connectTimeoutMs: number) {}

  markSelf(key: string): void {
    this.self.add(key);
  }

  isSelf(key: string): boolean {
    return this.self.has(key);
  }

  block(key: string): void {
    this.blocked.set(key, this.clock.now() + BLOCK_MS);
  }

  /** Forget the attempt for `key` (its connection is identified or closed). */
  done(key: string): void {
    this.inflight.delete(key);
  }

  /**
   * Connects to `addr` unless an attempt is in flight, it is this node, or it
   * is blocked (`force` ignores the block: confirming a known member).
   * `onSocket` gets the ready socket; `onFail` the error (code ECONNREFUSED when the port refuses).
   */
  dial(addr: Address, force: boolean, onSocket: (socket: Socket, key: string) => void, onFail: (err: Error & { code?: string }, key: string) => void): void {
    const key = addressKey(addr);
    if (this.inflight.has(key) || this.self.has(key)) return;
    const until = this.blocked.get(key);
    if (until !== undefined) {
      if (this.clock.now() < until && !force) return;
      if (this.clock.now() >= until) this.blocked.delete(key);
    }
    let timer: TimerHandle | undefined = undefined;
    const cancel = this.net.connect(addr, (err, socket) => {
      if (timer) this.clock.clearTimeout(timer);
      if (err || !socket) {
        this.inflight.delete(key);
        onFail(err ?? new Error('no socket'), key);
        return;
      }
      // the socket now belongs to its connection: closing the node closes it gracefully (a `leave`
      // still queued on it must reach the peer), so cancelling attempts must no longer destroy it
      if (this.inflight.has(key)) this.inflight.set(key, () => {});
      onSocket(socket, key);
    });
    this.inflight.set(key, cancel);
    timer = this.clock.setTimeout(() => cancel(), this.connectTimeoutMs);
    timer.unref?.();
  }

  /** Aborts the attempts still connecting; connected sockets are left to their connections. */
  cancelAll(): void {
    const all = [...this.inflight.values()];
    this.inflight.clear();
    for (const cancel of all) cancel();
  }
}
