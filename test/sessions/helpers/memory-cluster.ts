/**
 * An in-memory implementation of the ClusterChannel contract for tests: a hub
 * connecting N channels in one process. Payloads are serialized to JSON at
 * send time and parsed at delivery, like a real wire. The hub can kill
 * members, partition them and heal the partition (membership events fire on
 * both sides), hold messages to reorder them, and count traffic.
 */
import type {
  BroadcastResult,
  ClusterChannel,
  JsonValue,
  MemberInfo,
  MembershipEvent,
  MemberView,
  MessageHandler,
  PeerCounters,
  SendOptions,
} from '../../../src/cluster/types.js';
import { MemberState } from '../../../src/cluster/types.js';

export interface HeldMessage {
  readonly from: string;
  readonly to: string;
  readonly topic: string;
  readonly payload: JsonValue;
  readonly deliver: () => Promise<void>;
}

export class MemoryHub {
  private readonly channels = new Map<string, MemoryChannel>();
  private readonly cut = new Set<string>();
  private seq = 0;
  /** Return true to hold a message (it is delivered by releasing it). */
  hold: ((m: { from: string; to: string; topic: string; payload: JsonValue }) => boolean) | undefined;
  readonly held: HeldMessage[] = [];
  /** Messages sent per topic. */
  readonly sent = new Map<string, number>();
  bytes = 0;

  /** A new member with `route`; it sees the current members once started. */
  channel(route: string, meta: Record<string, string> = {}): MemoryChannel {
    const id = `m${++this.seq}-${route}`;
    const ch = new MemoryChannel(this, {
      id,
      route,
      incarnation: 0,
      clusterName: 'test',
      channelAddress: { host: '127.0.0.1', port: 0 },
      startTime: this.seq,
      meta,
    });
    return ch;
  }

  /** @internal */
  join(ch: MemoryChannel): void {
    this.channels.set(ch.self.id, ch);
    for (const other of this.channels.values()) {
      if (other !== ch && other.alive && this.reachable(ch.self.id, other.self.id)) other.fire({ type: 'added', member: ch.view() });
    }
  }

  /** @internal */
  leave(ch: MemoryChannel, reason: string): void {
    this.channels.delete(ch.self.id);
    for (const other of this.channels.values()) {
      if (other.alive && this.reachable(ch.self.id, other.self.id)) other.fire({ type: 'gone', member: ch.view(), reason });
    }
  }

  /** SIGKILL: the member vanishes; peers see it gone. */
  kill(ch: MemoryChannel): void {
    ch.destroy('killed');
  }

  private key(a: string, b: string): string {
    return a < b ? `${a}|${b}` : `${b}|${a}`;
  }

  reachable(a: string, b: string): boolean {
    return !this.cut.has(this.key(a, b));
  }

  /** Cuts every link between the two groups; each side sees the other gone. */
  partition(groupA: readonly MemoryChannel[], groupB: readonly MemoryChannel[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        if (!this.reachable(a.self.id, b.self.id)) continue;
        this.cut.add(this.key(a.self.id, b.self.id));
        a.fire({ type: 'gone', member: b.view(), reason: 'partition' });
        b.fire({ type: 'gone', member: a.view(), reason: 'partition' });
      }
    }
  }

  /** Restores every cut link; each side sees the other back. */
  heal(): void {
    const cuts = [...this.cut];
    this.cut.clear();
    for (const k of cuts) {
      const [x, y] = k.split('|') as [string, string];
      const a = this.channels.get(x);
      const b = this.channels.get(y);
      if (!a || !b) continue;
      a.fire({ type: 'back', member: b.view() });
      b.fire({ type: 'back', member: a.view() });
    }
  }

  /** @internal */
  peers(of: MemoryChannel): MemoryChannel[] {
    const out: MemoryChannel[] = [];
    for (const c of this.channels.values()) if (c !== of && c.alive && this.reachable(c.self.id, of.self.id)) out.push(c);
    return out;
  }

  /** @internal */
  target(from: MemoryChannel, to: string): MemoryChannel {
    const c = this.channels.get(to);
    if (!c || !c.alive) throw new Error(`member ${to} unknown or gone`);
    if (!this.reachable(from.self.id, to)) throw new Error(`member ${to} unreachable (partition)`);
    return c;
  }

  /** Delivers held messages in the given order (indexes into `held`), then clears them. */
  async release(order?: readonly number[]): Promise<void> {
    const msgs = this.held.splice(0, this.held.length);
    const idx = order ?? msgs.map((_, i) => i);
    for (const i of idx) await msgs[i]!.deliver();
  }

  count(topic: string, bytes: number): void {
    this.sent.set(topic, (this.sent.get(topic) ?? 0) + 1);
    this.bytes += bytes;
  }
}

const zeroCounters: PeerCounters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, authFailures: 0, queueDepth: 0, dropped: 0, rttMs: undefined };

export class MemoryChannel implements ClusterChannel {
  self: MemberInfo;
  alive = false;
  private readonly handlers = new Map<string, MessageHandler>();
  private readonly listeners = new Set<(e: MembershipEvent) => void>();
  /** Per-destination delivery chain: keeps async sends ordered per peer. */
  private readonly chains = new Map<string, Promise<void>>();

  constructor(
    readonly hub: MemoryHub,
    info: MemberInfo,
  ) {
    this.self = info;
  }

  view(): MemberView {
    return { ...this.self, state: MemberState.Alive, lastSeen: 0 };
  }

  members(): readonly MemberView[] {
    return this.alive ? this.hub.peers(this).map((c) => c.view()) : [];
  }

  onMembership(listener: (event: MembershipEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** @internal */
  fire(e: MembershipEvent): void {
    if (!this.alive) return;
    for (const l of this.listeners) l(e);
  }

  setMeta(meta: Record<string, string>): void {
    this.self = { ...this.self, meta: { ...meta } };
    for (const p of this.hub.peers(this)) p.fire({ type: 'updated', member: this.view() });
  }

  handle(topic: string, handler: MessageHandler): void {
    if (this.handlers.has(topic)) throw new Error(`handler for ${topic} already registered`);
    this.handlers.set(topic, handler);
  }

  /** @internal: runs the handler for a message (already parsed). */
  async dispatch(from: MemberView, topic: string, payload: JsonValue): Promise<JsonValue | void> {
    const h = this.handlers.get(topic);
    if (!h) throw new Error(`no handler for ${topic} on ${this.self.route}`);
    return h(from, payload);
  }

  private withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
      t.unref();
      p.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e as Error);
        },
      );
    });
  }

  send(to: string, topic: string, payload: JsonValue, options: SendOptions = {}): Promise<void> {
    if (!this.alive) return Promise.reject(new Error('channel closed'));
    let target: MemoryChannel;
    try {
      target = this.hub.target(this, to);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const text = JSON.stringify(payload);
    this.hub.count(topic, text.length);
    const from = this.view();
    const mode = options.mode ?? 'async';
    let settle!: { resolve: () => void; reject: (e: Error) => void };
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const deliver = async (): Promise<void> => {
      // a killed sender's queued messages die with it; a gone or cut-off receiver never gets them
      if (!this.alive || !target.alive || !this.hub.reachable(this.self.id, to)) {
        settle.reject(new Error(`member ${to} gone before delivery`));
        return;
      }
      try {
        await target.dispatch(from, topic, JSON.parse(text) as JsonValue);
        settle.resolve();
      } catch (e) {
        settle.reject(e as Error);
      }
    };
    if (this.hub.hold?.({ from: this.self.id, to, topic, payload })) {
      this.hub.held.push({ from: this.self.id, to, topic, payload, deliver });
    } else {
      const prev = this.chains.get(to) ?? Promise.resolve();
      const next = prev.then(deliver);
      this.chains.set(to, next);
    }
    if (mode === 'async') {
      done.catch(() => undefined);
      return Promise.resolve();
    }
    return this.withTimeout(done, options.timeoutMs ?? 5000, `send ${topic} to ${to}`);
  }

  async broadcast(topic: string, payload: JsonValue, options: SendOptions = {}): Promise<BroadcastResult> {
    const ok: string[] = [];
    const failed: Record<string, string> = {};
    await Promise.all(
      this.members().map((m) =>
        this.send(m.id, topic, payload, options).then(
          () => void ok.push(m.id),
          (e: unknown) => void (failed[m.id] = String(e)),
        ),
      ),
    );
    return { ok, failed };
  }

  async request(to: string, topic: string, payload: JsonValue, options: { readonly timeoutMs?: number } = {}): Promise<JsonValue> {
    if (!this.alive) throw new Error('channel closed');
    const target = this.hub.target(this, to);
    const text = JSON.stringify(payload);
    this.hub.count(topic, text.length);
    const from = this.view();
    const run = (async () => {
      await Promise.resolve();
      const r = await target.dispatch(from, topic, JSON.parse(text) as JsonValue);
      const back = JSON.stringify(r ?? null);
      this.hub.count(`${topic}:reply`, back.length);
      if (!this.alive) throw new Error('channel closed');
      return JSON.parse(back) as JsonValue;
    })();
    return this.withTimeout(run, options.timeoutMs ?? 5000, `request ${topic} to ${to}`);
  }

  counters(): Readonly<Record<string, PeerCounters>> {
    const out: Record<string, PeerCounters> = {};
    for (const m of this.members()) out[m.id] = zeroCounters;
    return out;
  }

  async start(): Promise<void> {
    if (this.alive) return;
    this.alive = true;
    this.hub.join(this);
  }

  async close(): Promise<void> {
    this.destroy('left');
  }

  destroy(reason = 'destroyed'): void {
    if (!this.alive) return;
    this.alive = false;
    this.hub.leave(this, reason);
  }
}
