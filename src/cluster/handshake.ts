/**
 * Mutual challenge/response handshake over the shared cluster secret.
 * Pure: bytes in, bytes out; no socket, no clock.
 *
 *   C → S  HELLO      magic "COHO" | version 1 | type 1 | client nonce cn (32)
 *   S → C  CHALLENGE  magic | version | type 2 | server nonce sn (32)
 *   C → S  PROOF      magic | version | type 3 | HMAC(k, "client" | cn | sn)
 *   S → C  PROOF      magic | version | type 4 | HMAC(k, "server" | cn | sn)
 *   S → C  VERSION    magic | server's version | type 5   (refusal: the hello's version is not the server's)
 *
 * The version byte is the cluster protocol version ({@link PROTOCOL_VERSION}). A node of
 * another version is refused before any secret is used, on both sides, with
 * COHORT_CLUSTER_VERSION naming both versions: the server answers VERSION and
 * closes; the client fails on VERSION (or on any message of another version).
 * Each side proves it holds the secret over a nonce chosen by the other side,
 * so no proof can be replayed from an earlier connection; the labels keep one
 * side's proof from being reflected as the other's. The client proves first,
 * so the server never computes a proof for an unauthenticated caller, and a
 * caller with the wrong secret fails (and is counted) on the server.
 * Frame keys for the two directions are derived from the secret and both
 * nonces (fresh per connection). No clock is involved.
 */
import { timingSafeEqual, type KeyObject } from 'node:crypto';
import { CohortError } from '../errors.js';
import { deriveSessionKeys, FrameOpener, FrameSealer, hmac, type ClusterKeys } from './crypto.js';
import { systemRandom, type Random } from '../util/clock.js';

const MAGIC = Buffer.from('COHO');
/** The cluster protocol version this build speaks (the handshake's version byte). */
export const PROTOCOL_VERSION = 1;
const NONCE = 32;
const MAC = 32;
const HEAD = MAGIC.length + 2;
const T_HELLO = 1;
const T_CHALLENGE = 2;
const T_CLIENT_PROOF = 3;
const T_SERVER_PROOF = 4;
const T_VERSION = 5;
const L_SERVER = Buffer.from('cohort-hs-server');
const L_CLIENT = Buffer.from('cohort-hs-client');

export class HandshakeError extends CohortError {
  constructor(code: 'COHORT_HANDSHAKE_MALFORMED' | 'COHORT_HANDSHAKE_AUTH' | 'COHORT_HANDSHAKE_STATE' | 'COHORT_CLUSTER_VERSION', message: string) {
    super(code, message);
    this.name = 'HandshakeError';
  }
}

/** The peer speaks another cluster protocol version (COHORT_CLUSTER_VERSION); `reply` is the refusal to send it, if any. */
export class ProtocolVersionError extends HandshakeError {
  constructor(
    readonly localVersion: number,
    readonly peerVersion: number,
    readonly reply?: Buffer,
  ) {
    super('COHORT_CLUSTER_VERSION', `the peer speaks cluster protocol version ${peerVersion}, this node speaks version ${localVersion}`);
    this.name = 'ProtocolVersionError';
  }
}

/** The outcome of a completed handshake: the sealer and opener of this connection. */
export interface SecureSession {
  readonly sealer: FrameSealer;
  readonly opener: FrameOpener;
}

/** One step's result: a message to send and/or the established session. */
export interface HandshakeStep {
  readonly reply?: Buffer;
  readonly session?: SecureSession;
}

function msg(version: number, type: number, ...parts: Buffer[]): Buffer {
  const b = Buffer.allocUnsafe(HEAD);
  MAGIC.copy(b, 0);
  b[4] = version;
  b[5] = type;
  return Buffer.concat([b, ...parts]);
}

/**
 * Checks one message: magic first, then the version (any message of another version is a version
 * refusal, whatever its size: a later version may change the messages), then type and size.
 * `refusal`: what to answer a message of another version (the server's VERSION message).
 */
function parse(m: Uint8Array, version: number, type: number, bodyLen: number, refusal?: Buffer): Buffer {
  const b = Buffer.isBuffer(m) ? m : Buffer.from(m);
  if (b.length < HEAD || !b.subarray(0, 4).equals(MAGIC)) throw new HandshakeError('COHORT_HANDSHAKE_MALFORMED', 'not a Cohort cluster handshake (bad magic)');
  if (b[4] !== version) throw new ProtocolVersionError(version, b[4]!, refusal);
  if (b[5] !== type) throw new HandshakeError('COHORT_HANDSHAKE_STATE', `handshake message type ${b[5]} where ${type} was expected`);
  if (b.length !== HEAD + bodyLen) throw new HandshakeError('COHORT_HANDSHAKE_MALFORMED', `handshake message of ${b.length} bytes, expected ${HEAD + bodyLen}`);
  return Buffer.from(b.subarray(HEAD));
}

function verify(expected: Buffer, got: Buffer, who: string): void {
  if (!timingSafeEqual(expected, got)) throw new HandshakeError('COHORT_HANDSHAKE_AUTH', `the ${who} could not prove it holds the cluster secret`);
}

function session(out: KeyObject, inn: KeyObject): SecureSession {
  return { sealer: new FrameSealer(out), opener: new FrameOpener(inn) };
}

enum ClientStep {
  Initial = 'initial',
  AwaitChallenge = 'await-challenge',
  AwaitProof = 'await-proof',
  Done = 'done',
  Failed = 'failed',
}

/** The dialing side. */
export class ClientHandshake {
  private step = ClientStep.Initial;
  private readonly nonce: Buffer;
  private serverNonce: Buffer | undefined;
  /** `version`: the protocol version spoken (default {@link PROTOCOL_VERSION}; tests: a node of another version). */
  constructor(private readonly keys: ClusterKeys, random: Pick<Random, 'bytes'> = systemRandom, private readonly version = PROTOCOL_VERSION) {
    this.nonce = random.bytes(NONCE);
  }

  /** The first message to send. */
  hello(): Buffer {
    if (this.step !== ClientStep.Initial) throw new HandshakeError('COHORT_HANDSHAKE_STATE', 'hello already sent');
    this.step = ClientStep.AwaitChallenge;
    return msg(this.version, T_HELLO, this.nonce);
  }

  /** Feeds one server message. Throws {@link HandshakeError}; any failure is final. */
  receive(m: Uint8Array): HandshakeStep {
    const step = this.step;
    this.step = ClientStep.Failed;
    if (step === ClientStep.AwaitChallenge) {
      const sn = parse(m, this.version, T_CHALLENGE, NONCE);
      this.serverNonce = sn;
      this.step = ClientStep.AwaitProof;
      return { reply: msg(this.version, T_CLIENT_PROOF, hmac(this.keys.handshake, L_CLIENT, this.nonce, sn)) };
    }
    if (step === ClientStep.AwaitProof) {
      const sn = this.serverNonce!;
      verify(hmac(this.keys.handshake, L_SERVER, this.nonce, sn), parse(m, this.version, T_SERVER_PROOF, MAC), 'server');
      const k = deriveSessionKeys(this.keys, this.nonce, sn);
      this.step = ClientStep.Done;
      return { session: session(k.clientToServer, k.serverToClient) };
    }
    throw new HandshakeError('COHORT_HANDSHAKE_STATE', `unexpected handshake message in state ${step}`);
  }
}

enum ServerStep {
  AwaitHello = 'await-hello',
  AwaitProof = 'await-proof',
  Done = 'done',
  Failed = 'failed',
}

/** The accepting side. */
export class ServerHandshake {
  private step = ServerStep.AwaitHello;
  private readonly nonce: Buffer;
  private clientNonce: Buffer | undefined;
  /** `version`: the protocol version spoken (default {@link PROTOCOL_VERSION}; tests: a node of another version). */
  constructor(private readonly keys: ClusterKeys, random: Pick<Random, 'bytes'> = systemRandom, private readonly version = PROTOCOL_VERSION) {
    this.nonce = random.bytes(NONCE);
  }

  /** Feeds one client message. Throws {@link HandshakeError}; any failure is final. */
  receive(m: Uint8Array): HandshakeStep {
    const step = this.step;
    this.step = ServerStep.Failed;
    if (step === ServerStep.AwaitHello) {
      // A hello of another version is answered with this node's version, so both sides can say which two met.
      this.clientNonce = parse(m, this.version, T_HELLO, NONCE, msg(this.version, T_VERSION));
      this.step = ServerStep.AwaitProof;
      return { reply: msg(this.version, T_CHALLENGE, this.nonce) };
    }
    if (step === ServerStep.AwaitProof) {
      const cn = this.clientNonce!;
      verify(hmac(this.keys.handshake, L_CLIENT, cn, this.nonce), parse(m, this.version, T_CLIENT_PROOF, MAC), 'client');
      const k = deriveSessionKeys(this.keys, cn, this.nonce);
      this.step = ServerStep.Done;
      return { reply: msg(this.version, T_SERVER_PROOF, hmac(this.keys.handshake, L_SERVER, cn, this.nonce)), session: session(k.serverToClient, k.clientToServer) };
    }
    throw new HandshakeError('COHORT_HANDSHAKE_STATE', `unexpected handshake message in state ${step}`);
  }
}
