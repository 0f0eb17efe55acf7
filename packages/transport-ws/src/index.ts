/**
 * `@synod/transport-ws`: synod peer links over WebSocket (`ws`) with compact binary batch
 * framing, a hello/auth handshake, reconnect with backoff, bounded send queues and fault
 * injection for demos.
 */
export {
  WebSocketTransport,
  normalizePeerUrl,
  type WebSocketTransportOptions,
  type WebSocketTransportStats,
  type ReconnectOptions,
  type PeerLinkInfo,
} from './transport.js';
export {
  CloseCode,
  FrameType,
  PROTOCOL_VERSION,
  MAX_BATCH_HEADER_BYTES,
  encodeHello,
  decodeHello,
  encodeBatch,
  decodeBatch,
  sealBatch,
  uvarintLength,
  type Hello,
} from './framing.js';
