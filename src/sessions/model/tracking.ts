/**
 * Change tracking for session attributes. The attribute map is wrapped in a
 * deep Proxy: any write, at any depth, validates the written value (so an
 * unserializable value fails at the assignment line) and marks the top-level
 * attribute it belongs to as dirty. At the end of a request only the dirty
 * top-level attributes travel — `req.session.cart.items.push(x)` replicates
 * `cart`, nothing else, and no setAttribute call is needed (Tomcat's most
 * common complaint).
 *
 * Invariant: values stored under the root are plain JSON data owned by the
 * session (assigned values are deep-copied), so no object is reachable from
 * two places and every nested object has one path to its top-level key.
 */
import type { JsonValue } from '../../cluster/types.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import { cloneJson, jsonSize } from './json-value.js';

export type Attributes = { [key: string]: JsonValue };

/** What the tracker reports to its session. */
export interface TrackingSink {
  /** Top-level attribute `key` was set or changed in place. */
  changed(key: string): void;
  /** Top-level attribute `key` was removed. */
  removed(key: string): void;
  /** Throws if the session may no longer be modified (invalidated). */
  assertWritable(): void;
  /** Top-level attribute `key` is about to change (set, changed in place or removed): called before the change. */
  willChange(key: string): void;
  /** Largest JSON size of one assigned value, characters. */
  readonly maxAttributeBytes: number;
  /**
   * Throws (before anything changes) if top-level attribute `key` growing by `added` bytes while losing
   * `replaced` bytes would take the whole session over its size limit, so the error names the line
   * that did it. `whole`: `added` is the attribute's new size, not a growth.
   */
  assertFits(key: string, added: number, replaced: number, whole: boolean): void;
}

interface NodeInfo {
  readonly key: string;
  readonly path: string;
  /** The containers above this object, root attribute value first. */
  readonly ancestors: readonly object[];
}

/** Wraps an attribute map; `proxy` is what application code sees. */
export class AttributeTracker {
  readonly proxy: Attributes;
  private readonly proxies = new WeakMap<object, object>();
  private readonly targets = new WeakMap<object, object>();
  private readonly info = new WeakMap<object, NodeInfo>();

  constructor(
    readonly root: Attributes,
    private readonly sink: TrackingSink,
  ) {
    const self = this;
    this.proxy = new Proxy(root, {
      get(target, prop) {
        if (typeof prop !== 'string') return Reflect.get(target, prop);
        if (!Object.hasOwn(target, prop)) return undefined;
        const v = target[prop];
        return typeof v === 'object' && v !== null ? self.wrap(v, { key: prop, path: prop, ancestors: [] }) : v;
      },
      set(target, prop, value) {
        self.setTop(target, prop, value);
        return true;
      },
      defineProperty(target, prop, desc) {
        if (desc.get || desc.set) self.refuseAccessor(String(prop));
        self.setTop(target, prop, desc.value);
        return true;
      },
      deleteProperty(target, prop) {
        if (typeof prop === 'string' && Object.hasOwn(target, prop)) {
          sink.assertWritable();
          sink.willChange(prop);
          delete target[prop];
          sink.removed(prop);
        }
        return true;
      },
    });
  }

  /** The plain object behind a tracking proxy (identity for anything else). */
  readonly unwrap = (v: object): object => this.targets.get(v) ?? v;

  private refuseAccessor(path: string): never {
    throw new SessionError(SessionErrorCode.Unserializable, `session attribute ${path}: accessor properties are not JSON-compatible`);
  }

  private setTop(target: Attributes, prop: string | symbol, value: unknown): void {
    if (typeof prop !== 'string') {
      throw new SessionError(SessionErrorCode.Unserializable, `session attribute ${String(prop)}: symbol keys are not JSON-compatible`);
    }
    this.sink.assertWritable();
    this.sink.willChange(prop);
    if (value === undefined) {
      if (Object.hasOwn(target, prop)) {
        delete target[prop];
        this.sink.removed(prop);
      }
      return;
    }
    const c = cloneJson(value, { maxBytes: this.sink.maxAttributeBytes, path: prop, unwrap: this.unwrap });
    this.sink.assertFits(prop, c.bytes, 0, true);
    target[prop] = c.value;
    this.sink.changed(prop);
  }

  private wrap(obj: object, info: NodeInfo): object {
    const cached = this.proxies.get(obj);
    if (cached) return cached;
    this.info.set(obj, info);
    const self = this;
    const sink = this.sink;
    const p = new Proxy(obj, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof prop !== 'string' || typeof v !== 'object' || v === null || !Object.hasOwn(target, prop)) return v;
        const me = self.info.get(target)!;
        return self.wrap(v, { key: me.key, path: `${me.path}.${prop}`, ancestors: [...me.ancestors, target] });
      },
      set(target, prop, value) {
        self.setNested(target, prop, value);
        return true;
      },
      defineProperty(target, prop, desc) {
        if (desc.get || desc.set) self.refuseAccessor(`${self.info.get(target)!.path}.${String(prop)}`);
        self.setNested(target, prop, desc.value);
        return true;
      },
      deleteProperty(target, prop) {
        sink.assertWritable();
        sink.willChange(self.info.get(target)!.key);
        const ok = Reflect.deleteProperty(target, prop);
        sink.changed(self.info.get(target)!.key);
        return ok;
      },
      setPrototypeOf() {
        return false;
      },
    });
    this.proxies.set(obj, p);
    this.targets.set(p, obj);
    return p;
  }

  private setNested(target: object, prop: string | symbol, value: unknown): void {
    const me = this.info.get(target)!;
    if (typeof prop !== 'string') {
      throw new SessionError(SessionErrorCode.Unserializable, `session attribute ${me.path}: symbol keys are not JSON-compatible`);
    }
    this.sink.assertWritable();
    this.sink.willChange(me.key);
    const path = `${me.path}.${prop}`;
    if (Array.isArray(target) && prop === 'length') {
      (target as unknown[]).length = value as number;
      this.sink.changed(me.key);
      return;
    }
    if (value === undefined && !Array.isArray(target)) {
      delete (target as Record<string, unknown>)[prop];
      this.sink.changed(me.key);
      return;
    }
    const ancestors = new Set<object>(me.ancestors);
    ancestors.add(target);
    const c = cloneJson(value, { maxBytes: this.sink.maxAttributeBytes, path, ancestors, unwrap: this.unwrap });
    const had = Object.hasOwn(target, prop);
    const old = (target as Record<string, unknown>)[prop];
    const replaced = had && old !== undefined ? jsonSize(old as JsonValue) : 0;
    // a new property or element also costs its key (or comma)
    this.sink.assertFits(me.key, c.bytes + (had ? 0 : Array.isArray(target) ? 1 : prop.length + 4), replaced, false);
    (target as Record<string, unknown>)[prop] = c.value;
    this.sink.changed(me.key);
  }
}
