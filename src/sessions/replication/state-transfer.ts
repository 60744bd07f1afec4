/**
 * State transfer: a joining node pulls sessions from peers in chunks with a
 * cursor (`request()` per chunk, one chunk in flight, so memory stays bounded
 * by chunk size), logs progress, gives up on a peer after a timeout and moves
 * to the next. The serving side freezes the list of ids at the first request
 * (a cursor), so sessions created meanwhile reach the joiner as ordinary
 * deltas instead of shifting the pages.
 */
import type { ClusterChannel, JsonValue, MemberView } from '../../cluster/types.js';
import type { Clock } from '../../util/clock.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import type { SessionLogger } from '../contract.js';
import { asSnapshot, field, isArray, Topic } from './wire.js';
import type { ReplicaStore } from './replica-store.js';

interface Cursor {
  readonly ids: readonly string[];
  lastUsed: number;
}

/** Serving side: frozen id lists by transfer id, forgotten after `idleMs`. */

/** ms to wait before asking again a peer that does not serve transfers yet (it is starting too). */
const PEER_STARTING_RETRY_MS = 100;
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

/**
 * Progress of a running state transfer, summed over the peers pulled from:
 * sessions received so far and the total the peers announced (their frozen
 * id lists; 0 until the first page of a peer arrived). In all-to-all mode a
 * peer that failed is forgotten (its sessions stay installed) and the next
 * one counts from 0.
 */
export interface TransferProgress {
  readonly received: number;
  readonly total: number;
  readonly chunks: number;
}

/** Called after each page is installed; must not throw. */
export type TransferProgressListener = (p: TransferProgress) => void;

export interface TransferReport {
  readonly sessions: number;
  readonly chunks: number;
  readonly ms: number;
  readonly complete: boolean;
  /** Routes of the peers that served a complete pull. */
  readonly peers: readonly string[];
  /** Peers whose pull failed, with the reason (backup mode: their share is still missing). */
  readonly failed?: ReadonlyArray<{ readonly id: string; readonly route: string; readonly reason: string }>;
  /** Attempts made (transfer-retry.ts); 1 when the first one completed. */
  readonly attempts?: number;
  /** Why the node went ready without a complete transfer ('no peer left'), if it did. */
  readonly gaveUp?: string;
}

/**
 * Pulls from one peer until its cursor is exhausted, installing each chunk
 * into `store`. Throws on timeout or peer failure (the caller moves on).
 */
export async function pullFrom(
  channel: ClusterChannel,
  peer: MemberView,
  opts: TransferOptions,
  clock: Clock,
  deadline: number,
  store: Pick<ReplicaStore, 'installCopy'>,
  log: SessionLogger,
  onPage?: (received: number, total: number) => void,
): Promise<{ sessions: number; chunks: number }> {
  let k: number | null = 0;
  let sessions = 0;
  let chunks = 0;
  let lastLog = clock.now();
  while (k !== null) {
    const left = deadline - clock.now();
    if (left <= 0) throw new SessionError(SessionErrorCode.TransferTimeout, `state transfer from ${peer.route} did not finish within ${opts.timeoutMs} ms`);
    let reply: JsonValue;
    try {
      reply = await channel.request(peer.id, Topic.Transfer, { t: opts.transferId, k, n: opts.chunk, w: opts.scope }, { timeoutMs: Math.min(left, opts.requestTimeoutMs) });
    } catch (err) {
      // A peer that started at the same moment may not serve transfers yet: ask it again shortly.
      if (!/no handler for topic/.test(String(err)) || deadline - clock.now() < PEER_STARTING_RETRY_MS) throw err;
      await new Promise<void>((r) => clock.setTimeout(r, PEER_STARTING_RETRY_MS));
      continue;
    }
    const raw = field<JsonValue[]>(reply, 's', Topic.Transfer, isArray);
    const total = field<number>(reply, 'total', Topic.Transfer, (x) => typeof x === 'number');
    const next = field<number | null>(reply, 'k', Topic.Transfer, (x) => x === null || typeof x === 'number');
    // The whole page is validated before any of it is installed.
    for (const snap of raw.map((x) => asSnapshot(x, Topic.Transfer))) store.installCopy(snap);
    sessions += raw.length;
    chunks++;
    k = next;
    onPage?.(sessions, total);
    if (clock.now() - lastLog >= 1000 || k === null) {
      lastLog = clock.now();
      log.info({ peer: peer.route, received: sessions, total }, `state transfer: ${sessions}/${total} sessions from ${peer.route}`);
    }
  }
  return { sessions, chunks };
}

export interface TransferPlan {
  readonly mode: 'all-to-all' | 'backup';
  readonly chunk: number;
  readonly timeoutMs: number;
  readonly requestTimeoutMs: number;
  /** This node's route, for logs. */
  readonly node: string;
  /** A fresh transfer id per pull. */
  readonly nextId: () => string;
  /** Pull only from these members (backup mode retry: the peers whose share is missing). Default: every peer. */
  readonly only?: (m: MemberView) => boolean;
}

/**
 * The joining side. all-to-all: every peer holds everything, so pull all
 * from the oldest peer, trying the next on failure. backup: pull from every
 * peer in parallel what it places on this node.
 */
export async function transferState(
  channel: ClusterChannel,
  plan: TransferPlan,
  clock: Clock,
  store: Pick<ReplicaStore, 'installCopy'>,
  log: SessionLogger,
  onProgress?: TransferProgressListener,
): Promise<TransferReport> {
  const started = clock.now();
  const peers = channel.members().filter((m) => !plan.only || plan.only(m)).sort((a, b) => a.startTime - b.startTime);
  if (peers.length === 0) return { sessions: 0, chunks: 0, ms: 0, complete: true, peers: [] };
  const deadline = started + plan.timeoutMs;
  const base = { chunk: plan.chunk, timeoutMs: plan.timeoutMs, requestTimeoutMs: plan.requestTimeoutMs };
  let sessions = 0;
  let chunks = 0;
  let complete = false;
  const used: string[] = [];
  // Per peer (by id): sessions received and announced total, for onProgress.
  const progress = new Map<string, { received: number; total: number }>();
  let pages = 0;
  const track = (peer: MemberView) => (received: number, total: number): void => {
    progress.set(peer.id, { received, total });
    pages++;
    if (!onProgress) return;
    let r = 0;
    let t = 0;
    for (const p of progress.values()) {
      r += p.received;
      t += p.total;
    }
    onProgress({ received: r, total: t, chunks: pages });
  };
  const failed: Array<{ id: string; route: string; reason: string }> = [];
  log.info({ node: plan.node, peers: peers.map((p) => p.route), mode: plan.mode }, 'state transfer: starting');
  if (plan.mode === 'all-to-all') {
    for (const peer of peers) {
      try {
        const r = await pullFrom(channel, peer, { ...base, scope: 'all', transferId: plan.nextId() }, clock, deadline, store, log, track(peer));
        sessions += r.sessions;
        chunks += r.chunks;
        used.push(peer.route);
        complete = true;
        break;
      } catch (err) {
        progress.delete(peer.id);
        failed.push({ id: peer.id, route: peer.route, reason: String(err) });
        log.warn({ node: plan.node, peer: peer.route, err: String(err) }, 'state transfer from peer failed; trying the next');
        if (clock.now() >= deadline) break;
      }
    }
  } else {
    const rs = await Promise.allSettled(
      peers.map((peer) => pullFrom(channel, peer, { ...base, scope: 'placed', transferId: plan.nextId() }, clock, deadline, store, log, track(peer))),
    );
    complete = true;
    rs.forEach((r, i) => {
      if (r.status === 'fulfilled') {
        sessions += r.value.sessions;
        chunks += r.value.chunks;
        used.push(peers[i]!.route);
      } else {
        complete = false;
        failed.push({ id: peers[i]!.id, route: peers[i]!.route, reason: String(r.reason) });
        log.warn({ node: plan.node, peer: peers[i]!.route, err: String(r.reason) }, 'state transfer from peer failed');
      }
    });
  }
  const ms = clock.now() - started;
  if (!complete) {
    const err = new SessionError(SessionErrorCode.TransferTimeout, `state transfer incomplete after ${Math.round(ms)} ms (${sessions} sessions received)`);
    log.error({ node: plan.node, code: err.code, sessions, ms, failed: failed.map((f) => `${f.route}: ${f.reason}`) }, err.message);
  } else {
    log.info({ node: plan.node, sessions, chunks, ms }, `state transfer done: ${sessions} sessions in ${Math.round(ms)} ms`);
  }
  return { sessions, chunks, ms, complete, peers: used, failed };
}
