/**
 * Shared evidence, not blind trust: when a balancer sees a member fail (a
 * request error, failed health checks, an outlier ejection) it tells the
 * others; each of them avoids that member as if one of its own requests had
 * failed — out for the member's `retry`, back after a successful trial
 * request or after `rise` passing health checks — unless its own evidence is
 * fresher: a request or a health check that succeeded within the last
 * `freshMs`. A balancer never brings a member back on another's word.
 *
 * Pure: inputs in, verdict out.
 */
import { z } from 'zod';

/** Default: evidence of one's own newer than this (ms) outweighs a peer's report. */
export const DEFAULT_EVIDENCE_FRESH_MS = 1000;

export const evidenceSchema = z.strictObject({
  balancer: z.string().min(1).max(256),
  url: z.string().url().max(2048),
  /** What the reporter saw: 'connect', 'timeout', 'hcheck', 'outlier', ... */
  source: z.string().min(1).max(64),
  message: z.string().max(512),
});
export type Evidence = z.infer<typeof evidenceSchema>;

/** Where a failure came from, as the balancer's Member records it. Reports of these are not shared. */
export const UNSHARED_SOURCES: ReadonlySet<string> = new Set(['fleet', 'operator']);

export interface LocalView {
  /** The member is already out for this balancer (error, ejected, check-failed, disabled, stopped). */
  readonly alreadyOut: boolean;
  /** The member has ignore-errors here: failures never take it out. */
  readonly ignoresErrors: boolean;
  /** ms since this balancer last saw the member answer (a request or a passing check); undefined = never. */
  readonly lastOkAgoMs: number | undefined;
}

export type EvidenceVerdict = { readonly kind: 'avoid' } | { readonly kind: 'ignore'; readonly why: string };

export function weighEvidence(local: LocalView, freshMs = DEFAULT_EVIDENCE_FRESH_MS): EvidenceVerdict {
  if (local.alreadyOut) return { kind: 'ignore', why: 'already out here' };
  if (local.ignoresErrors) return { kind: 'ignore', why: 'ignore-errors is set here' };
  if (local.lastOkAgoMs !== undefined && local.lastOkAgoMs < freshMs) return { kind: 'ignore', why: `it answered here ${Math.round(local.lastOkAgoMs)} ms ago` };
  return { kind: 'avoid' };
}
