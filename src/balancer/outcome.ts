/**
 * What happened to one attempt on a member, as the proxy tells the balancer
 * through `Balancer.report(member, outcome)`. The proxy never writes member
 * fields or counters itself; the balancer turns outcomes into health state,
 * latency, counters and freed slots. A tagged union: one kind per event.
 */

/** Why an attempt failed, as far as the member's health is concerned. */
export type FailureSource = 'connect' | 'reset' | 'timeout' | 'status' | 'protocol' | 'tls' | 'client' | 'internal';

export interface Failure {
  /** Stable code: a system error code (ECONNREFUSED …), CONNECT_TIMEOUT, HEADERS_TIMEOUT, BODY_TIMEOUT, COHORT_FAILONSTATUS, HPE_… (malformed response). */
  readonly code: string;
  readonly message: string;
  readonly source: FailureSource;
  /** The failure says the member is down: it is put in error for `retry`. */
  readonly marksDown: boolean;
}

export type Outcome =
  /** An attempt was written to the member; `bytesOut` of request body were sent with it (buffered bodies). */
  | { readonly kind: 'dispatched'; readonly bytesOut: number }
  /** The member's final response head arrived after `latencyMs`. */
  | { readonly kind: 'response'; readonly status: number; readonly latencyMs: number }
  /** The attempt failed; its slot is freed. */
  | { readonly kind: 'failed'; readonly failure: Failure }
  /** The request goes to another member after a failure on this one. */
  | { readonly kind: 'retried' }
  /** The exchange ended (cleanly, or the client left); its slot is freed. Bytes moved: from the member, to the member. */
  | { readonly kind: 'finished'; readonly bytesIn: number; readonly bytesOut: number };
