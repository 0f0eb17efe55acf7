/**
 * The wire format of `@synod/transport-ws`.
 *
 * The dialer's hello travels in the HTTP upgrade request, base64url-encoded in the
 * {@link HELLO_HEADER} header, and is checked before the WebSocket is accepted: an
 * unauthenticated connection never gets to send a frame. After the upgrade, every WebSocket
 * message is one binary batch frame:
 *
 * ```
 * hello:  u8 0x01 | uvarint version | string from | string to | optString authToken | optString clusterId
 * batch:  u8 0x02 | uvarint count | message × count   (each written by the protocol codec)
 * ```
 *
 * Strings and varints are `BinaryWriter`'s (LEB128 lengths, UTF-8). The listener never sends
 * data on an accepted connection, so each connection carries traffic one way (dialer → listener).
 */
import { BinaryReader, BinaryWriter, isValidNodeId, type Message, type MessageCodec, MalformedMessageError, type NodeId } from '@synod/log';

/** Frame type tags (the first byte of every frame). */
export const FrameType = {
  /** The dialer's hello (protocol version, ids, auth token, cluster id), carried in {@link HELLO_HEADER}. */
  Hello: 0x01,
  /** A batch of protocol messages. */
  Batch: 0x02,
} as const;

/**
 * The wire protocol version this package speaks. Version 2 moved the hello from the first
 * WebSocket frame into the upgrade request ({@link HELLO_HEADER}) and added the cluster id;
 * version 1 peers cannot connect to version 2 peers (or the reverse).
 */
export const PROTOCOL_VERSION = 2;

/** HTTP request header of the upgrade request that carries the base64url-encoded hello. */
export const HELLO_HEADER = 'x-synod-hello';

/**
 * HTTP response header of a refused upgrade: the {@link CloseCode} of the refusal (e.g. `4001`),
 * so the dialer can report it in `linkStates()` as if the connection had been closed with it.
 */
export const CLOSE_CODE_HEADER = 'x-synod-close-code';

/** Largest encoded hello accepted, in bytes (two 128-character ids, a 1024-byte token and a 256-character cluster id fit). */
export const MAX_HELLO_BYTES = 3072;

/**
 * WebSocket close codes the listener uses to refuse or end a connection (the 4000-4999
 * application range), plus the standard ones it relies on.
 */
export const CloseCode = {
  /** Normal closure (1000). */
  Normal: 1000,
  /** The transport is shutting down (1001). */
  GoingAway: 1001,
  /** A frame exceeded `maxFrameBytes` (1009, sent by `ws` itself). */
  TooBig: 1009,
  /** The hello carried a wrong or missing auth token (HTTP 401). */
  Unauthorized: 4001,
  /**
   * No valid hello: the upgrade request had no {@link HELLO_HEADER} or an undecodable one (a
   * `from` or `to` that is not a valid node id per `isValidNodeId`), its version is unsupported,
   * it claims the listener's own id as its sender, or the request was not a WebSocket upgrade
   * (HTTP 400, or 426 for a plain HTTP request).
   */
  BadHello: 4002,
  /** The hello was addressed to another node id (a misconfigured address; HTTP 421). */
  WrongNode: 4003,
  /** The connection did not complete its upgrade within `helloTimeoutMs` (HTTP 408). */
  HelloTimeout: 4004,
  /** A newer connection from the same peer replaced this one. */
  Replaced: 4005,
  /** The hello's cluster id differs from the listener's `clusterId`, or is missing while the listener has one (HTTP 403). */
  WrongCluster: 4006,
  /** Dropped to make room: `maxPendingHandshakes` connections were already waiting to complete their upgrade (HTTP 503). */
  Overloaded: 4007,
} as const;

/** A decoded hello frame. */
export interface Hello {
  readonly version: number;
  /** The dialer's node id. */
  readonly from: NodeId;
  /** The node id the dialer believes it is connecting to. */
  readonly to: NodeId;
  /** The shared secret, or `null`. */
  readonly authToken: string | null;
  /** The dialer's cluster id, or `null`. */
  readonly clusterId: string | null;
}

/** Encodes a hello (a fresh buffer). */
export function encodeHello(h: Hello): Uint8Array {
  const w = new BinaryWriter(32 + (h.from.length + h.to.length + (h.authToken?.length ?? 0) + (h.clusterId?.length ?? 0)) * 3);
  w.u8(FrameType.Hello).uvarint(h.version).string(h.from).string(h.to).optString(h.authToken).optString(h.clusterId);
  return w.finish();
}

/** Encodes a hello as the value of the {@link HELLO_HEADER} request header (base64url, no padding). */
export function encodeHelloHeader(h: Hello): string {
  const bytes = encodeHello(h);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes the value of a {@link HELLO_HEADER} request header.
 * @throws MalformedMessageError if it is missing, not base64url, longer than
 *   {@link MAX_HELLO_BYTES} once decoded, or not exactly one valid hello (see {@link decodeHello}).
 */
export function decodeHelloHeader(value: string | string[] | undefined): Hello {
  if (typeof value !== 'string' || value.length === 0) throw new MalformedMessageError('no hello header');
  if (value.length > Math.ceil((MAX_HELLO_BYTES * 4) / 3)) throw new MalformedMessageError('hello header too long');
  if (!BASE64URL.test(value)) throw new MalformedMessageError('hello header is not base64url');
  const buf = Buffer.from(value, 'base64url');
  return decodeHello(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
}

/**
 * Decodes a hello.
 * @throws MalformedMessageError if `bytes` is not exactly one hello, or its `from` or `to` is not
 *   a valid node id (`isValidNodeId` from `@synod/log`: 1..128 characters, no whitespace).
 */
export function decodeHello(bytes: Uint8Array): Hello {
  const r = new BinaryReader(bytes);
  const type = r.u8();
  if (type !== FrameType.Hello) throw new MalformedMessageError(`expected a hello frame, got type ${type}`);
  const version = r.uvarint();
  const from = r.string();
  const to = r.string();
  const authToken = r.optString();
  const clusterId = r.optString();
  r.expectEnd();
  if (!isValidNodeId(from)) throw new MalformedMessageError('hello with an invalid sender node id');
  if (!isValidNodeId(to)) throw new MalformedMessageError('hello with an invalid recipient node id');
  return { version, from, to, authToken, clusterId };
}

/** Bytes of `v` as an unsigned LEB128 varint. */
export function uvarintLength(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** Largest batch header (type byte + a varint count below 2^35). */
export const MAX_BATCH_HEADER_BYTES = 6;

/**
 * Builds one batch frame from `count` messages already encoded back to back in `body`, as a
 * fresh buffer (one copy of the body). The frame owns its memory, so it can be handed to a
 * socket while the caller reuses its writer.
 */
export function sealBatch(count: number, body: Uint8Array): Uint8Array {
  const hdr = 1 + uvarintLength(count);
  const frame = new Uint8Array(hdr + body.length);
  frame[0] = FrameType.Batch;
  let p = 1;
  let v = count;
  while (v >= 0x80) {
    frame[p++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  frame[p] = v;
  frame.set(body, hdr);
  return frame;
}

/** Encodes messages into one batch frame (convenience for tests and tools; a fresh buffer). */
export function encodeBatch<M extends Message>(codec: MessageCodec<M>, messages: readonly M[]): Uint8Array {
  const w = new BinaryWriter();
  for (const m of messages) codec.write(w, m);
  return sealBatch(messages.length, w.finish());
}

/**
 * Decodes a whole batch frame into `out` (cleared first), all or nothing. Message payloads are
 * views into `frame` (no copy).
 * @throws MalformedMessageError if the frame is not a batch, its count is impossible, any
 *   message fails to decode, or bytes are left over. `out` is then cleared.
 */
export function decodeBatch<M extends Message>(codec: MessageCodec<M>, frame: Uint8Array, out: M[]): void {
  out.length = 0;
  try {
    const r = new BinaryReader(frame);
    const type = r.u8();
    if (type !== FrameType.Batch) throw new MalformedMessageError(`expected a batch frame, got type ${type}`);
    const count = r.uvarint();
    // Every message takes at least one byte; refuse a count that cannot fit before allocating.
    if (count > r.remaining) throw new MalformedMessageError(`batch claims ${count} messages in ${r.remaining} bytes`);
    for (let i = 0; i < count; i++) out.push(codec.read(r));
    r.expectEnd();
  } catch (err) {
    out.length = 0;
    if (err instanceof MalformedMessageError) throw err;
    // A codec must throw only MalformedMessageError; anything else is treated as malformed input.
    throw new MalformedMessageError(`codec failed: ${(err as Error)?.message ?? String(err)}`);
  }
}
