/**
 * What each virtual user knows about its own session: the session id and the
 * last counter value the cluster acknowledged (answered 200). Pure: it is fed
 * the answers and says what was lost. A user runs one request at a time, so
 * every acknowledged increment must be visible in the next answer.
 */

/** Outcome of one acknowledged answer, compared with what the user knew before. */
export interface LedgerVerdict {
  /** The user had a session and the answer came with another one (or count 1): the session was lost. */
  readonly sessionLost: boolean;
  /** Acknowledged increments not reflected in this answer (0 when everything was kept). */
  readonly updatesLost: number;
}

/**
 * The session's identity without its route suffix: `abc.n1` and `abc.n2` are
 * the same session (the route is rewritten when another node takes it over).
 */
export function sessionKey(id: string, sep = '.'): string {
  const i = id.indexOf(sep);
  return i < 0 ? id : id.slice(0, i);
}

export class SessionLedger {
  private sessionId: string | undefined;
  private lastAck = 0;
  /** Acknowledged increments over the whole run (each 200 with a counter is one). */
  acknowledged = 0;

  get session(): string | undefined {
    return this.sessionId;
  }

  get lastAcknowledged(): number {
    return this.lastAck;
  }

  /**
   * Records a 200 answer carrying `{session, count}`. A new session id (the
   * route suffix aside) or a
   * count that did not move past the last acknowledged one is a loss; the
   * ledger then continues from what the cluster answered.
   */
  observe(session: string, count: number): LedgerVerdict {
    this.acknowledged++;
    let sessionLost = false;
    let updatesLost = 0;
    if (this.sessionId !== undefined && (sessionKey(session) !== sessionKey(this.sessionId) || count === 1) && this.lastAck > 0) {
      sessionLost = true;
      updatesLost = this.lastAck;
    } else if (this.sessionId !== undefined && count <= this.lastAck) {
      updatesLost = this.lastAck - count + 1;
    }
    this.sessionId = session;
    this.lastAck = count;
    return { sessionLost, updatesLost };
  }
}
