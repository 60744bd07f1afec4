/**
 * Length-prefixed frame codec for the cluster channel.
 *
 * Wire: `[u32 big-endian body length][body]`. The decoder is a push parser:
 * it never sees a socket, accepts input split at any byte boundary, and
 * rejects a frame whose header announces more than `maxFrameBytes` before
 * buffering a single byte of its body. After an error the decoder is poisoned
 * (the stream is no longer aligned) and every later push throws the same error.
 */
import { CohortError } from '../errors.js';

/** Bytes of the length header. */
export const FRAME_HEADER_BYTES = 4;
/** Default largest accepted frame body: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Frame errors. Codes are stable; see docs/cluster.md. */
export class FrameError extends CohortError {
  constructor(code: 'COHORT_FRAME_TOO_LARGE' | 'COHORT_FRAME_DECODER_FAILED', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'FrameError';
  }
}

/** The header of a frame whose body is `bodyBytes` long (the one place the header is written). */
export function encodeFrameHeader(bodyBytes: number): Buffer {
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  head.writeUInt32BE(bodyBytes, 0);
  return head;
}

/** Encodes one frame: header + body in one buffer. */
export function encodeFrame(body: Uint8Array): Buffer {
  return Buffer.concat([encodeFrameHeader(body.length), body], FRAME_HEADER_BYTES + body.length);
}

export interface FrameDecoderOptions {
  /** Largest accepted body, bytes. Default {@link DEFAULT_MAX_FRAME_BYTES}. */
  readonly maxFrameBytes?: number;
}

export class FrameDecoder {
  readonly maxFrameBytes: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Body length of the frame being read, or -1 while reading a header. */
  private need = -1;
  private failure: FrameError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(this.maxFrameBytes) || this.maxFrameBytes < 1 || this.maxFrameBytes > 0xffffffff) {
      throw new RangeError(`maxFrameBytes must be an integer in [1, 2^32-1], got ${this.maxFrameBytes}`);
    }
  }

  /** Bytes held while waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Feeds bytes; returns the complete frame bodies they finish, in order.
   * Throws {@link FrameError} on an oversized header (or if already failed).
   */
  push(chunk: Uint8Array): Buffer[] {
    if (this.failure) {
      throw new FrameError('COHORT_FRAME_DECODER_FAILED', 'frame decoder already failed; the stream must be closed', { cause: this.failure });
    }
    const out: Buffer[] = [];
    if (chunk.length > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const len = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (len > this.maxFrameBytes) {
          this.failure = new FrameError('COHORT_FRAME_TOO_LARGE', `frame of ${len} bytes exceeds the limit of ${this.maxFrameBytes} bytes`);
          this.chunks = [];
          this.buffered = 0;
          throw this.failure;
        }
        this.need = len;
      }
      if (this.buffered < this.need) break;
      out.push(this.take(this.need));
      this.need = -1;
    }
    return out;
  }

  /** Removes and returns exactly `n` buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first && first.length >= n) {
      const part = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return part;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}
