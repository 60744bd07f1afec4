/**
 * The one time source and the one random source injected into protocol logic
 * (sessions, cluster, node). Production code passes {@link systemClock} and
 * {@link systemRandom}; tests pass a {@link ManualClock} (and
 * {@link seededRandom}) and drive time by hand. This is the only module of
 * those layers that reads the system's clocks, timers and random generators
 * (test/gates/clock.test.ts checks it).
 */
import { randomBytes } from 'node:crypto';

/** All values are milliseconds. */
export interface Clock {
  /** Monotonic milliseconds (not wall time): durations, deadlines, timers. */
  now(): number;
  /**
   * Wall-clock milliseconds since the epoch. Only for what is informative
   * (creation times, event timestamps) or compared across nodes on purpose
   * (write tags, convergence.ts) — never for a duration.
   */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface TimerHandle {
  unref?(): unknown;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface ManualTimer extends TimerHandle {
  at: number;
  fn: () => void;
  seq: number;
  cancelled: boolean;
}

/**
 * A clock for tests: time moves only when {@link ManualClock.advance} is
 * called. Wall time starts at `wallStart` (default: the real wall clock when
 * the clock was made) and moves with it.
 */
export class ManualClock implements Clock {
  private t: number;
  private readonly start: number;
  private readonly wallStart: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(start = 0, wallStart = Date.now()) {
    this.t = this.start = start;
    this.wallStart = wallStart;
  }

  now(): number {
    return this.t;
  }

  wallNow(): number {
    return this.wallStart + (this.t - this.start);
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.t + Math.max(0, ms), fn, seq: this.seq++, cancelled: false, unref: () => timer };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    (handle as ManualTimer).cancelled = true;
  }

  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.timers = this.timers.filter((x) => !x.cancelled);
      let next: ManualTimer | undefined;
      for (const x of this.timers) {
        if (x.at <= end && (!next || x.at < next.at || (x.at === next.at && x.seq < next.seq))) next = x;
      }
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.t = end;
  }
}

/**
 * The random source injected where protocol logic makes random choices or
 * needs random bytes (ids, nonces). Called as a function it returns a float in
 * [0, 1); {@link Random.bytes} returns `n` random bytes.
 */
export interface Random {
  (): number;
  /** `n` random bytes; cryptographically strong in {@link systemRandom}. */
  bytes(n: number): Buffer;
}

/** Math.random for choices, node:crypto for bytes. */
export const systemRandom: Random = Object.assign(() => Math.random(), { bytes: (n: number) => randomBytes(n) });

/** A seeded deterministic random source (mulberry32) for tests; its bytes come from the same sequence (not secret). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Object.assign(next, {
    bytes: (n: number) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
  });
}

/** One element of `items` chosen by `random` (undefined when empty). */
export function pickOne<T>(random: Random, items: readonly T[]): T | undefined {
  return items.length === 0 ? undefined : items[Math.floor(random() * items.length)];
}

/** A promise resolved after `ms` on `clock` (its timer unref'd). */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    clock.setTimeout(resolve, ms).unref?.();
  });
}
