import type { Logger } from 'pino';

/** One access log entry: what the request path knows when an exchange finishes. */
export interface AccessEntry {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly balancer: string;
  readonly member: string | undefined;
  readonly route: string | undefined;
  readonly reason: string | undefined;
  readonly attempts: number;
  readonly upstreamMs: number | undefined;
  /** Monotonic ms from the head to the end of the exchange. */
  readonly ms: number;
  /** Response body bytes sent to the client. */
  readonly bytes: number;
  readonly client: string;
}

export interface AccessLog {
  write(e: AccessEntry): void;
  /** Writes out what is buffered. */
  flush(): void;
}

/** An access log on a pino logger (one JSON object per exchange). */
export function pinoAccessLog(logger: Logger): AccessLog {
  return {
    write: (e) => logger.info({ ...e, ms: Math.round(e.ms * 1000) / 1000 }),
    flush: () => logger.flush?.(),
  };
}
