/**
 * Virtual users: each keeps a cookie and runs one request at a time through
 * the balancer, mostly `GET /examples/counter` (a session write) and now and
 * then `GET /examples/instance.txt` (no session). Every answer is sampled;
 * counter answers go to the user's {@link SessionLedger}.
 */
import { Pool } from 'undici';
import { SessionLedger } from './ledger.js';
import type { Sample } from './latency.js';

/** Longest a user waits for an answer before counting a timeout, ms. */
export const REQUEST_TIMEOUT_MS = 15_000;
/** Think time between a user's requests, ms. */
const THINK_MIN_MS = 20;
const THINK_MAX_MS = 80;
/** One request in this many is the sessionless instance.txt. */
const PLAIN_EVERY = 6;

export interface UserSample extends Sample {
  readonly user: number;
  /** Node that answered (counter answers only). */
  readonly node?: string;
}

/** One observed loss: which user, when, and what the cluster answered. */
export interface LossEvent {
  readonly user: number;
  /** ms, performance.now */
  readonly at: number;
  readonly sessionLost: boolean;
  readonly updatesLost: number;
  readonly before: { readonly session: string | undefined; readonly count: number; readonly node: string | undefined };
  readonly after: { readonly session: string; readonly count: number; readonly node: string };
}

export class VirtualUsers {
  readonly ledgers: SessionLedger[];
  private readonly cookies: (string | undefined)[];
  /** Node of each user's last counter answer. */
  readonly lastNode: (string | undefined)[];
  /** End times (ms, performance.now) of each user's successful answers, ascending. */
  private readonly successes: number[][];
  readonly samples: UserSample[] = [];
  readonly errors = new Map<string, number>();
  requests = 0;
  /** The losses, as they were seen (for the report). */
  readonly losses: LossEvent[] = [];
  sessionsLost = 0;
  updatesLost = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly pool: Pool;

  constructor(
    balancerUrl: string,
    readonly count: number,
    private readonly random: () => number,
  ) {
    this.pool = new Pool(balancerUrl, { connections: count, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
    this.ledgers = Array.from({ length: count }, () => new SessionLedger());
    this.cookies = new Array(count).fill(undefined);
    this.lastNode = new Array(count).fill(undefined);
    this.successes = Array.from({ length: count }, () => []);
  }

  start(): void {
    this.running = true;
    this.loops = this.ledgers.map((_, u) => this.loop(u));
  }

  /** Stops after each user's request in flight; resolves when all are done. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  async close(): Promise<void> {
    this.running = false;
    await this.pool.destroy();
  }

  /** Users whose last counter answer came from `node`. */
  usersOf(node: string): number[] {
    const out: number[] = [];
    this.lastNode.forEach((n, u) => n === node && out.push(u));
    return out;
  }

  /** End time of the user's first successful answer that completed after `t`. */
  firstSuccessAfter(user: number, t: number): number | undefined {
    return this.successes[user]!.find((x) => x > t);
  }

  /** One more counter request per user, after the faults: every acknowledged increment must still be there. */
  async verifyAll(): Promise<{ checked: number; sessionsLost: number; updatesLost: number; errors: number }> {
    let sessionsLost = 0;
    let updatesLost = 0;
    let errors = 0;
    let checked = 0;
    await Promise.all(this.ledgers.map(async (ledger, u) => {
      if (ledger.session === undefined) return;
      checked++;
      const r = await this.counter(u);
      if (!r.ok) errors++;
      else {
        sessionsLost += r.sessionLost ? 1 : 0;
        updatesLost += r.updatesLost;
      }
    }));
    return { checked, sessionsLost, updatesLost, errors };
  }

  private async loop(u: number): Promise<void> {
    let i = 0;
    while (this.running) {
      i++;
      if (i % PLAIN_EVERY === 0) await this.plain(u);
      else await this.counter(u);
      await new Promise((r) => setTimeout(r, THINK_MIN_MS + this.random() * (THINK_MAX_MS - THINK_MIN_MS)));
    }
  }

  private fail(kind: string): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  private headers(u: number): Record<string, string> {
    const c = this.cookies[u];
    return c ? { accept: 'application/json', cookie: c } : { accept: 'application/json' };
  }

  private async plain(u: number): Promise<void> {
    this.requests++;
    const start = performance.now();
    let ok = false;
    try {
      const r = await this.pool.request({ path: '/examples/instance.txt', method: 'GET', headers: this.headers(u) });
      await r.body.text();
      ok = r.statusCode === 200;
      if (!ok) this.fail(`HTTP ${r.statusCode}`);
    } catch (err) {
      this.fail((err as { code?: string }).code ?? (err as Error).name);
    }
    const end = performance.now();
    this.samples.push({ user: u, start, end, ok });
    if (ok) this.successes[u]!.push(end);
  }

  private async counter(u: number): Promise<{ ok: boolean; sessionLost: boolean; updatesLost: number }> {
    this.requests++;
    const start = performance.now();
    let result = { ok: false, sessionLost: false, updatesLost: 0 };
    let node: string | undefined;
    try {
      const r = await this.pool.request({ path: '/examples/counter', method: 'GET', headers: this.headers(u) });
      const text = await r.body.text();
      if (r.statusCode !== 200) this.fail(`HTTP ${r.statusCode}`);
      else {
        const sc = r.headers['set-cookie'];
        for (const c of Array.isArray(sc) ? sc : sc ? [sc] : []) {
          const m = /^JSESSIONID=([^;]*)/.exec(c);
          if (m) this.cookies[u] = `JSESSIONID=${m[1]}`;
        }
        let body: { node?: unknown; session?: unknown; count?: unknown } | undefined;
        try {
          body = JSON.parse(text) as typeof body;
        } catch {
          body = undefined;
        }
        if (!body || typeof body.session !== 'string' || typeof body.count !== 'number' || typeof body.node !== 'string') this.fail('bad body');
        else {
          node = body.node;
          const ledger = this.ledgers[u]!;
          const prev = { session: ledger.session, count: ledger.lastAcknowledged, node: this.lastNode[u] };
          this.lastNode[u] = node;
          const v = ledger.observe(body.session, body.count);
          if (v.sessionLost) this.sessionsLost++;
          this.updatesLost += v.updatesLost;
          if (v.sessionLost || v.updatesLost > 0) this.losses.push({ user: u, at: performance.now(), ...v, before: prev, after: { session: body.session, count: body.count, node } });
          result = { ok: true, ...v };
        }
      }
    } catch (err) {
      this.fail((err as { code?: string }).code ?? (err as Error).name);
    }
    const end = performance.now();
    this.samples.push({ user: u, start, end, ok: result.ok, ...(node ? { node } : {}) });
    if (result.ok) this.successes[u]!.push(end);
    return result;
  }
}
