/**
 * Validation of session attribute values. Attributes must be JSON-compatible
 * so that every replica (and Redis) holds exactly what the owner holds: a
 * value that JSON would drop or alter silently is refused at assignment.
 */
import type { JsonValue } from '../../cluster/types.js';
import { SessionError, SessionErrorCode } from '../errors.js';

export interface CloneOptions {
  /** Refuse values whose JSON text is longer than this (characters, ≈ bytes for ASCII). */
  readonly maxBytes: number;
  /** Attribute path used in error messages, e.g. `cart.items[3]`. */
  readonly path: string;
  /** Objects the value must not contain (the containers it is assigned into): a cycle. */
  readonly ancestors?: ReadonlySet<object>;
  /** Maps a tracking proxy back to its plain target. */
  readonly unwrap?: (v: object) => object;
}

export interface Cloned {
  readonly value: JsonValue;
  /** Approximate JSON length in characters. */
  readonly bytes: number;
}

function fail(path: string, what: string): never {
  throw new SessionError(
    SessionErrorCode.Unserializable,
    `session attribute ${path}: ${what} is not JSON-compatible; store plain objects, arrays, strings, finite numbers, booleans or null`,
  );
}

/**
 * Deep-copies `value` into plain JSON data, refusing anything that is not
 * JSON-compatible, and measures it. The copy means later changes to the
 * caller's object cannot bypass change tracking.
 * `undefined` as an object property is dropped (as JSON does); elsewhere it is refused.
 * A value with a `toJSON()` method (a Date) is copied as what it returns, as JSON.stringify does.
 */
export function cloneJson(value: unknown, opts: CloneOptions): Cloned {
  const stack = new Set<object>(opts.ancestors ?? []);
  let bytes = 0;
  const unwrap = opts.unwrap ?? ((v: object) => v);

  const visit = (v: unknown, path: string): JsonValue => {
    switch (typeof v) {
      case 'string':
        bytes += v.length + 2;
        break;
      case 'number':
        if (!Number.isFinite(v)) fail(path, `the number ${v}`);
        bytes += 8;
        break;
      case 'boolean':
        bytes += 5;
        break;
      case 'undefined':
        fail(path, 'undefined');
      // eslint-disable-next-line no-fallthrough
      case 'function':
        fail(path, 'a function');
      // eslint-disable-next-line no-fallthrough
      case 'symbol':
        fail(path, 'a symbol');
      // eslint-disable-next-line no-fallthrough
      case 'bigint':
        fail(path, 'a BigInt');
      // eslint-disable-next-line no-fallthrough
      case 'object': {
        if (v === null) {
          bytes += 4;
          return null;
        }
        const o = unwrap(v as object);
        // As JSON.stringify (and so every JSON store express-session uses): a value with toJSON() is stored
        // as what it returns — a Date becomes its ISO string (an invalid Date null).
        const toJSON = (o as { toJSON?: unknown }).toJSON;
        if (typeof toJSON === 'function') return visit(toJSON.call(o, path.slice(path.lastIndexOf('.') + 1)), path);
        if (stack.has(o)) fail(path, 'a cyclic reference');
        stack.add(o);
        let out: JsonValue;
        if (Array.isArray(o)) {
          const arr: JsonValue[] = new Array(o.length);
          bytes += 2;
          for (let i = 0; i < o.length; i++) {
            arr[i] = visit(o[i], `${path}[${i}]`);
            bytes += 1;
          }
          out = arr;
        } else {
          const proto = Object.getPrototypeOf(o);
          if (proto !== Object.prototype && proto !== null) {
            const name = (o as { constructor?: { name?: string } }).constructor?.name ?? 'object';
            fail(path, `a ${name} instance`);
          }
          const rec: { [k: string]: JsonValue } = {};
          bytes += 2;
          for (const k of Object.keys(o)) {
            const x = (o as Record<string, unknown>)[k];
            if (x === undefined) continue;
            rec[k] = visit(x, `${path}.${k}`);
            bytes += k.length + 4;
          }
          out = rec;
        }
        stack.delete(o);
        if (bytes > opts.maxBytes) tooLarge(opts.path, bytes, opts.maxBytes);
        return out;
      }
    }
    if (bytes > opts.maxBytes) tooLarge(opts.path, bytes, opts.maxBytes);
    return v as JsonValue;
  };
  const out = visit(value, opts.path);
  return { value: out, bytes };
}

function tooLarge(path: string, bytes: number, max: number): never {
  throw new SessionError(SessionErrorCode.TooLarge, `session attribute ${path}: value exceeds the size limit (more than ${bytes} > ${max} bytes)`);
}

/** Approximate JSON size of trusted JSON data (characters). */
export function jsonSize(v: JsonValue): number {
  if (v === null) return 4;
  switch (typeof v) {
    case 'string':
      return v.length + 2;
    case 'number':
      return 8;
    case 'boolean':
      return 5;
  }
  let n = 2;
  if (Array.isArray(v)) {
    for (const x of v) n += jsonSize(x) + 1;
  } else {
    for (const k of Object.keys(v)) n += k.length + 4 + jsonSize((v as Record<string, JsonValue>)[k]!);
  }
  return n;
}
