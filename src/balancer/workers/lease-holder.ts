/**
 * A worker's side of one member's lease of `max` slots (see lease-ledger.ts).
 * The worker's engine treats `held` as the member's max: the picker never
 * starts a request beyond it, so the owner's bound holds globally.
 *
 * Hysteresis keeps leases still in a steady state: the worker asks for a block
 * when fewer than half a block is left (or a request waits), and gives back
 * only on its periodic tick, when two blocks or more stayed unused over the
 * whole interval (busy swings from 0 to its peak within microseconds, so
 * giving back at each release would churn a block per few dozen requests).
 * Other workers that need slots get them sooner through recall and spare.
 * Pure: takes the member's busy count, returns what to send.
 */

export type HolderMessage =
  /** `waiting`: a request waits for a slot (the owner then asks other workers to spare unused ones). */
  | { readonly kind: 'want'; readonly n: number; readonly waiting: boolean }
  | { readonly kind: 'return'; readonly n: number };

export class LeaseHolder {
  held = 0;
  /** A want was sent and not yet answered by a grant. */
  private wanting = false;
  /** Set by a recall: shrink to this many slots as they become unused. */
  private target: number | undefined;
  /** The most slots in use since the last tick. */
  private peak = 0;

  constructor(public block: number) {}

  /** The owner granted `n` slots. */
  granted(n: number): void {
    this.held += n;
    this.wanting = false;
  }

  /** A request started (busy already counts it) or waits for this member (`waiting`). */
  acquired(busy: number, waiting = false): HolderMessage | undefined {
    if (busy > this.peak) this.peak = busy;
    if (this.wanting || this.target !== undefined) return undefined;
    if (waiting || this.held - busy < Math.ceil(this.block / 2)) {
      this.wanting = true;
      return { kind: 'want', n: this.block, waiting };
    }
    return undefined;
  }

  /** The owner recalled this lease down to `target`. */
  recalled(target: number, busy: number): HolderMessage | undefined {
    this.target = target;
    this.wanting = false;
    return this.give(busy);
  }

  /** The owner asks for the slots unused now (another worker has a request waiting). */
  spare(busy: number): HolderMessage | undefined {
    if (this.target !== undefined) return this.give(busy);
    const n = this.held - busy;
    if (n <= 0) return undefined;
    this.held -= n;
    return { kind: 'return', n };
  }

  /** A request on this member ended (busy no longer counts it): only a recall gives slots back here. */
  released(busy: number): HolderMessage | undefined {
    return this.target !== undefined ? this.give(busy) : undefined;
  }

  /** The periodic tick: gives back what stayed unused over the whole interval, beyond one block of headroom. */
  tick(busy: number): HolderMessage | undefined {
    // A want unanswered over a whole interval may ask again (the owner keeps one want per worker, so a repeat
    // only refreshes it): a want the owner could not take is not waited for forever.
    this.wanting = false;
    const peak = Math.max(this.peak, busy);
    this.peak = busy;
    if (this.target !== undefined) return this.give(busy);
    const unused = this.held - peak;
    if (unused < 2 * this.block) return undefined;
    const n = unused - this.block;
    this.held -= n;
    return { kind: 'return', n };
  }

  private give(busy: number): HolderMessage | undefined {
    const n = Math.min(this.held - busy, this.held - this.target!);
    if (this.held - Math.max(0, n) <= this.target!) this.target = undefined;
    if (n <= 0) return undefined;
    this.held -= n;
    return { kind: 'return', n };
  }
}
