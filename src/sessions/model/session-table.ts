/**
 * The sessions a node holds (as owner or copy) and the tombstones of those
 * destroyed, so that a delayed message or a peer's old copy never brings a
 * destroyed session back. Pure data structure; times are passed in.
 */
import type { Session } from './session.js';

export interface Tombstone {
  readonly version: number;
  /** local monotonic ms when recorded */
  readonly at: number;
  /** local monotonic ms before which it is kept whatever the default lifetime (see {@link SessionTable.bury}) */
  readonly keepUntil?: number;
}

export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  private readonly tombstones = new Map<string, Tombstone>();

  get size(): number {
    return this.sessions.size;
  }

  get tombstoneCount(): number {
    return this.tombstones.size;
  }

  get(base: string): Session | undefined {
    return this.sessions.get(base);
  }

  has(base: string): boolean {
    return this.sessions.has(base);
  }

  set(s: Session): void {
    this.sessions.set(s.base, s);
  }

  /** Removes a copy without tombstone (a replica dropping its copy). */
  remove(base: string): Session | undefined {
    const s = this.sessions.get(base);
    this.sessions.delete(base);
    return s;
  }

  /**
   * Removes and remembers the session as destroyed. `keepMs`: keep the
   * tombstone at least that long even past the default lifetime — an
   * invalidated session's copies elsewhere (across a partition) live up to
   * maxInactive + grace, and the tombstone must outlive them or a healed
   * partition would bring the session back.
   */
  bury(base: string, version: number, now: number, keepMs = 0): Session | undefined {
    const s = this.remove(base);
    this.tombstones.set(base, keepMs > 0 ? { version, at: now, keepUntil: now + keepMs } : { version, at: now });
    return s;
  }

  tombstone(base: string): Tombstone | undefined {
    return this.tombstones.get(base);
  }

  values(): IterableIterator<Session> {
    return this.sessions.values();
  }

  bases(): string[] {
    return [...this.sessions.keys()];
  }

  tombstoneEntries(): IterableIterator<[string, Tombstone]> {
    return this.tombstones.entries();
  }

  /** Forgets tombstones recorded before `olderThan`, except those to be kept past `now`. */
  purgeTombstones(olderThan: number, now = olderThan): number {
    let n = 0;
    for (const [b, t] of this.tombstones) {
      if (t.at < olderThan && !(t.keepUntil !== undefined && t.keepUntil > now)) {
        this.tombstones.delete(b);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.sessions.clear();
  }
}
