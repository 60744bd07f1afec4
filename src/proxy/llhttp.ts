import { createRequire } from 'node:module';

/**
 * Node's own llhttp binding (the `HTTPParser` that node:http runs), used by
 * the engine for request heads from clients and for responses from members.
 * Strict mode (no lenient flags), so the engine accepts exactly what Node's
 * HTTP server accepts — no hand-written parser to keep equal to it.
 *
 * The binding lives in Node's `_http_common` module (public since Node 0.x,
 * undocumented); its callback slots are numbered (kOnHeadersComplete …).
 * Everything the engine needs of it is typed here, in one place.
 */
interface HTTPParserClass {
  new (): NativeParser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kLenientNone: number;
}

/** The native parser object. `execute` returns the bytes parsed, or an Error with `code` (HPE_…) and `bytesParsed`. */
export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | ParseError;
  finish(): undefined | ParseError;
  free(): void;
  close(): void;
  [slot: number]: unknown;
}

export interface ParseError extends Error {
  readonly code: string;
  readonly bytesParsed: number;
  readonly reason?: string;
}

const common = createRequire(import.meta.url)('_http_common') as { HTTPParser: HTTPParserClass; methods: string[] };
export const HTTPParser = common.HTTPParser;
/** Method names by the index llhttp reports. */
export const METHODS: readonly string[] = common.methods;

/** Called with (versionMajor, versionMinor, headers, method, url, statusCode, statusMessage, upgrade, shouldKeepAlive). */
export type HeadersComplete = (
  versionMajor: number,
  versionMinor: number,
  headers: string[] | undefined,
  method: number | undefined,
  url: string | undefined,
  statusCode: number | undefined,
  statusMessage: string | undefined,
  upgrade: boolean,
  shouldKeepAlive: boolean,
) => number | void;

export interface ParserCallbacks {
  onMessageBegin?: () => void;
  /** Headers (or trailers) flushed before headers-complete: more than 32 pairs, or a head split across reads. */
  onHeaders: (headers: string[], url: string) => void;
  /** Return 1 to skip the body (HEAD, 1xx), 0 otherwise. */
  onHeadersComplete: HeadersComplete;
  onBody: (chunk: Buffer) => void;
  onMessageComplete: () => void;
}

/** A strict llhttp parser of `type` (HTTPParser.REQUEST / RESPONSE) calling `cb`. */
export function createParser(type: number, maxHeaderSize: number, cb: ParserCallbacks): NativeParser {
  const p = new HTTPParser();
  p.initialize(type, {}, maxHeaderSize, HTTPParser.kLenientNone);
  // A slot left empty is skipped by the binding (no call into JavaScript for it).
  if (cb.onMessageBegin !== undefined) p[HTTPParser.kOnMessageBegin] = cb.onMessageBegin;
  p[HTTPParser.kOnHeaders] = cb.onHeaders;
  p[HTTPParser.kOnHeadersComplete] = cb.onHeadersComplete;
  p[HTTPParser.kOnBody] = cb.onBody;
  p[HTTPParser.kOnMessageComplete] = cb.onMessageComplete;
  return p;
}
