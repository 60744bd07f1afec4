import type { Clock, TimerHandle } from './clock.js';

/**
 * Passes values on at most once per `minIntervalMs`: the first at once, later
 * ones at the end of the interval (only the latest of a burst is delivered).
 * Used for progress that changes faster than it is worth publishing.
 */
export class Throttle<T> {
  private lastAt: number | undefined;
  private pending: { value: T } | undefined;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    /** ms */
    private readonly minIntervalMs: number,
    private readonly deliver: (value: T) => void,
  ) {}

  push(value: T): void {
    const now = this.clock.now();
    if (this.timer === undefined && (this.lastAt === undefined || now - this.lastAt >= this.minIntervalMs)) {
      this.lastAt = now;
      this.deliver(value);
      return;
    }
    this.pending = { value };
    if (this.timer === undefined) {
      this.timer = this.clock.setTimeout(() => this.fire(), this.lastAt! + this.minIntervalMs - now);
      this.timer.unref?.();
    }
  }

  /** Drops what is pending (the caller publishes the final value itself). Safe to call twice. */
  cancel(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }

  private fire(): void {
    this.timer = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (!p) return;
    this.lastAt = this.clock.now();
    this.deliver(p.value);
  }
}
