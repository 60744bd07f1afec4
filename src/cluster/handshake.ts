/**
 * Mutual challenge/response handshake over the shared cluster secret.
 * Pure: bytes in, bytes out; no socket, no clock.
 *
 *   C → S  HELLO  magic "COHO" | version 1 | type 1 | client nonce (32)
 *   S → C  PROOF  magic | version | type 2 | server nonce (32) | HMAC(k, "server" | cn | sn)
 *   C → S  PROOF  magic | version | type 3 | HMAC(k, "client" | cn | sn)
 *
 * Each side proves it holds the secret over a nonce chosen by the other side,
 * so neither proof can be replayed from an earlier connection; the labels keep
 * a server's proof from being reflected as a client's. Frame keys for the two
 * directions are derived from the secret and both nonces (fresh per connection).
 */
import { timingSafeEqual, type KeyObject } from 'node:crypto';
import { CohortError } from '../errors.js';
import { deriveSessionKeys, FrameOpener, FrameSealer, hmac, systemRandomBytes, type ClusterKeys, type RandomBytes } from './crypto.js';

const MAGIC = Buffer.from('COHO');
const VERSION = 1;
const NONCE = 32;
const MAC = 32;
const HEAD = MAGIC.length + 2;
const T_HELLO = 1;
const T_SERVER_PROOF = 2;
const T_CLIENT_PROOF = 3;
const L_SERVER = Buffer.from('cohort-hs-server');
const L_CLIENT = Buffer.from('cohort-hs-client');

export class HandshakeError extends CohortError {
  constructor(code: 'COHORT_HANDSHAKE_MALFORMED' | 'COHORT_HANDSHAKE_AUTH' | 'COHORT_HANDSHAKE_STATE', message: string) {
    super(code, message);
    this.name = 'HandshakeError';
  }
}

/** The outcome of a completed handshake: the two sealers of this connection. */
export interface SecureSession {
  readonly sealer: FrameSealer;
  readonly opener: FrameOpener;
}

function head(type: number): Buffer {
  const b = Buffer.allocUnsafe(HEAD);
  MAGIC.copy(b, 0);
  b[4] = VERSION;
  b[5] = type;
  return b;
}

function parse(msg: Uint8Array, type: number, bodyLen: number): Buffer {
  const b = Buffer.isBuffer(msg) ? msg : Buffer.from(msg);
  if (b.length !== HEAD + bodyLen) throw new HandshakeError('COHORT_HANDSHAKE_MALFORMED', `handshake message of ${b.length} bytes, expected ${HEAD + bodyLen}`);
  if (!b.subarray(0, 4).equals(MAGIC)) throw new HandshakeError('COHORT_HANDSHAKE_MALFORMED', 'not a Cohort cluster handshake (bad magic)');
  if (b[4] !== VERSION) throw new HandshakeError('COHORT_HANDSHAKE_MALFORMED', `unsupported handshake version ${b[4]}`);
  if (b[5] !== type) throw new HandshakeError('COHORT_HANDSHAKE_STATE', `handshake message type ${b[5]} where ${type} was expected`);
  return b.subarray(HEAD);
}

function session(out: KeyObject, inn: KeyObject): SecureSession {
  return { sealer: new FrameSealer(out), opener: new FrameOpener(inn) };
}

enum ClientStep {
  Initial,
  AwaitProof,
  Done,
  Failed,
}

/** The dialing side. */
export class ClientHandshake {
  private step = ClientStep.Initial;
  private readonly nonce: Buffer;
  constructor(private readonly keys: ClusterKeys, rnd: RandomBytes = systemRandomBytes) {
    this.nonce = rnd(NONCE);
  }

  /** The first message to send. */
  hello(): Buffer {
    if (this.step !== ClientStep.Initial) throw new HandshakeError('COHORT_HANDSHAKE_STATE', 'hello already sent');
    this.step = ClientStep.AwaitProof;
    return Buffer.concat([head(T_HELLO), this.nonce]);
  }

  /** Verifies the server's proof; returns the client's proof to send and the session. */
  receive(msg: Uint8Array): { reply: Buffer; session: SecureSession } {
    if (this.step !== ClientStep.AwaitProof) throw new HandshakeError('COHORT_HANDSHAKE_STATE', 'unexpected handshake message');
    this.step = ClientStep.Failed;
    const body = parse(msg, T_SERVER_PROOF, NONCE + MAC);
    const sn = body.subarray(0, NONCE);
    const expected = hmac(this.keys.handshake, L_SERVER, this.nonce, sn);
    if (!timingSafeEqual(expected, body.subarray(NONCE))) {
      throw new HandshakeError('COHORT_HANDSHAKE_AUTH', 'the server could not prove it holds the cluster secret');
    }
    const proof = hmac(this.keys.handshake, L_CLIENT, this.nonce, sn);
    const k = deriveSessionKeys(this.keys, this.nonce, Buffer.from(sn));
    this.step = ClientStep.Done;
    return { reply: Buffer.concat([head(T_CLIENT_PROOF), proof]), session: session(k.clientToServer, k.serverToClient) };
  }
}

enum ServerStep {
  AwaitHello,
  AwaitProof,
  Done,
  Failed,
}

/** The accepting side. */
export class ServerHandshake {
  private step = ServerStep.AwaitHello;
  private readonly nonce: Buffer;
  private clientNonce: Buffer | undefined;
  constructor(private readonly keys: ClusterKeys, rnd: RandomBytes = systemRandomBytes) {
    this.nonce = rnd(NONCE);
  }

  /**
   * Feeds one handshake message. Returns `{reply}` after the hello, then
   * `{session}` once the client proved itself. Throws {@link HandshakeError}.
   */
  receive(msg: Uint8Array): { reply?: Buffer; session?: SecureSession } {
    if (this.step === ServerStep.AwaitHello) {
      this.step = ServerStep.Failed;
      const cn = Buffer.from(parse(msg, T_HELLO, NONCE));
      this.clientNonce = cn;
      const proof = hmac(this.keys.handshake, L_SERVER, cn, this.nonce);
      this.step = ServerStep.AwaitProof;
      return { reply: Buffer.concat([head(T_SERVER_PROOF), this.nonce, proof]) };
    }
    if (this.step === ServerStep.AwaitProof) {
      this.step = ServerStep.Failed;
      const body = parse(msg, T_CLIENT_PROOF, MAC);
      const cn = this.clientNonce!;
      const expected = hmac(this.keys.handshake, L_CLIENT, cn, this.nonce);
      if (!timingSafeEqual(expected, body)) {
        throw new HandshakeError('COHORT_HANDSHAKE_AUTH', 'the client could not prove it holds the cluster secret');
      }
      const k = deriveSessionKeys(this.keys, cn, this.nonce);
      this.step = ServerStep.Done;
      return { session: session(k.serverToClient, k.clientToServer) };
    }
    throw new HandshakeError('COHORT_HANDSHAKE_STATE', 'unexpected handshake message');
  }
}
