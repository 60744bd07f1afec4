/**
 * One session: attributes with change tracking, a version and the metadata
 * that replicates (route, max inactive interval, creation time). The owner
 * mutates it through `attributes`; replicas apply deltas and snapshots to it
 * directly (no tracking). Pure: no clock, no I/O — times are passed in.
 */
import { SessionError, SessionErrorCode } from '../errors.js';
import { formatSessionId } from './session-id.js';
import { AttributeTracker, type Attributes, type TrackingSink } from './tracking.js';
import { jsonSize } from './json-value.js';
import type { SessionDelta, SessionSnapshot } from '../replication/wire.js';
import type { JsonValue } from '../../cluster/types.js';

/** Marks an attribute that did not exist, in the undo log. */
const ABSENT: unique symbol = Symbol('absent');

export interface SessionLimits {
  /** Largest JSON size of one attribute value (characters). */
  readonly maxAttributeBytes: number;
  /** Largest JSON size of all attributes together (characters), checked at commit. */
  readonly maxSessionBytes: number;
}

export class Session implements TrackingSink {
  /** Random part of the id: the session's identity in the cluster. */
  base: string;
  /** Route of the owning node (id suffix). */
  route: string;
  /** Monotonic per session; the owner increments it at every commit that changes something. */
  version: number;
  /** Wall-clock creation time, ms since epoch (informative: never compared across nodes). */
  readonly createdAt: number;
  /** ms without access after which the session expires. */
  maxInactiveMs: number;
  /** Local monotonic ms of the last access (owner) or last news from the owner (replica). */
  lastAccess: number;
  /** Local monotonic ms at which the replicas were last told of an access. */
  accessNotifiedAt: number;
  /** Approximate JSON size of the attributes at the last local commit (0 on replicas). */
  bytes = 0;
  /** See attributeSizes(); undefined until the first change, and again whenever the attributes are replaced. */
  private sizes: Map<string, number> | undefined;
  private totalBytes = 0;
  /** Write tag of this version: which write produced it (convergence.ts); '' before the first commit or from an untagged peer. */
  tag = '';

  private attrs: Attributes;
  private tracker: AttributeTracker | undefined;
  private readonly dirty = new Set<string>();
  private readonly removedKeys = new Set<string>();
  private metaDirty = false;
  private prevBase: string | undefined;
  private invalid = false;
  /**
   * Undo log for {@link revert}: each top-level attribute's committed value (a copy; ABSENT when it did not
   * exist) taken just before its first change since the last commit, and the committed max inactive
   * interval. Kept only for stored sessions (a new one has no stored copy to go back to).
   */
  private undo: Map<string, JsonValue | typeof ABSENT> | undefined;
  private undoMaxInactive: number | undefined;
  /** Keep the undo log (Cohort's req.session turns it on: its `reload()` needs it; the Store's writes do not pay for it). */
  keepUndo = false;

  constructor(
    init: { base: string; route: string; version: number; createdAt: number; maxInactiveMs: number; attrs?: Attributes; now: number },
    readonly limits: SessionLimits,
  ) {
    this.base = init.base;
    this.route = init.route;
    this.version = init.version;
    this.createdAt = init.createdAt;
    this.maxInactiveMs = init.maxInactiveMs;
    this.attrs = init.attrs ?? {};
    this.lastAccess = init.now;
    this.accessNotifiedAt = init.now;
  }

  static fromSnapshot(s: SessionSnapshot, limits: SessionLimits, now: number): Session {
    const x = new Session({ base: s.i, route: s.r, version: s.v, createdAt: s.c, maxInactiveMs: s.m, attrs: s.a, now }, limits);
    x.tag = s.t ?? '';
    return x;
  }

  get maxAttributeBytes(): number {
    return this.limits.maxAttributeBytes;
  }

  /** The full id, `<base>.<route>`. */
  get id(): string {
    return formatSessionId(this.base, this.route);
  }

  /** Never committed yet (version 0). */
  get isNew(): boolean {
    return this.version === 0;
  }

  get invalidated(): boolean {
    return this.invalid;
  }

  /** The tracked attribute map: read, assign, mutate in place. */
  get attributes(): Attributes {
    this.tracker ??= new AttributeTracker(this.attrs, this);
    return this.tracker.proxy;
  }

  /** The plain attribute data (no tracking). Do not mutate. */
  get rawAttributes(): Readonly<Attributes> {
    return this.attrs;
  }

  /** Names of attributes changed since the last commit. */
  get dirtyKeys(): readonly string[] {
    return [...this.dirty, ...this.removedKeys];
  }

  get hasChanges(): boolean {
    return this.dirty.size > 0 || this.removedKeys.size > 0 || this.metaDirty || this.version === 0;
  }

  /** Something was set, removed or saved explicitly (a new session with this is worth storing). */
  get hasStoredChanges(): boolean {
    return this.dirty.size > 0 || this.removedKeys.size > 0 || this.metaDirty;
  }

  // TrackingSink
  willChange(key: string): void {
    if (!this.keepUndo || this.version === 0) return;
    this.undo ??= new Map();
    if (this.undo.has(key)) return;
    this.undo.set(key, Object.hasOwn(this.attrs, key) ? structuredClone(this.attrs[key]!) : ABSENT);
  }
  changed(key: string): void {
    this.removedKeys.delete(key);
    this.dirty.add(key);
  }
  removed(key: string): void {
    if (this.sizes) {
      this.totalBytes -= this.sizes.get(key) ?? 0;
      this.sizes.delete(key);
    }
    this.dirty.delete(key);
    this.removedKeys.add(key);
  }
  assertFits(key: string, added: number, replaced: number, whole: boolean): void {
    const sizes = this.attributeSizes();
    const before = sizes.get(key) ?? 0;
    const after = whole ? key.length + 4 + added : Math.max(0, before - replaced) + added;
    const total = this.totalBytes - before + after;
    if (total > this.limits.maxSessionBytes) {
      throw new SessionError(SessionErrorCode.TooLarge, `session attribute ${key}: this change makes the session ${total} bytes of JSON, over the ${this.limits.maxSessionBytes}-byte limit (nothing was changed)`);
    }
    sizes.set(key, after);
    this.totalBytes = total;
  }

  /** Per top-level attribute JSON sizes (key included), computed once per attribute set and kept up to date by assertFits. */
  private attributeSizes(): Map<string, number> {
    if (this.sizes) return this.sizes;
    const sizes = new Map<string, number>();
    let total = 0;
    for (const k of Object.keys(this.attrs)) {
      const n = k.length + 4 + jsonSize(this.attrs[k]!);
      sizes.set(k, n);
      total += n;
    }
    this.sizes = sizes;
    this.totalBytes = total;
    return sizes;
  }

  assertWritable(): void {
    if (this.invalid) throw new SessionError(SessionErrorCode.Invalidated, `session ${this.base.slice(0, 6)}… was invalidated`);
  }

  setMaxInactive(ms: number): void {
    this.assertWritable();
    if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`maxInactiveMs must be a positive number of ms, got ${ms}`);
    if (ms !== this.maxInactiveMs) {
      if (this.keepUndo && this.version > 0 && this.undoMaxInactive === undefined) this.undoMaxInactive = this.maxInactiveMs;
      this.maxInactiveMs = ms;
      this.metaDirty = true;
    }
  }

  /** Take-over: this node's route becomes the owner. Replicated at the next commit. */
  setRoute(route: string): void {
    if (route !== this.route) {
      this.route = route;
      this.metaDirty = true;
    }
  }

  /** Id regeneration (login): a new base, same attributes. Replicated at the next commit. */
  changeBase(newBase: string): void {
    this.assertWritable();
    if (this.version > 0 && this.prevBase === undefined) this.prevBase = this.base;
    this.base = newBase;
    this.metaDirty = true;
  }

  /** The base this session had before {@link changeBase}, until the next commit. */
  get previousBase(): string | undefined {
    return this.prevBase;
  }

  markInvalid(): void {
    this.invalid = true;
  }

  /** Forces a commit to produce a delta even without changes (express-session `save()`). */
  markMetaDirty(): void {
    this.metaDirty = true;
  }

  /**
   * Ends a unit of work: returns the delta that brings a replica at
   * `version` to the new version, and increments the version. Undefined when
   * nothing changed. Throws COHORT_SESSION_TOO_LARGE if the session outgrew its limit.
   * `tag` names the new version's write (convergence.ts); without it the delta is untagged.
   */
  takeDelta(tag?: string): SessionDelta | undefined {
    if (!this.hasChanges) return undefined;
    let size = 0;
    for (const k of Object.keys(this.attrs)) size += k.length + 4 + jsonSize(this.attrs[k]!);
    if (size > this.limits.maxSessionBytes) {
      throw new SessionError(SessionErrorCode.TooLarge, `session ${this.base.slice(0, 6)}… is ${size} bytes of JSON, over the ${this.limits.maxSessionBytes}-byte limit`);
    }
    this.bytes = size;
    // the running estimate (nested deletes are not subtracted) restarts from the exact figure
    this.sizes = undefined;
    const b = this.version;
    const d: { -readonly [K in keyof SessionDelta]: SessionDelta[K] } = { i: this.base, r: this.route, b, v: b + 1 };
    if (b === 0 || this.metaDirty) {
      d.m = this.maxInactiveMs;
      d.c = this.createdAt;
    }
    if (b === 0) {
      d.s = { ...this.attrs };
    } else if (this.dirty.size > 0) {
      const s: Attributes = {};
      for (const k of this.dirty) if (Object.hasOwn(this.attrs, k)) s[k] = this.attrs[k]!;
      d.s = s;
    }
    if (b !== 0 && this.removedKeys.size > 0) d.d = [...this.removedKeys];
    if (this.prevBase !== undefined) d.p = this.prevBase;
    if (tag !== undefined) {
      if (b > 0 && this.tag !== '') d.h = this.tag;
      d.t = tag;
    }
    this.tag = tag ?? '';
    this.dirty.clear();
    this.removedKeys.clear();
    this.metaDirty = false;
    this.prevBase = undefined;
    this.undo = undefined;
    this.undoMaxInactive = undefined;
    this.version = b + 1;
    return d;
  }

  /**
   * Discards the attribute and lifetime changes made since the last commit (express-session's
   * `reload()`): the attributes are the committed ones again, nothing of them is dirty. A take-over
   * (route) or an explicit save stays pending. No-op on a session never committed.
   */
  revert(): void {
    if (this.undo) {
      for (const [k, v] of this.undo) {
        if (v === ABSENT) delete this.attrs[k];
        else this.attrs[k] = v;
      }
      this.undo = undefined;
      this.sizes = undefined;
      this.tracker = undefined;
    }
    if (this.undoMaxInactive !== undefined) this.maxInactiveMs = this.undoMaxInactive;
    this.undoMaxInactive = undefined;
    this.dirty.clear();
    this.removedKeys.clear();
  }

  /** Full copy for a replica. Attribute values are shared, not copied: serialize before mutating. */
  snapshot(): SessionSnapshot {
    if (this.tag === '') return { i: this.base, r: this.route, v: this.version, c: this.createdAt, m: this.maxInactiveMs, a: this.attrs };
    return { i: this.base, r: this.route, v: this.version, c: this.createdAt, m: this.maxInactiveMs, a: this.attrs, t: this.tag };
  }

  /**
   * Replica side: applies a delta whose base version equals this version
   * (the caller checked ordering with {@link classifyDelta}).
   */
  applyDelta(d: SessionDelta): string[] {
    const changed: string[] = [];
    if (d.b === 0 && d.s) {
      this.attrs = {};
      this.tracker = undefined;
    }
    this.sizes = undefined;
    if (d.s) {
      for (const k of Object.keys(d.s)) {
        this.attrs[k] = d.s[k]!;
        changed.push(k);
      }
    }
    if (d.d) {
      for (const k of d.d) {
        delete this.attrs[k];
        changed.push(k);
      }
    }
    if (d.m !== undefined) this.maxInactiveMs = d.m;
    this.undo = undefined;
    this.undoMaxInactive = undefined;
    this.route = d.r;
    this.base = d.i;
    this.version = d.v;
    this.tag = d.t ?? '';
    return changed;
  }

  /** Replica side: replaces everything with a newer full copy. */
  applySnapshot(s: SessionSnapshot): void {
    this.attrs = s.a;
    this.undo = undefined;
    this.undoMaxInactive = undefined;
    this.tracker = undefined;
    this.sizes = undefined;
    this.route = s.r;
    this.version = s.v;
    this.maxInactiveMs = s.m;
    this.tag = s.t ?? '';
  }
}
