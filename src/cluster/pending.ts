/**
 * Outstanding acks and responses, keyed by message id, each with a timeout.
 * Settled by the peer's answer, by the timeout, or in bulk when the peer is
 * gone or the node closes.
 */
import { CohortError } from '../errors.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { JsonValue } from './types.js';

interface Entry {
  readonly peerId: string;
  readonly resolve: (v: JsonValue) => void;
  readonly reject: (e: Error) => void;
  readonly timer: TimerHandle;
}

export class PendingCalls {
  private readonly map = new Map<number, Entry>();
  private nextId = 1;

  constructor(private readonly clock: Clock) {}

  get size(): number {
    return this.map.size;
  }

  /** A fresh message id (also used for messages that expect no answer). */
  id(): number {
    return this.nextId++;
  }

  /** Registers `id`; the promise settles with the answer, or rejects with `timeoutCode` after `timeoutMs`. */
  wait(id: number, peerId: string, timeoutMs: number, timeoutCode: string, timeoutMessage: string): Promise<JsonValue> {
    return new Promise<JsonValue>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.map.delete(id);
        reject(new CohortError(timeoutCode, timeoutMessage));
      }, timeoutMs);
      timer.unref?.();
      this.map.set(id, { peerId, resolve, reject, timer });
    });
  }

  settle(id: number, err: Error | undefined, value: JsonValue = null): void {
    const p = this.map.get(id);
    if (!p) return;
    this.map.delete(id);
    this.clock.clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(value);
  }

  /** Fails everything awaited from `peerId`. */
  failPeer(peerId: string, err: Error): void {
    for (const [id, p] of this.map) if (p.peerId === peerId) this.settle(id, err);
  }

  failAll(err: Error): void {
    for (const id of [...this.map.keys()]) this.settle(id, err);
  }
}
