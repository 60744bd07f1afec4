/**
 * The schema-checked message envelope carried inside each sealed frame:
 * UTF-8 JSON, validated with zod. Never general object deserialization:
 * payloads are plain JSON values and nothing is revived into classes.
 */
import { z } from 'zod';
import { CohortError } from '../errors.js';
import type { JsonValue, MemberInfo } from './types.js';

const MAX_TOPIC = 256;
const str = z.string().max(1024);
const id = z.number().int().nonnegative();
const topic = z.string().min(1).max(MAX_TOPIC);
const json = z.unknown() as unknown as z.ZodType<JsonValue>;

export const memberInfoSchema = z
  .object({
    id: z.string().min(1).max(128),
    route: z.string().min(1).max(128),
    incarnation: z.number().int().nonnegative(),
    clusterName: z.string().min(1).max(128),
    channelAddress: z.object({ host: z.string().min(1).max(255), port: z.number().int().min(1).max(65535) }).strict(),
    startTime: z.number(),
    meta: z.record(z.string().max(128), str),
  })
  .strict();

export const envelopeSchema = z.discriminatedUnion('t', [
  /** Identity exchange, first message in each direction after the handshake. */
  z.object({ t: z.literal('hello'), member: memberInfoSchema }).strict(),
  /** Identity refused (route conflict); the sender closes afterwards. */
  z.object({ t: z.literal('refuse'), code: str, message: str }).strict(),
  /** A one-way message; `ack` says when to acknowledge: none, 'received' or 'applied'. */
  z.object({ t: z.literal('msg'), id, topic, ack: z.enum(['none', 'received', 'applied']), p: json }).strict(),
  z.object({ t: z.literal('ack'), id, ok: z.boolean(), err: str.optional() }).strict(),
  z.object({ t: z.literal('req'), id, topic, p: json }).strict(),
  z.object({ t: z.literal('res'), id, ok: z.boolean(), p: json.optional(), err: str.optional() }).strict(),
  /** Heartbeat with the sender's incarnation. */
  z.object({ t: z.literal('hb'), inc: id }).strict(),
  /** Meta change of the sender. */
  z.object({ t: z.literal('meta'), inc: id, meta: z.record(z.string().max(128), str) }).strict(),
  /** Graceful departure. */
  z.object({ t: z.literal('leave') }).strict(),
]);

export type Envelope = z.infer<typeof envelopeSchema>;

export class EnvelopeError extends CohortError {
  constructor(code: 'COHORT_PAYLOAD_MALFORMED' | 'COHORT_PAYLOAD_INVALID', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'EnvelopeError';
  }
}

export function encodeEnvelope(env: Envelope): Buffer {
  return Buffer.from(JSON.stringify(env), 'utf8');
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'));
  } catch (err) {
    throw new EnvelopeError('COHORT_PAYLOAD_MALFORMED', 'message is not valid JSON', { cause: err });
  }
  const r = envelopeSchema.safeParse(raw);
  if (!r.success) {
    throw new EnvelopeError('COHORT_PAYLOAD_INVALID', `message envelope rejected: ${r.error.issues.map((i) => `${i.path.join('.') || '<root>'}: ${i.message}`).join('; ')}`);
  }
  return r.data;
}

export function toMemberInfo(m: z.infer<typeof memberInfoSchema>): MemberInfo {
  return { ...m, channelAddress: { ...m.channelAddress }, meta: { ...m.meta } };
}

/** Bytes added per envelope inside a batch (its length prefix). */
export const BATCH_RECORD_OVERHEAD = 4;

/** Packs encoded envelopes as `[u32 BE length][bytes]…` (`total` = sum of lengths + overheads). */
export function packBatch(parts: readonly Buffer[], total: number): Buffer {
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const p of parts) {
    out.writeUInt32BE(p.length, off);
    p.copy(out, off + 4);
    off += p.length + 4;
  }
  return out;
}

/** Splits a batch into its envelopes' bytes. Throws COHORT_PAYLOAD_MALFORMED if the lengths do not tile it exactly. */
export function unpackBatch(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  if (buf.length === 0) throw new EnvelopeError('COHORT_PAYLOAD_MALFORMED', 'empty batch');
  while (off < buf.length) {
    if (buf.length - off < 4) throw new EnvelopeError('COHORT_PAYLOAD_MALFORMED', 'truncated batch record header');
    const len = buf.readUInt32BE(off);
    if (len > buf.length - off - 4) throw new EnvelopeError('COHORT_PAYLOAD_MALFORMED', `batch record of ${len} bytes overruns the frame`);
    out.push(buf.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}
