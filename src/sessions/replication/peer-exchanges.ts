/**
 * Anti-entropy runs triggered by membership events (`back`, `added`): at
 * most one per peer at a time — an event during a run schedules one more run
 * after it, since the running one may have read the peer's digest before the
 * change — and a failed run (the link is not quite back yet, a timeout) is
 * retried with a bounded backoff while the peer is still a member. After the
 * last attempt the periodic anti-entropy remains the safety net.
 */
import type { MemberView } from '../../cluster/types.js';
import type { Clock } from '../../util/clock.js';
import { backoffDelay, type BackoffPolicy } from '../../util/backoff.js';
import type { SessionLogger } from '../contract.js';

export interface ExchangeRetryPolicy extends BackoffPolicy {
  /** Retries after a failed run. */
  readonly attempts: number;
}

export const DEFAULT_EXCHANGE_RETRY: ExchangeRetryPolicy = { attempts: 5, initialMs: 500, maxMs: 8_000 };

export interface PeerExchangeOptions {
  readonly clock: Clock;
  readonly isMember: (id: string) => boolean;
  readonly cancelled: () => boolean;
  readonly log: SessionLogger;
  readonly node: () => string;
  readonly retry?: ExchangeRetryPolicy;
}

interface Pending {
  /** Another run was asked for while one was in progress or waiting. */
  again: boolean;
  /** The next run pushes too. */
  push: boolean;
  /** Ends a retry wait early (a new event is news: the link may be back). */
  wake: (() => void) | undefined;
}

export class PeerExchanges {
  private readonly running = new Map<string, Pending>();

  constructor(
    private readonly run: (peer: MemberView, push: boolean) => Promise<unknown>,
    private readonly opts: PeerExchangeOptions,
  ) {}

  /** Peers with a run in progress or waiting to retry. */
  get active(): number {
    return this.running.size;
  }

  /** Runs an exchange with `peer` now, or once more after the one in progress (at once if it waits to retry). */
  request(peer: MemberView, why: string, push: boolean): void {
    const r = this.running.get(peer.id);
    if (r) {
      r.again = true;
      r.push ||= push;
      r.wake?.();
      return;
    }
    const state: Pending = { again: false, push, wake: undefined };
    this.running.set(peer.id, state);
    void this.loop(peer, why, state).finally(() => this.running.delete(peer.id));
  }

  private async loop(peer: MemberView, why: string, state: Pending): Promise<void> {
    const policy = this.opts.retry ?? DEFAULT_EXCHANGE_RETRY;
    let failures = 0;
    for (;;) {
      if (this.opts.cancelled() || !this.opts.isMember(peer.id)) return;
      state.again = false;
      const push = state.push;
      state.push = false;
      try {
        await this.run(peer, push);
        failures = 0;
        if (!state.again) return;
      } catch (err) {
        state.push ||= push;
        failures++;
        if (failures > policy.attempts || this.opts.cancelled()) {
          this.opts.log.warn({ node: this.opts.node(), member: peer.route, why, err: String(err) }, `anti-entropy with ${peer.route} failed ${failures} times; the periodic exchange will retry`);
          return;
        }
        const wait = backoffDelay(policy, failures);
        this.opts.log.warn({ node: this.opts.node(), member: peer.route, why, attempt: failures, retryInMs: wait, err: String(err) }, `anti-entropy with ${peer.route} failed; retrying in ${wait} ms`);
        if (state.again) continue;
        await new Promise<void>((resolve) => {
          const t = this.opts.clock.setTimeout(() => resolve(), wait);
          state.wake = () => {
            this.opts.clock.clearTimeout(t);
            resolve();
          };
        });
        state.wake = undefined;
      }
    }
  }
}
