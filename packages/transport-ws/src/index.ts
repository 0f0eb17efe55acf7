/**
 * `@synod/transport-ws`: synod peer links over WebSocket (`ws`) with compact binary batch
 * framing, a hello/auth/cluster check in the HTTP upgrade (before any frame is accepted),
 * reconnect with backoff, bounded send queues and fault injection for demos.
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
  HELLO_HEADER,
  CLOSE_CODE_HEADER,
  MAX_HELLO_BYTES,
  MAX_BATCH_HEADER_BYTES,
  encodeHello,
  decodeHello,
  encodeHelloHeader,
  decodeHelloHeader,
  encodeBatch,
  decodeBatch,
  sealBatch,
  uvarintLength,
  type Hello,
} from './framing.js';
