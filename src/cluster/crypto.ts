/**
 * Keys and authenticated encryption for the cluster channel and the
 * multicast heartbeats. Everything is derived from the cluster secret with
 * HKDF-SHA256; frames and datagrams are sealed with AES-256-GCM.
 *
 * Frame body on the wire (after the length header):
 *   `[u64 BE sequence][ciphertext][16-byte GCM tag]`
 * The nonce is `[4 zero bytes][u64 sequence]` under a per-direction,
 * per-connection key, so a nonce never repeats under one key. The receiver
 * accepts only the next sequence number it expects: a replayed, dropped or
 * reordered frame fails.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { CohortError } from '../errors.js';
import { systemRandom, type Random } from '../util/clock.js';

export const TAG_BYTES = 16;
export const SEQ_BYTES = 8;
/** Shortest sealed frame body: sequence + tag (empty plaintext). */
export const SEALED_OVERHEAD = SEQ_BYTES + TAG_BYTES;
/** Minimum secret length, bytes. */
export const MIN_SECRET_BYTES = 16;

const SALT = Buffer.from('cohort-cluster-v1');

export class AuthError extends CohortError {
  constructor(code: 'COHORT_FRAME_AUTH' | 'COHORT_FRAME_REPLAY' | 'COHORT_FRAME_MALFORMED' | 'COHORT_DATAGRAM_AUTH', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AuthError';
  }
}

/** Long-lived keys derived once from the secret (never per frame). */
export interface ClusterKeys {
  /** HMAC key for the handshake proofs. */
  readonly handshake: Buffer;
  /** Input keying material for per-connection frame keys. */
  readonly frameMaster: Buffer;
  /** AEAD key for multicast heartbeats. */
  readonly datagram: KeyObject;
}

function hkdf(ikm: Buffer, salt: Buffer, info: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(info), length));
}

/** Derives the cluster keys. Throws COHORT_SECRET_WEAK if the secret is shorter than 16 bytes. */
export function deriveClusterKeys(secret: string | Uint8Array): ClusterKeys {
  const ikm = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (ikm.length < MIN_SECRET_BYTES) {
    throw new CohortError('COHORT_SECRET_WEAK', `the cluster secret must be at least ${MIN_SECRET_BYTES} bytes (got ${ikm.length}); generate one with: openssl rand -base64 32`);
  }
  return {
    handshake: hkdf(ikm, SALT, 'cohort/handshake'),
    frameMaster: hkdf(ikm, SALT, 'cohort/frame'),
    datagram: createSecretKey(hkdf(ikm, SALT, 'cohort/datagram')),
  };
}

/** HMAC-SHA256 helper used by the handshake. */
export function hmac(key: Buffer, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Per-connection directional keys, from the master and both handshake nonces. */
export function deriveSessionKeys(keys: ClusterKeys, clientNonce: Buffer, serverNonce: Buffer): { clientToServer: KeyObject; serverToClient: KeyObject } {
  const salt = Buffer.concat([clientNonce, serverNonce]);
  return {
    clientToServer: createSecretKey(hkdf(keys.frameMaster, salt, 'cohort/c2s')),
    serverToClient: createSecretKey(hkdf(keys.frameMaster, salt, 'cohort/s2c')),
  };
}

function frameIv(seq: bigint): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64BE(seq, 4);
  return iv;
}

/** Seals outgoing frames of one direction of one connection. */
export class FrameSealer {
  private seq = 0n;
  constructor(private readonly key: KeyObject) {}

  seal(plain: Uint8Array): Buffer {
    const seq = this.seq++;
    const head = Buffer.allocUnsafe(SEQ_BYTES);
    head.writeBigUInt64BE(seq, 0);
    const c = createCipheriv('aes-256-gcm', this.key, frameIv(seq));
    c.setAAD(head);
    const body = c.update(plain);
    c.final();
    return Buffer.concat([head, body, c.getAuthTag()]);
  }
}

/** Opens incoming frames of one direction of one connection; enforces strict sequence order. */
export class FrameOpener {
  private expected = 0n;
  constructor(private readonly key: KeyObject) {}

  open(body: Uint8Array): Buffer {
    if (body.length < SEALED_OVERHEAD) {
      throw new AuthError('COHORT_FRAME_MALFORMED', `sealed frame of ${body.length} bytes is shorter than ${SEALED_OVERHEAD}`);
    }
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const seq = buf.readBigUInt64BE(0);
    if (seq !== this.expected) {
      throw new AuthError('COHORT_FRAME_REPLAY', `frame sequence ${seq} where ${this.expected} was expected (replayed, dropped or reordered)`);
    }
    const d = createDecipheriv('aes-256-gcm', this.key, frameIv(seq));
    d.setAAD(buf.subarray(0, SEQ_BYTES));
    d.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
    const plain = d.update(buf.subarray(SEQ_BYTES, buf.length - TAG_BYTES));
    try {
      d.final();
    } catch (err) {
      throw new AuthError('COHORT_FRAME_AUTH', 'frame failed authentication', { cause: err });
    }
    this.expected++;
    return plain;
  }
}

/**
 * Seals a datagram: `[12-byte random nonce][ciphertext][tag]`, with `aad`
 * (the clear header, e.g. the cluster name) authenticated too.
 */
export function sealDatagram(key: KeyObject, aad: Uint8Array, plain: Uint8Array, random: Pick<Random, 'bytes'> = systemRandom): Buffer {
  const iv = random.bytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const body = c.update(plain);
  c.final();
  return Buffer.concat([iv, body, c.getAuthTag()]);
}

export function openDatagram(key: KeyObject, aad: Uint8Array, sealed: Uint8Array): Buffer {
  if (sealed.length < 12 + TAG_BYTES) throw new AuthError('COHORT_DATAGRAM_AUTH', 'datagram too short');
  const buf = Buffer.isBuffer(sealed) ? sealed : Buffer.from(sealed);
  const d = createDecipheriv('aes-256-gcm', key, buf.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
  const plain = d.update(buf.subarray(12, buf.length - TAG_BYTES));
  try {
    d.final();
  } catch (err) {
    throw new AuthError('COHORT_DATAGRAM_AUTH', 'datagram failed authentication', { cause: err });
  }
  return plain;
}
