/** Public surface of the cluster layer. Internals (connection, peer, handshake state) stay unexported. */
export * from './types.js';
export { createClusterNode, ClusterNode, defaultMembershipRegistry, RESERVED_TOPIC_PREFIX, type ClusterNodeDeps, type ClusterErrorEvent } from './channel.js';
export {
  clusterConfigSchema,
  parseClusterConfig,
  resolveSecret,
  SECRET_ENV,
  DEFAULT_CLUSTER_NAME,
  DEFAULT_LISTEN_HOST,
  DEFAULT_LISTEN_PORT,
  DEFAULT_MULTICAST_ADDRESS,
  DEFAULT_MULTICAST_PORT,
  DEFAULT_MULTICAST_INTERVAL_MS,
  DEFAULT_MULTICAST_DROP_MS,
  DEFAULT_STATIC_REFRESH_MS,
  DEFAULT_DNS_INTERVAL_MS,
  DEFAULT_TIMING,
  DEFAULT_LIMITS,
  type ClusterConfig,
  type ClusterConfigInput,
  type MembershipConfig,
} from './config.js';
export { FailureDetector, type FailureDetectorOptions, type DetectorPort } from './failure-detector.js';
export { FrameDecoder, encodeFrame, FrameError, DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, type FrameDecoderOptions } from './codec.js';
export { deriveClusterKeys, AuthError, FrameSealer, FrameOpener, sealDatagram, openDatagram, MIN_SECRET_BYTES, type ClusterKeys } from './crypto.js';
export { ClientHandshake, ServerHandshake, HandshakeError, ProtocolVersionError, PROTOCOL_VERSION, type SecureSession, type HandshakeStep } from './handshake.js';
export { envelopeSchema, decodeEnvelope, encodeEnvelope, packBatch, unpackBatch, BATCH_RECORD_OVERHEAD, EnvelopeError, type Envelope } from './envelope.js';
export { parseHostPort } from '../util/address.js';
export { MembershipRegistry, addressKey, type Address, type DiscoverySink, type MembershipContext, type MembershipService, type MembershipFactory } from './membership.js';
export { StaticMembership, createStaticMembership, type StaticMembershipConfig } from './membership-static.js';
export { DnsMembership, createDnsMembership, systemDnsResolver, type DnsResolver, type DnsRecordType, type DnsQueryType, type DnsMembershipConfig } from './membership-dns.js';
export { MulticastMembership, createMulticastMembership, type MulticastMembershipConfig, type UdpSocketFactory, type Announcement } from './membership-multicast.js';
export { plainNet, tlsNet, type NetFactory, type ListeningServer, type TlsFiles } from './net.js';
export { buildSnapshot, formatMembersTable, type ClusterSnapshot, type ClusterStats, type TimedEvent } from './snapshot.js';
export { SEEN_META_KEY, SEEN_META_MAX_CHARS, encodeSeenMembers, parseSeenMembers, publishSeenMembers, type SeenMembers, type SeenState } from './seen-members.js';
