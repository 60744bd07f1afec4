/**
 * One cluster connection: a socket, the frame decoder, the handshake and the
 * per-direction frame sealing. Speaks envelopes upward; knows nothing about
 * members or membership. The node decides what an envelope means.
 *
 * Writes are batched: envelopes sent in the same tick are packed into one
 * frame (plaintext `[u32 length][envelope]…`, up to {@link BATCH_BYTES}),
 * sealed once and written with one syscall. Sealing per batch instead of per
 * message is what makes small-message throughput and bulk state transfer
 * fast. Keys are derived once per connection, never per frame.
 */
import type { Socket } from 'node:net';
import { systemRandom, type Clock, type Random, type TimerHandle } from '../util/clock.js';
import { CohortError } from '../errors.js';
import { StateMachine } from '../util/transitions.js';
import { FrameDecoder, encodeFrame, encodeFrameHeader, FRAME_HEADER_BYTES } from './codec.js';
import { type ClusterKeys, type FrameSealer, type FrameOpener } from './crypto.js';
import { ClientHandshake, ProtocolVersionError, ServerHandshake } from './handshake.js';
import { decodeEnvelope, encodeEnvelope, packBatch, unpackBatch, BATCH_RECORD_OVERHEAD, type Envelope } from './envelope.js';

/** Target plaintext size of one batched frame, bytes; a larger envelope travels alone. */
export const BATCH_BYTES = 256 * 1024;

/** How a connection is secured: the shared-secret handshake + AEAD, or a TLS socket (already mutually authenticated). */
/** `protocolVersion`: the cluster protocol version the handshake speaks (default PROTOCOL_VERSION). */
export type ConnectionSecurity = { readonly kind: 'secret'; readonly keys: ClusterKeys; readonly random?: Pick<Random, 'bytes'>; readonly protocolVersion?: number } | { readonly kind: 'tls' };

export enum ConnectionState {
  Handshaking = 'handshaking',
  Open = 'open',
  Closed = 'closed',
}

/**
 * Why a connection closed. `auth`: a frame or handshake failed authentication
 * (counted). `protocol`: an authenticated peer sent an invalid envelope or
 * oversized frame. `remote`: EOF, reset or socket error. `timeout`: handshake
 * took too long. `local`: we closed it.
 */
/** `version`: the peer speaks another cluster protocol version (refused in the handshake, before any secret is used). */
export type CloseReason = 'auth' | 'protocol' | 'remote' | 'timeout' | 'local' | 'version';

export interface ConnectionHandlers {
  onOpen(conn: Connection): void;
  onEnvelope(conn: Connection, env: Envelope, bytes: number): void;
  onClose(conn: Connection, reason: CloseReason, error?: Error): void;
}

export interface ConnectionOptions {
  readonly role: 'client' | 'server';
  readonly socket: Socket;
  readonly security: ConnectionSecurity;
  readonly clock: Clock;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly handlers: ConnectionHandlers;
}

export class Connection {
  readonly role: 'client' | 'server';
  readonly socket: Socket;
  readonly remote: string;
  /** handshaking → open → closed, or handshaking → closed (guarded: util/transitions.ts). */
  private readonly life = new StateMachine<ConnectionState>('connection', ConnectionState.Handshaking, undefined, () => this.remote);
  get state(): ConnectionState {
    return this.life.state;
  }
  /** Member id of the peer, set by the node once its hello is accepted. */
  peerId: string | undefined;
  /** For connections we dialed: the address key dialed. */
  dialKey: string | undefined;
  bytesIn = 0;
  bytesOut = 0;
  private readonly decoder: FrameDecoder;
  private client: ClientHandshake | undefined;
  private server: ServerHandshake | undefined;
  private sealer: FrameSealer | undefined;
  private opener: FrameOpener | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private timer: TimerHandle | undefined;
  private readonly h: ConnectionHandlers;

  constructor(private readonly opts: ConnectionOptions) {
    this.role = opts.role;
    this.socket = opts.socket;
    this.h = opts.handlers;
    this.remote = `${opts.socket.remoteAddress ?? '?'}:${opts.socket.remotePort ?? '?'}`;
    this.decoder = new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes });
    opts.socket.setNoDelay(true);
    opts.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    opts.socket.on('error', (err) => this.close('remote', err));
    opts.socket.on('close', () => this.close('remote'));
    opts.socket.on('end', () => this.close('remote'));
  }

  /** Begins the handshake (client writes its hello; server waits). Call once handlers are in place. */
  start(): void {
    const sec = this.opts.security;
    if (sec.kind === 'tls') {
      this.open();
      return;
    }
    this.timer = this.opts.clock.setTimeout(() => {
      if (this.state === ConnectionState.Handshaking) this.close('timeout', new CohortError('COHORT_HANDSHAKE_TIMEOUT', `handshake with ${this.remote} took longer than ${this.opts.handshakeTimeoutMs} ms`));
    }, this.opts.handshakeTimeoutMs);
    this.timer.unref?.();
    if (this.role === 'client') {
      this.client = new ClientHandshake(sec.keys, sec.random ?? systemRandom, sec.protocolVersion);
      this.writeRaw(encodeFrame(this.client.hello()));
    } else {
      this.server = new ServerHandshake(sec.keys, sec.random ?? systemRandom, sec.protocolVersion);
    }
  }

  /** Bytes accepted but not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.pendingBytes + this.socket.writableLength;
  }

  /** Queues an envelope; it goes out with the others of this tick. Returns its size on the wire. */
  send(env: Envelope): number {
    return this.sendEncoded(encodeEnvelope(env));
  }

  /** Like {@link send} for an envelope already encoded with encodeEnvelope. */
  sendEncoded(plain: Buffer): number {
    if (this.state !== ConnectionState.Open) throw new CohortError('COHORT_CONNECTION_CLOSED', `connection to ${this.remote} is ${this.state}`);
    this.pending.push(plain);
    const size = plain.length + BATCH_RECORD_OVERHEAD;
    this.pendingBytes += size;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => this.flush());
    }
    return size;
  }

  /** Closes the connection; the first reason wins. Safe to call repeatedly. */
  close(reason: CloseReason, error?: Error): void {
    if (this.state === ConnectionState.Closed) return;
    if (reason === 'local') this.flush();
    this.life.transition([ConnectionState.Handshaking, ConnectionState.Open], ConnectionState.Closed);
    if (this.timer) this.opts.clock.clearTimeout(this.timer);
    const graceful = reason === 'local' || reason === 'version';
    if (graceful) this.socket.end();
    else this.socket.destroy();
    // a socket that never finishes its FIN handshake must not linger
    if (graceful) this.opts.clock.setTimeout(() => this.socket.destroy(), 1000).unref?.();
    this.h.onClose(this, reason, error);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || this.socket.destroyed) return;
    const all = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const frames: Buffer[] = [];
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const seal = (): void => {
      const plain = packBatch(batch, batchBytes);
      const body = this.sealer ? this.sealer.seal(plain) : plain;
      // header and body as two buffers of one write (the body is not copied)
      frames.push(encodeFrameHeader(body.length), body);
      batch = [];
      batchBytes = 0;
    };
    for (const p of all) {
      if (batch.length > 0 && batchBytes + p.length + BATCH_RECORD_OVERHEAD > BATCH_BYTES) seal();
      batch.push(p);
      batchBytes += p.length + BATCH_RECORD_OVERHEAD;
    }
    if (batch.length > 0) seal();
    this.writeRaw(Buffer.concat(frames));
  }

  private writeRaw(buf: Buffer): void {
    this.bytesOut += buf.length;
    this.socket.write(buf);
  }

  private open(): void {
    if (this.timer) this.opts.clock.clearTimeout(this.timer);
    this.life.transition([ConnectionState.Handshaking], ConnectionState.Open);
    this.h.onOpen(this);
  }

  private onData(chunk: Buffer): void {
    if (this.state === ConnectionState.Closed) return;
    this.bytesIn += chunk.length;
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.close(this.peerId ? 'protocol' : 'auth', err as Error);
      return;
    }
    for (const f of frames) {
      if ((this.state as ConnectionState) === ConnectionState.Closed) return;
      if (this.state === ConnectionState.Handshaking) {
        try {
          this.handshakeStep(f);
        } catch (err) {
          if (err instanceof ProtocolVersionError) {
            // tell the peer which version this node speaks, then hang up (the refusal is flushed, not reset)
            if (err.reply) this.writeRaw(encodeFrame(err.reply));
            this.close('version', err);
          } else {
            this.close('auth', err as Error);
          }
          return;
        }
        continue;
      }
      let plain: Buffer;
      try {
        plain = this.opener ? this.opener.open(f) : f;
      } catch (err) {
        this.close('auth', err as Error);
        return;
      }
      let envs: Envelope[];
      try {
        envs = unpackBatch(plain).map(decodeEnvelope);
      } catch (err) {
        this.close('protocol', err as Error);
        return;
      }
      for (const env of envs) {
        if ((this.state as ConnectionState) === ConnectionState.Closed) return;
        try {
          this.h.onEnvelope(this, env, Math.round((f.length + FRAME_HEADER_BYTES) / envs.length));
        } catch (err) {
          // a failure while handling one peer's message costs that connection, not the process
          this.close('protocol', err as Error);
          return;
        }
      }
    }
  }

  private handshakeStep(msg: Buffer): void {
    const r = this.client ? this.client.receive(msg) : this.server!.receive(msg);
    if (r.reply) this.writeRaw(encodeFrame(r.reply));
    if (r.session) {
      this.sealer = r.session.sealer;
      this.opener = r.session.opener;
      this.open();
    }
  }
}
