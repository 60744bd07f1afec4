/**
 * The serving side of pulls: copies by id (take-over, gap repair,
 * anti-entropy), state-transfer pages and digest pages. Reads the local
 * table only; cursors freeze the id list at the first page.
 */
import type { JsonValue, MemberView } from '../../cluster/types.js';
import { tableDigest, type DigestEntry } from './anti-entropy.js';
import type { Holders } from './holders.js';
import type { SessionTable } from '../model/session-table.js';
import { CursorRegistry } from './state-transfer.js';
import { digestReplyCodec, field, getRequestCodec, Topic } from './wire.js';

/** Largest pages served, whatever the requester asks. */
export const MAX_TRANSFER_PAGE = 10_000;
export const MAX_DIGEST_PAGE = 50_000;

export class PullServer {
  private readonly cursors: CursorRegistry<string>;
  private readonly digestCursors: CursorRegistry<DigestEntry>;

  constructor(
    private readonly table: SessionTable,
    private readonly holders: Holders,
    idleMs: number,
  ) {
    this.cursors = new CursorRegistry(idleMs);
    this.digestCursors = new CursorRegistry(idleMs);
  }

  /** {i: base[]} → {s: snapshots, t: [base, version][] tombstones} */
  get(payload: JsonValue): JsonValue {
    const want = getRequestCodec.decode(payload);
    const s: JsonValue[] = [];
    const t: JsonValue[] = [];
    for (const base of want) {
      const x = this.table.get(base);
      if (x) s.push(x.snapshot() as unknown as JsonValue);
      const tomb = this.table.tombstone(base);
      if (tomb) t.push([base, tomb.version]);
    }
    return { s, t };
  }

  /** {t, k, n, w} → {s, k: next|null, total} */
  transfer(from: MemberView, payload: JsonValue, now: number): JsonValue {
    const t = field<string>(payload, 't', Topic.Transfer, (x) => typeof x === 'string');
    const k = field<number>(payload, 'k', Topic.Transfer, (x) => typeof x === 'number' && x >= 0);
    const n = field<number>(payload, 'n', Topic.Transfer, (x) => typeof x === 'number' && x > 0);
    const w = field<string>(payload, 'w', Topic.Transfer, (x) => x === 'all' || x === 'placed');
    const page = this.cursors.page(`${from.id}/${t}`, k, Math.min(n, MAX_TRANSFER_PAGE), now, () => {
      if (w === 'all') return this.table.bases();
      const out: string[] = [];
      for (const s of this.table.values()) if (this.holders.placesOn(s.base, s.route, from.route)) out.push(s.base);
      return out;
    });
    const s: JsonValue[] = [];
    for (const base of page.items) {
      const x = this.table.get(base);
      if (x) s.push(x.snapshot() as unknown as JsonValue);
    }
    return { s, k: page.next, total: page.total };
  }

  /** {t, k, n} → {e: DigestEntry[] ([base, version, tomb, route, tag]), k: next|null} */
  digest(from: MemberView, payload: JsonValue, now: number): JsonValue {
    const t = field<string>(payload, 't', Topic.Digest, (x) => typeof x === 'string');
    const k = field<number>(payload, 'k', Topic.Digest, (x) => typeof x === 'number' && x >= 0);
    const n = field<number>(payload, 'n', Topic.Digest, (x) => typeof x === 'number' && x > 0);
    const page = this.digestCursors.page(`${from.id}/${t}`, k, Math.min(n, MAX_DIGEST_PAGE), now, () => tableDigest(this.table));
    return digestReplyCodec.encode({ e: page.items, k: page.next });
  }

  /** Forgets cursors idle for longer than the configured time. */
  purge(now: number): void {
    this.cursors.purge(now);
    this.digestCursors.purge(now);
  }
}
