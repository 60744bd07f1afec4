import { Pool, type Dispatcher } from 'undici';
import type { Member } from '../balancer/member.js';

/** Upstream connection settings shared by all member pools. Times in ms. */
export interface PoolSettings {
  readonly connectTimeoutMs: number;
  readonly firstByteTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly connections: number;
  readonly rejectUnauthorized: boolean;
  readonly ca: string | undefined;
}

/** Anything that opens upstream connections comes from a factory tests can replace. */
export type PoolFactory = (origin: string, settings: PoolSettings, member: Member) => Dispatcher;

export const undiciPoolFactory: PoolFactory = (origin, s, member) =>
  new Pool(origin, {
    connections: Math.min(s.connections, member.max),
    pipelining: 1,
    keepAliveTimeout: s.keepAliveTimeoutMs,
    keepAliveMaxTimeout: Math.max(s.keepAliveTimeoutMs, 60_000),
    headersTimeout: s.firstByteTimeoutMs,
    bodyTimeout: s.idleTimeoutMs,
    connect: {
      timeout: s.connectTimeoutMs,
      rejectUnauthorized: s.rejectUnauthorized,
      ...(s.ca !== undefined ? { ca: s.ca } : {}),
    },
  });

/** One pool per member origin; pools of removed members are closed. */
export class PoolSet {
  private readonly pools = new Map<string, Dispatcher>();
  constructor(
    private settings: PoolSettings,
    private readonly factory: PoolFactory,
  ) {}

  get(member: Member): Dispatcher {
    let p = this.pools.get(member.key);
    if (p === undefined) {
      p = this.factory(member.key, this.settings, member);
      this.pools.set(member.key, p);
    }
    return p;
  }

  /** Closes pools whose origin is no longer used. */
  prune(live: ReadonlySet<string>): void {
    for (const [key, pool] of this.pools) {
      if (!live.has(key)) {
        this.pools.delete(key);
        pool.close().catch(() => pool.destroy().catch(() => {}));
      }
    }
  }

  updateSettings(settings: PoolSettings): void {
    this.settings = settings;
    // New settings apply to pools created from now on; existing pools keep their connections.
    const old = [...this.pools.values()];
    this.pools.clear();
    for (const p of old) p.close().catch(() => {});
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }

  async destroy(): Promise<void> {
    await Promise.allSettled([...this.pools.values()].map((p) => p.destroy()));
    this.pools.clear();
  }
}
