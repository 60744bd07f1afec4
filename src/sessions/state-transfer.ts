/**
 * State transfer: a joining node pulls sessions from peers in chunks with a
 * cursor (`request()` per chunk, one chunk in flight, so memory stays bounded
 * by chunk size), logs progress, gives up on a peer after a timeout and moves
 * to the next. The serving side freezes the list of ids at the first request
 * (a cursor), so sessions created meanwhile reach the joiner as ordinary
 * deltas instead of shifting the pages.
 */
import type { ClusterChannel, JsonValue, MemberView } from '../cluster/types.js';
import type { Clock } from '../util/clock.js';
import { SessionError, SessionErrorCode } from './errors.js';
import type { SessionLogger } from './manager.js';
import { asSnapshot, field, isArray, Topic, type SessionSnapshot } from './wire.js';

interface Cursor {
  readonly ids: readonly string[];
  lastUsed: number;
}

/** Serving side: frozen id lists by transfer id, forgotten after `idleMs`. */
export class CursorRegistry<T = string> {
  private readonly cursors = new Map<string, { items: readonly T[]; lastUsed: number }>();

  constructor(private readonly idleMs: number) {}

  /** Items [k, k + n) of the list frozen for `key` (created by `make` at k = 0). */
  page(key: string, k: number, n: number, now: number, make: () => readonly T[]): { items: readonly T[]; next: number | null; total: number } {
    let c = this.cursors.get(key);
    if (!c || k === 0) {
      c = { items: make(), lastUsed: now };
      this.cursors.set(key, c);
    }
    c.lastUsed = now;
    const items = c.items.slice(k, k + n);
    const next = k + n < c.items.length ? k + n : null;
    if (next === null) this.cursors.delete(key);
    return { items, next, total: c.items.length };
  }

  purge(now: number): void {
    for (const [k, c] of this.cursors) if (now - c.lastUsed > this.idleMs) this.cursors.delete(k);
  }

  get size(): number {
    return this.cursors.size;
  }
}
export type { Cursor };

export interface TransferOptions {
  readonly scope: 'all' | 'placed';
  readonly chunk: number;
  /** ms for the whole transfer */
  readonly timeoutMs: number;
  /** ms per chunk request */
  readonly requestTimeoutMs: number;
  readonly transferId: string;
}

export interface TransferReport {
  readonly sessions: number;
  readonly chunks: number;
  readonly ms: number;
  readonly complete: boolean;
  readonly peers: readonly string[];
}

/**
 * Pulls from one peer until its cursor is exhausted; `install` is called per
 * chunk. Throws on timeout or peer failure (the caller moves on).
 */
export async function pullFrom(
  channel: ClusterChannel,
  peer: MemberView,
  opts: TransferOptions,
  clock: Clock,
  deadline: number,
  install: (s: SessionSnapshot[]) => void,
  log: SessionLogger,
): Promise<{ sessions: number; chunks: number }> {
  let k: number | null = 0;
  let sessions = 0;
  let chunks = 0;
  let lastLog = clock.now();
  while (k !== null) {
    const left = deadline - clock.now();
    if (left <= 0) throw new SessionError(SessionErrorCode.TransferTimeout, `state transfer from ${peer.route} did not finish within ${opts.timeoutMs} ms`);
    const reply: JsonValue = await channel.request(peer.id, Topic.Transfer, { t: opts.transferId, k, n: opts.chunk, w: opts.scope }, { timeoutMs: Math.min(left, opts.requestTimeoutMs) });
    const raw = field<JsonValue[]>(reply, 's', Topic.Transfer, isArray);
    const total = field<number>(reply, 'total', Topic.Transfer, (x) => typeof x === 'number');
    const next = field<number | null>(reply, 'k', Topic.Transfer, (x) => x === null || typeof x === 'number');
    install(raw.map((x) => asSnapshot(x, Topic.Transfer)));
    sessions += raw.length;
    chunks++;
    k = next;
    if (clock.now() - lastLog >= 1000 || k === null) {
      lastLog = clock.now();
      log.info({ peer: peer.route, received: sessions, total }, `state transfer: ${sessions}/${total} sessions from ${peer.route}`);
    }
  }
  return { sessions, chunks };
}
