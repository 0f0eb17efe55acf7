/**
 * `WebSocketTransport`: synod peer links over WebSocket (`ws`). Each node listens for inbound
 * connections (incoming traffic) and dials each peer it sends to (outgoing traffic), so every
 * connection carries messages one way. Messages queued for a peer in the same event-loop turn
 * travel in one binary frame encoded with the protocol codec; no JSON anywhere.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  BinaryWriter,
  InvalidArgumentError,
  InvalidConfigurationError,
  isValidNodeId,
  type Message,
  type MessageCodec,
  type NodeId,
  type Transport,
  type TransportHandler,
  type TransportStats,
} from '@synod/log';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import {
  CLOSE_CODE_HEADER,
  CloseCode,
  decodeBatch,
  decodeHelloHeader,
  encodeHelloHeader,
  HELLO_HEADER,
  type Hello,
  MAX_BATCH_HEADER_BYTES,
  PROTOCOL_VERSION,
  sealBatch,
} from './framing.js';

/** Reconnection backoff of outbound links. */
export interface ReconnectOptions {
  /** First retry delay in ms (before jitter). Default 50. */
  readonly initialMs?: number;
  /** Largest retry delay in ms; the delay doubles per failed attempt up to it. Default 5000. */
  readonly maxMs?: number;
}

/** Options of {@link WebSocketTransport}. */
export interface WebSocketTransportOptions {
  /** This node's id. Sent in the hello; inbound messages must be addressed to it. */
  readonly id: NodeId;
  /** Where to listen. Default `{ host: '127.0.0.1', port: 0 }` (port 0 picks a free port). */
  readonly listen?: { readonly host?: string; readonly port?: number };
  /**
   * Peer addresses: node id → `ws://host:port` (or `wss://`, or `host:port`). More can be added
   * later with {@link WebSocketTransport.setPeerAddress}. Default none.
   */
  readonly peers?: Readonly<Record<NodeId, string>>;
  /**
   * Shared secret (at most 1024 UTF-8 bytes): sent in the dialer's hello; an upgrade request
   * whose hello carries another token (or none) is refused with HTTP 401
   * ({@link CloseCode.Unauthorized}) before any WebSocket frame is accepted. Default none (no
   * check: anyone who reaches the port is a peer). Travels in clear text over `ws://`.
   */
  readonly authToken?: string;
  /**
   * This node's cluster (1..256 characters): sent in the dialer's hello; an upgrade request
   * whose hello carries another cluster id, or none, is refused with HTTP 403
   * ({@link CloseCode.WrongCluster}) and counted in `rejected` and `clusterMismatches`, so a node
   * of another cluster (a copied data directory, a reused address) never delivers a message
   * here. Default none: any cluster id, or none, is accepted (and ours is not sent).
   */
  readonly clusterId?: string;
  /**
   * Most inbound connections allowed at once between TCP accept and a completed WebSocket
   * upgrade (the only state an unauthenticated client can hold: a socket and at most 16 KiB of
   * request headers, for at most `helloTimeoutMs`). One more evicts the oldest pending one
   * (HTTP 503, {@link CloseCode.Overloaded}; counted in `rejected` and `handshakeEvictions`),
   * so a flood cannot lock a slow legitimate peer out for long. Default 64.
   */
  readonly maxPendingHandshakes?: number;
  /**
   * Largest frame accepted or sent, in bytes (`ws` `maxPayload`). Applies to authenticated
   * connections only (nothing is read from a connection before its upgrade is accepted). A
   * larger inbound frame closes that connection (code 1009); an outbound message larger than
   * this is dropped and counted in `oversized`. Default 16 MiB.
   */
  readonly maxFrameBytes?: number;
  /** Reconnection backoff (exponential with jitter). */
  readonly reconnect?: ReconnectOptions;
  /**
   * Bound on the bytes queued for one peer while its link is connecting or backpressured
   * (encoded messages not yet handed to the socket). A message that would exceed it is dropped
   * and counted in `dropped` and `queueOverflows`. Default 64 MiB.
   */
  readonly maxQueueBytes?: number;
  /**
   * Bytes handed to a socket but not yet written before the link stops handing it more
   * (backpressure; the rest waits in the peer queue). Default 8 MiB.
   */
  readonly sendHighWaterBytes?: number;
  /**
   * Time an inbound TCP connection has to complete its WebSocket upgrade (request headers with
   * a valid hello), in ms; then it is closed (HTTP 408, {@link CloseCode.HelloTimeout}) and
   * counted in `rejected`. Default 5000.
   */
  readonly helloTimeoutMs?: number;
  /** Time a dial has to complete the WebSocket handshake, in ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /**
   * Every this many ms, each open outbound link is pinged; a link whose previous ping got no
   * pong is closed and redialed (detects half-open TCP connections). 0 disables. Default 10000.
   */
  readonly keepAliveMs?: number;
  /**
   * Called with an error thrown by `handler.onMessage` (a contract violation). The error is
   * caught and counted in `handlerErrors` either way, so it never crashes the process.
   */
  readonly onError?: (err: unknown) => void;
}

/** Counters of a {@link WebSocketTransport} ({@link TransportStats} plus link detail). */
export interface WebSocketTransportStats extends TransportStats {
  /** Batch frames handed to sockets. */
  readonly framesSent: number;
  /** Batch frames received and decoded. */
  readonly framesReceived: number;
  /** Bytes of batch frames handed to sockets. */
  readonly bytesSent: number;
  /** Bytes of frames received (any type, including malformed). */
  readonly bytesReceived: number;
  /** Outbound connections opened. */
  readonly connects: number;
  /** Outbound dials or connections that failed or closed. */
  readonly disconnects: number;
  /**
   * Inbound connections that never became peers, each counted once: refused upgrades (no or bad
   * hello, invalid node id, unsupported version, this node's own id, wrong token, wrong node,
   * wrong cluster), plain HTTP requests, malformed HTTP, upgrades not completed within
   * `helloTimeoutMs`, evictions by `maxPendingHandshakes`, and connections closed by the
   * client before completing the upgrade.
   */
  readonly rejected: number;
  /** Upgrades refused because of the cluster id (also in `rejected`). */
  readonly clusterMismatches: number;
  /** Pending connections evicted because `maxPendingHandshakes` were already pending (also in `rejected`). */
  readonly handshakeEvictions: number;
  /** Inbound connections accepted by TCP and not yet upgraded, right now (at most `maxPendingHandshakes`). */
  readonly pendingHandshakes: number;
  /** Inbound frames larger than `maxFrameBytes` (their connection was closed). */
  readonly oversizedFrames: number;
  /** Outbound messages larger than `maxFrameBytes` (dropped). */
  readonly oversized: number;
  /** Messages dropped because a peer queue was full. */
  readonly queueOverflows: number;
  /** Messages the codec failed to encode (dropped). */
  readonly encodeErrors: number;
  /** Errors thrown by `handler.onMessage` (caught). */
  readonly handlerErrors: number;
  /** Open inbound connections that completed their hello. */
  readonly inboundConnections: number;
  /** Open outbound connections. */
  readonly outboundConnections: number;
}

/** The state of one outbound link, for dashboards and tests. */
export interface PeerLinkInfo {
  readonly id: NodeId;
  readonly url: string;
  /** `idle` (never dialed), `connecting`, `open`, or `waiting` (backing off before a redial). */
  readonly state: 'idle' | 'connecting' | 'open' | 'waiting';
  /** Encoded bytes waiting to be handed to the socket. */
  readonly queuedBytes: number;
  /** Consecutive failed attempts (drives the backoff). */
  readonly attempts: number;
  /** Close code of the last outbound connection (e.g. 4001 when the peer refused our token), or null. */
  readonly lastCloseCode: number | null;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxFrameBytes: 16 * 1024 * 1024,
  initialMs: 50,
  maxMs: 5_000,
  maxQueueBytes: 64 * 1024 * 1024,
  sendHighWaterBytes: 8 * 1024 * 1024,
  helloTimeoutMs: 5_000,
  connectTimeoutMs: 5_000,
  keepAliveMs: 10_000,
  maxPendingHandshakes: 64,
};

/** Close codes of refusals that a retry soon would not fix (they back off to `reconnect.maxMs`). */
const REFUSALS: ReadonlySet<number> = new Set([CloseCode.Unauthorized, CloseCode.BadHello, CloseCode.WrongNode, CloseCode.WrongCluster]);

/** Largest `authToken`, in UTF-8 bytes. */
const MAX_TOKEN_BYTES = 1024;
/** Largest `clusterId`, in characters. */
const MAX_CLUSTER_ID_CHARS = 256;
/** Largest request head (request line and headers) of an upgrade, in bytes (Node's `maxHeaderSize`). */
const MAX_REQUEST_HEAD_BYTES = 16 * 1024;

/** Seal a batch into a frame once its body reaches this many bytes (bounds latency and memory). */
const FRAME_TARGET_BYTES = 1024 * 1024;

/** Zero mask: client frames are sent unmasked-in-effect (no per-byte XOR, no copy). Peers are not browsers. */
const zeroMask = (): void => {};

/**
 * Normalizes a peer address to a WebSocket URL: `ws://…`/`wss://…` are kept, `host:port` gets
 * `ws://`. Returns null if it is not a valid ws(s) URL.
 */
export function normalizePeerUrl(address: string): string | null {
  if (typeof address !== 'string' || address.length === 0) return null;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(address) ? address : `ws://${address}`;
  try {
    const u = new URL(withScheme);
    if ((u.protocol !== 'ws:' && u.protocol !== 'wss:') || u.hostname === '') return null;
    return u.toString();
  } catch {
    return null;
  }
}

function positiveInt(name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw new InvalidConfigurationError(`${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

class PeerLink {
  url: string;
  ws: WebSocket | null = null;
  state: 'idle' | 'connecting' | 'open' | 'waiting' = 'idle';
  timer: NodeJS.Timeout | null = null;
  attempts = 0;
  lastCloseCode: number | null = null;
  /** Messages encoded back to back, not yet sealed into a frame. */
  readonly writer = new BinaryWriter(4096);
  count = 0;
  /** Sealed frames waiting for the socket. */
  frames: Uint8Array[] = [];
  framesHead = 0;
  /** Bytes of `frames` (from framesHead) plus the writer's body. */
  queuedBytes = 0;
  /** Bytes handed to the socket whose write callback has not fired. */
  inflightBytes = 0;
  dirty = false;
  /** A keep-alive ping is outstanding. */
  awaitingPong = false;

  constructor(
    readonly id: NodeId,
    url: string,
  ) {
    this.url = url;
  }

  clearQueue(): number {
    let dropped = this.count;
    this.count = 0;
    this.writer.reset();
    // Frames hold an unknown number of messages each; callers count dropped frames' messages
    // approximately via frameCounts.
    for (let i = this.framesHead; i < this.frames.length; i++) dropped += this.frameCounts[i] ?? 0;
    this.frames = [];
    this.frameCounts = [];
    this.framesHead = 0;
    this.queuedBytes = 0;
    return dropped;
  }

  /** Message count of each sealed frame (parallel to `frames`). */
  frameCounts: number[] = [];
}

interface Inbound {
  ws: WebSocket;
  /** The authenticated sender (from the hello checked at the upgrade). */
  peer: NodeId;
  /** Replaced by a newer connection of the same peer (and closing): later frames are ignored. */
  replaced: boolean;
}

/** An inbound TCP connection that has not completed its WebSocket upgrade. */
interface Pending {
  socket: Duplex;
  timer: NodeJS.Timeout;
  /** Already counted in `rejected`. */
  counted: boolean;
}

/**
 * A {@link Transport} over WebSocket. See the package README for the wire format.
 *
 * @example
 * const t = new WebSocketTransport({ id: 'n1', listen: { port: 7001 }, peers: { n2: 'ws://127.0.0.1:7002' } });
 * await t.start({ codec: raft().codec, onMessage: (m) => core.step(m) });
 * t.send([{ type: 1, from: 'n1', to: 'n2', ... }]);
 */
export class WebSocketTransport<M extends Message = Message> implements Transport<M> {
  /** This node's id. */
  readonly id: NodeId;

  private readonly host: string;
  private readonly listenPort: number;
  private readonly authDigest: Buffer | null;
  private readonly authToken: string | null;
  private readonly clusterId: string | null;
  private readonly maxPendingHandshakes: number;
  private readonly maxFrameBytes: number;
  private readonly maxBody: number;
  private readonly frameTarget: number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly maxQueueBytes: number;
  private readonly highWater: number;
  private readonly helloTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly keepAliveMs: number;
  private keepAliveTimer: NodeJS.Timeout | null = null;
  private readonly onError: ((err: unknown) => void) | undefined;

  private handler: TransportHandler<M> | null = null;
  private codec: MessageCodec<M> | null = null;
  private server: HttpServer | null = null;
  private wss: WebSocketServer | null = null;
  private readonly pending = new Map<Duplex, Pending>();
  /** Hellos accepted by `verifyClient`, picked up when the upgrade completes. */
  private readonly accepted = new WeakMap<IncomingMessage, Hello>();
  private boundPort = 0;
  private started = false;
  private closed = false;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly addresses = new Map<NodeId, string>();
  private readonly inbound = new Set<Inbound>();
  private readonly inboundByPeer = new Map<NodeId, Inbound>();
  private readonly dirtyLinks: PeerLink[] = [];
  private readonly selfQueue: M[] = [];
  private flushScheduled = false;
  private immediate: NodeJS.Immediate | null = null;
  private readonly decoded: M[] = [];
  private isolatedFlag = false;
  private readonly blocked = new Set<NodeId>();

  // Counters.
  private nSent = 0;
  private nReceived = 0;
  private nDropped = 0;
  private nMalformed = 0;
  private nFramesSent = 0;
  private nFramesReceived = 0;
  private nBytesSent = 0;
  private nBytesReceived = 0;
  private nConnects = 0;
  private nDisconnects = 0;
  private nRejected = 0;
  private nClusterMismatches = 0;
  private nHandshakeEvictions = 0;
  private nOversizedFrames = 0;
  private nOversized = 0;
  private nQueueOverflows = 0;
  private nEncodeErrors = 0;
  private nHandlerErrors = 0;

  /**
   * @throws InvalidConfigurationError on an id or peer id that is not a valid node id
   *   (`isValidNodeId` from `@synod/log`), a non-integer or too small size, a backoff with
   *   `maxMs < initialMs`, a peer address that is not a ws(s) URL or host:port, an `authToken`
   *   that is not a string of at most 1024 UTF-8 bytes, or a `clusterId` that is not a string of
   *   1..256 characters.
   */
  constructor(options: WebSocketTransportOptions) {
    if (!isValidNodeId(options.id)) {
      throw new InvalidConfigurationError(`id must be a valid node id (1..128 characters, no whitespace), got ${JSON.stringify(options.id)}`);
    }
    this.id = options.id;
    this.host = options.listen?.host ?? DEFAULTS.host;
    this.listenPort = positiveInt('listen.port', options.listen?.port, DEFAULTS.port, 0);
    if (this.listenPort > 65535) throw new InvalidConfigurationError(`listen.port must be ≤ 65535, got ${this.listenPort}`);
    const token: unknown = options.authToken;
    if (token !== undefined && (typeof token !== 'string' || Buffer.byteLength(token, 'utf8') > MAX_TOKEN_BYTES)) {
      throw new InvalidConfigurationError(`authToken must be a string of at most ${MAX_TOKEN_BYTES} UTF-8 bytes`);
    }
    this.authToken = token ?? null;
    this.authDigest = this.authToken === null ? null : digest(this.authToken);
    const cluster: unknown = options.clusterId;
    if (cluster !== undefined && (typeof cluster !== 'string' || cluster.length === 0 || cluster.length > MAX_CLUSTER_ID_CHARS)) {
      throw new InvalidConfigurationError(`clusterId must be a string of 1..${MAX_CLUSTER_ID_CHARS} characters, got ${JSON.stringify(cluster)}`);
    }
    this.clusterId = cluster ?? null;
    this.maxPendingHandshakes = positiveInt('maxPendingHandshakes', options.maxPendingHandshakes, DEFAULTS.maxPendingHandshakes);
    this.maxFrameBytes = positiveInt('maxFrameBytes', options.maxFrameBytes, DEFAULTS.maxFrameBytes, 1024);
    this.maxBody = this.maxFrameBytes - MAX_BATCH_HEADER_BYTES;
    this.frameTarget = Math.min(FRAME_TARGET_BYTES, this.maxBody);
    this.initialMs = positiveInt('reconnect.initialMs', options.reconnect?.initialMs, DEFAULTS.initialMs);
    this.maxMs = positiveInt('reconnect.maxMs', options.reconnect?.maxMs, Math.max(DEFAULTS.maxMs, this.initialMs));
    if (this.maxMs < this.initialMs) throw new InvalidConfigurationError(`reconnect.maxMs (${this.maxMs}) < reconnect.initialMs (${this.initialMs})`);
    this.maxQueueBytes = positiveInt('maxQueueBytes', options.maxQueueBytes, DEFAULTS.maxQueueBytes);
    this.highWater = positiveInt('sendHighWaterBytes', options.sendHighWaterBytes, DEFAULTS.sendHighWaterBytes);
    this.helloTimeoutMs = positiveInt('helloTimeoutMs', options.helloTimeoutMs, DEFAULTS.helloTimeoutMs);
    this.connectTimeoutMs = positiveInt('connectTimeoutMs', options.connectTimeoutMs, DEFAULTS.connectTimeoutMs);
    this.keepAliveMs = positiveInt('keepAliveMs', options.keepAliveMs, DEFAULTS.keepAliveMs, 0);
    this.onError = options.onError;
    for (const [id, address] of Object.entries(options.peers ?? {})) {
      if (!isValidNodeId(id)) throw new InvalidConfigurationError(`peer id ${JSON.stringify(id)} is not a valid node id`);
      const url = normalizePeerUrl(address);
      if (url === null) throw new InvalidConfigurationError(`peer ${id}: ${JSON.stringify(address)} is not a ws:// URL or host:port`);
      if (id !== this.id) this.addresses.set(id, url);
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Starts listening and delivering inbound messages to `handler.onMessage`. Resolves once the
   * server listens (with port 0, read the chosen port from {@link port}).
   * Rejects with InvalidArgumentError if already started or closed, or with the system error
   * (e.g. `EADDRINUSE`) if the address cannot be bound.
   */
  start(handler: TransportHandler<M>): Promise<void> {
    if (this.closed) return Promise.reject(new InvalidArgumentError(`transport ${this.id} is closed`));
    if (this.started) return Promise.reject(new InvalidArgumentError(`transport ${this.id} already started`));
    this.started = true;
    this.handler = handler;
    this.codec = handler.codec;
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      skipUTF8Validation: true,
      verifyClient: (info: { req: IncomingMessage }, cb: VerifyCallback) => this.verifyUpgrade(info.req, cb),
    });
    const server = createServer({ maxHeaderSize: MAX_REQUEST_HEAD_BYTES });
    this.wss = wss;
    this.server = server;
    server.on('connection', (socket: Socket) => this.onTcpConnection(socket));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on('request', (req: IncomingMessage, res) => {
      // A plain HTTP request: this port only speaks WebSocket.
      this.countRejected(req.socket);
      res.writeHead(426, { Connection: 'close', 'Content-Type': 'text/plain', [CLOSE_CODE_HEADER]: String(CloseCode.BadHello) });
      res.end('synod peer port: WebSocket upgrade required\n');
    });
    server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      // Malformed HTTP or request headers above MAX_REQUEST_HEAD_BYTES; counted when the socket closes.
      if (socket.writable && err.code !== 'ECONNRESET') {
        const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      }
      socket.destroy();
    });
    return new Promise<void>((resolve, reject) => {
      const onListenError = (err: Error): void => {
        this.server = null;
        this.wss = null;
        this.started = false;
        this.handler = null;
        server.close();
        wss.close();
        reject(err);
      };
      server.once('error', onListenError);
      server.once('listening', () => {
        server.off('error', onListenError);
        // Later server errors (rare: the listening socket failing) must not crash the process.
        server.on('error', (err) => this.reportError(err));
        this.boundPort = (server.address() as AddressInfo).port;
        if (this.keepAliveMs > 0) {
          this.keepAliveTimer = setInterval(() => this.keepAlive(), this.keepAliveMs);
          this.keepAliveTimer.unref();
        }
        resolve();
      });
      server.listen(this.listenPort, this.host);
    });
  }

  /** The port the server listens on (0 before `start` resolves). */
  get port(): number {
    return this.boundPort;
  }

  /** This node's address for peers (`ws://host:port`), or null before `start` resolves. */
  get address(): string | null {
    if (this.boundPort === 0) return null;
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `ws://${h}:${this.boundPort}`;
  }

  /**
   * Stops listening, closes every connection (code 1001), cancels redials and drops queued
   * messages (counted). Nothing is delivered afterwards. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
    this.flushScheduled = false;
    this.nDropped += this.selfQueue.length;
    this.selfQueue.length = 0;
    for (const link of this.links.values()) this.shutLink(link);
    this.links.clear();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.socket.destroy();
    }
    this.pending.clear();
    for (const conn of this.inbound) conn.ws.terminate();
    this.inbound.clear();
    this.inboundByPeer.clear();
    const server = this.server;
    this.server = null;
    this.wss?.close();
    this.wss = null;
    this.handler = null;
    if (server) {
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await done;
    }
  }

  // ---------------------------------------------------------------- peers

  /**
   * Sets (or changes) where peer `id` lives: a `ws://`/`wss://` URL or `host:port`. A changed
   * address closes the current link; the next message redials. Never throws (it is called by
   * the runtime from configuration entries): an invalid address or node id is ignored.
   * @returns whether the address was accepted.
   */
  setPeerAddress(id: NodeId, address: string): boolean {
    if (id === this.id) return true;
    if (!isValidNodeId(id)) return false;
    const url = normalizePeerUrl(address);
    if (url === null) return false;
    if (this.addresses.get(id) === url) return true;
    this.addresses.set(id, url);
    const link = this.links.get(id);
    if (link) {
      link.url = url;
      if (link.ws) this.dropConnection(link);
      if (link.timer) clearTimeout(link.timer);
      link.timer = null;
      link.attempts = 0;
      link.state = 'idle';
      if (link.queuedBytes > 0) this.markDirty(link);
    }
    return true;
  }

  /** Forgets peer `id`: closes its link and drops its queued messages (counted). */
  removePeer(id: NodeId): void {
    this.addresses.delete(id);
    const link = this.links.get(id);
    if (link) {
      this.shutLink(link);
      this.links.delete(id);
    }
  }

  /** The peers this transport knows an address for: id → URL. */
  peers(): Record<NodeId, string> {
    return Object.fromEntries(this.addresses);
  }

  /** State of every outbound link created so far. */
  linkStates(): PeerLinkInfo[] {
    return [...this.links.values()].map((l) => ({
      id: l.id,
      url: l.url,
      state: l.state,
      queuedBytes: l.queuedBytes,
      attempts: l.attempts,
      lastCloseCode: l.lastCloseCode,
    }));
  }

  // ---------------------------------------------------------------- faults

  /**
   * Fault injection: drops every inbound and outbound message (counted as dropped) until
   * {@link heal}. Connections stay up, so healing is instant.
   */
  isolate(): void {
    this.isolatedFlag = true;
  }

  /** Ends {@link isolate} and unblocks every peer. */
  heal(): void {
    this.isolatedFlag = false;
    this.blocked.clear();
  }

  /** Whether {@link isolate} is in force. */
  get isolated(): boolean {
    return this.isolatedFlag;
  }

  /** Fault injection: drops messages to and from peer `id` (counted as dropped) until unblocked. */
  blockPeer(id: NodeId): void {
    this.blocked.add(id);
  }

  /** Ends {@link blockPeer} for `id`. */
  unblockPeer(id: NodeId): void {
    this.blocked.delete(id);
  }

  // ---------------------------------------------------------------- sending

  /**
   * Queues each message for its `to`; messages queued for a peer in the same event-loop turn
   * leave in one frame (flushed on `setImmediate`). Never throws and never blocks: a message to
   * a peer without an address, while isolated or blocked, after `close`, before `start`, too
   * large, or beyond the peer's queue bound is dropped and counted.
   */
  send(messages: readonly M[]): void {
    const n = messages.length;
    this.nSent += n;
    if (this.closed || this.codec === null || this.isolatedFlag) {
      this.nDropped += n;
      return;
    }
    for (let i = 0; i < n; i++) {
      const m = messages[i]!;
      const to = m.to;
      if (to === this.id) {
        this.selfQueue.push(m);
        this.scheduleFlush();
        continue;
      }
      if (this.blocked.size > 0 && this.blocked.has(to)) {
        this.nDropped++;
        continue;
      }
      let link = this.links.get(to);
      if (link === undefined) {
        const url = this.addresses.get(to);
        if (url === undefined) {
          this.nDropped++;
          continue;
        }
        link = new PeerLink(to, url);
        this.links.set(to, link);
      }
      this.enqueue(link, m);
    }
  }

  private enqueue(link: PeerLink, m: M): void {
    const w = link.writer;
    const start = w.pos;
    try {
      this.codec!.write(w, m);
    } catch (err) {
      w.pos = start;
      this.nEncodeErrors++;
      this.nDropped++;
      this.reportError(err);
      return;
    }
    const size = w.pos - start;
    if (size > this.maxBody) {
      w.pos = start;
      this.nOversized++;
      this.nDropped++;
      return;
    }
    if (link.queuedBytes + size > this.maxQueueBytes) {
      w.pos = start;
      this.nQueueOverflows++;
      this.nDropped++;
      return;
    }
    if (w.pos > this.maxBody) {
      // This message does not fit in the current batch: seal the batch without it and start a
      // new one with it.
      const bytes = w.finish().slice(start);
      w.pos = start;
      this.seal(link);
      w.raw(bytes);
    }
    link.count++;
    link.queuedBytes += size;
    if (w.pos >= this.frameTarget) this.seal(link);
    this.markDirty(link);
  }

  private seal(link: PeerLink): void {
    if (link.count === 0) return;
    const bodyLen = link.writer.pos;
    const frame = sealBatch(link.count, link.writer.finish());
    link.queuedBytes += frame.length - bodyLen;
    link.frames.push(frame);
    link.frameCounts.push(link.count);
    link.count = 0;
    link.writer.reset();
  }

  private markDirty(link: PeerLink): void {
    if (!link.dirty) {
      link.dirty = true;
      this.dirtyLinks.push(link);
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.immediate = setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    this.immediate = null;
    if (this.closed) return;
    const dirty = this.dirtyLinks;
    for (let i = 0; i < dirty.length; i++) {
      const link = dirty[i]!;
      link.dirty = false;
      if (this.links.get(link.id) !== link) continue; // removed meanwhile
      this.seal(link);
      this.pump(link);
    }
    dirty.length = 0;
    if (this.selfQueue.length > 0) {
      const self = this.selfQueue.splice(0, this.selfQueue.length);
      for (const m of self) {
        if (this.closed) {
          this.nDropped++;
          continue;
        }
        this.deliver(m);
      }
    }
  };

  /** Hands queued frames to the socket while under the high-water mark; dials if needed. */
  private pump(link: PeerLink): void {
    if (link.state === 'idle') {
      this.dial(link);
      return;
    }
    if (link.state !== 'open' || link.ws === null) return;
    const ws = link.ws;
    while (link.framesHead < link.frames.length && link.inflightBytes < this.highWater) {
      const frame = link.frames[link.framesHead]!;
      const count = link.frameCounts[link.framesHead]!;
      link.frames[link.framesHead] = EMPTY;
      link.framesHead++;
      link.queuedBytes -= frame.length;
      link.inflightBytes += frame.length;
      this.nFramesSent++;
      this.nBytesSent += frame.length;
      ws.send(frame, { binary: true }, (err) => {
        // The socket failed before writing the frame: its messages are lost (best effort).
        if (err) this.nDropped += count;
        if (link.ws !== ws) return;
        link.inflightBytes -= frame.length;
        if (link.framesHead < link.frames.length) this.markDirty(link);
      });
    }
    if (link.framesHead === link.frames.length) {
      link.frames.length = 0;
      link.frameCounts.length = 0;
      link.framesHead = 0;
    }
  }

  private dial(link: PeerLink): void {
    if (this.closed) return;
    link.state = 'connecting';
    let ws: WebSocket;
    const hello = encodeHelloHeader({ version: PROTOCOL_VERSION, from: this.id, to: link.id, authToken: this.authToken, clusterId: this.clusterId });
    try {
      ws = new WebSocket(link.url, {
        perMessageDeflate: false,
        maxPayload: this.maxFrameBytes,
        handshakeTimeout: this.connectTimeoutMs,
        generateMask: zeroMask,
        skipUTF8Validation: true,
        headers: { [HELLO_HEADER]: hello },
      });
    } catch (err) {
      // An URL `ws` refuses synchronously; retry later like any failure.
      this.reportError(err);
      this.onLinkDown(link, null);
      return;
    }
    link.ws = ws;
    /** The listener refused the upgrade with this close code (from its response header). */
    let refusal: number | null = null;
    ws.on('unexpected-response', (_req, res) => {
      const code = Number(res.headers[CLOSE_CODE_HEADER]);
      refusal = Number.isInteger(code) && code >= 4000 && code < 5000 ? code : null;
      res.resume();
      // Aborts the handshake: 'error' then 'close' (1006) follow; the refusal code is reported.
      ws.terminate();
    });
    ws.on('open', () => {
      if (link.ws !== ws || this.closed) return;
      link.state = 'open';
      link.attempts = 0;
      this.nConnects++;
      this.pump(link);
    });
    ws.on('message', () => {
      // The listener never sends data on our outbound connection; ignore anything it does.
      this.nMalformed++;
    });
    ws.on('pong', () => {
      link.awaitingPong = false;
    });
    ws.on('error', () => {
      // Followed by 'close'; the failure is handled there.
    });
    ws.on('close', (code) => {
      if (link.ws !== ws) return;
      const c = refusal ?? code;
      link.lastCloseCode = c;
      this.onLinkDown(link, c);
    });
  }

  private keepAlive(): void {
    for (const link of this.links.values()) {
      const ws = link.ws;
      if (link.state !== 'open' || ws === null) continue;
      if (link.awaitingPong) {
        // No pong for a whole period: the connection is dead or hopelessly stuck.
        link.lastCloseCode = null;
        this.dropConnection(link);
        this.onLinkDown(link, null);
        continue;
      }
      link.awaitingPong = true;
      ws.ping();
    }
  }

  private onLinkDown(link: PeerLink, code: number | null): void {
    link.ws = null;
    link.awaitingPong = false;
    link.inflightBytes = 0;
    if (this.closed || this.links.get(link.id) !== link) {
      link.state = 'idle';
      return;
    }
    this.nDisconnects++;
    link.state = 'waiting';
    // A refusal (bad token, bad hello, wrong node, wrong cluster) will not fix itself quickly:
    // back off to the maximum. A timeout, an eviction or a replacement retries as usual.
    if (code !== null && REFUSALS.has(code)) link.attempts = 30;
    else link.attempts++;
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(30, link.attempts - 1));
    const delay = Math.max(1, Math.round(base / 2 + (Math.random() * base) / 2));
    link.timer = setTimeout(() => {
      link.timer = null;
      if (this.closed || this.links.get(link.id) !== link) return;
      this.dial(link);
    }, delay);
  }

  private dropConnection(link: PeerLink): void {
    const ws = link.ws;
    link.ws = null;
    link.inflightBytes = 0;
    if (ws) {
      ws.removeAllListeners('open');
      ws.on('error', () => {});
      ws.terminate();
    }
  }

  private shutLink(link: PeerLink): void {
    if (link.timer) clearTimeout(link.timer);
    link.timer = null;
    this.dropConnection(link);
    link.state = 'idle';
    this.nDropped += link.clearQueue();
  }

  // ---------------------------------------------------------------- receiving

  /** A TCP connection accepted: pending until its upgrade completes, bounded in number and time. */
  private onTcpConnection(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.pending.size >= this.maxPendingHandshakes) {
      // Evict the oldest: a flood must outpace a legitimate peer's one round trip to lock it out.
      const oldest = this.pending.values().next().value as Pending;
      this.nHandshakeEvictions++;
      this.abortPending(oldest, 503, CloseCode.Overloaded);
    }
    const p: Pending = {
      socket,
      counted: false,
      timer: setTimeout(() => this.abortPending(p, 408, CloseCode.HelloTimeout), this.helloTimeoutMs),
    };
    this.pending.set(socket, p);
    socket.once('close', () => {
      if (this.pending.get(socket) !== p) return;
      clearTimeout(p.timer);
      this.pending.delete(socket);
      // Refused by `ws` (not a valid WebSocket upgrade), malformed HTTP, or the client gave up.
      if (!p.counted) this.nRejected++;
    });
  }

  /** Counts a pending connection as rejected (once). */
  private countRejected(socket: Duplex): void {
    const p = this.pending.get(socket);
    if (p === undefined || p.counted) return;
    p.counted = true;
    this.nRejected++;
  }

  /** Ends a pending connection with an HTTP status and our close code, counted in `rejected`. */
  private abortPending(p: Pending, status: number, code: number): void {
    clearTimeout(p.timer);
    this.pending.delete(p.socket);
    if (!p.counted) {
      p.counted = true;
      this.nRejected++;
    }
    const socket = p.socket;
    if (socket.writable) {
      socket.once('finish', () => socket.destroy());
      socket.end(`HTTP/1.1 ${status} ${httpReason(status)}\r\nConnection: close\r\n${CLOSE_CODE_HEADER}: ${code}\r\nContent-Length: 0\r\n\r\n`);
      // A client that does not read must not keep the socket: at most a moment to flush.
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const wss = this.wss;
    if (this.closed || wss === null) {
      socket.destroy();
      return;
    }
    // `ws` checks the WebSocket headers, then calls verifyUpgrade (synchronously); a refusal
    // answers with an HTTP error and closes the socket: no frame is ever read before this point.
    wss.handleUpgrade(req, socket, head, (ws) => {
      const p = this.pending.get(socket);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(socket);
      }
      this.onInbound(ws, req);
    });
  }

  /**
   * `verifyClient` of the WebSocket server: checks the hello of the upgrade request (version,
   * token in constant time, cluster id, recipient, sender) before the WebSocket is accepted.
   */
  private verifyUpgrade(req: IncomingMessage, cb: VerifyCallback): void {
    const refuse = (status: number, code: number, reason: string): void => {
      this.countRejected(req.socket);
      cb(false, status, reason, { [CLOSE_CODE_HEADER]: String(code) });
    };
    if (this.closed) return refuse(503, CloseCode.GoingAway, 'closing');
    let hello: Hello;
    try {
      hello = decodeHelloHeader(req.headers[HELLO_HEADER]);
    } catch {
      this.nMalformed++;
      return refuse(400, CloseCode.BadHello, 'bad hello');
    }
    if (hello.version !== PROTOCOL_VERSION) return refuse(400, CloseCode.BadHello, `unsupported version ${hello.version}`);
    if (this.authDigest !== null) {
      if (hello.authToken === null || !timingSafeEqual(digest(hello.authToken), this.authDigest)) {
        return refuse(401, CloseCode.Unauthorized, 'unauthorized');
      }
    }
    if (this.clusterId !== null && hello.clusterId !== this.clusterId) {
      this.nClusterMismatches++;
      const theirs = hello.clusterId === null ? 'no cluster id' : `cluster ${JSON.stringify(hello.clusterId)}`;
      return refuse(403, CloseCode.WrongCluster, `this node belongs to cluster ${JSON.stringify(this.clusterId)}, the dialer to ${theirs}`);
    }
    if (hello.to !== this.id) return refuse(421, CloseCode.WrongNode, `this is ${this.id}, not ${hello.to}`);
    // Nobody else may speak as this node (its messages to itself never use a connection): a
    // misconfigured duplicate of this node, or a spoof. Its messages would all be refused anyway.
    if (hello.from === this.id) return refuse(400, CloseCode.BadHello, `hello claims this node's own id ${this.id}`);
    this.accepted.set(req, hello);
    cb(true);
  }

  private onInbound(ws: WebSocket, req: IncomingMessage): void {
    const hello = this.accepted.get(req);
    this.accepted.delete(req);
    if (this.closed || hello === undefined) {
      ws.terminate();
      return;
    }
    const conn: Inbound = { ws, peer: hello.from, replaced: false };
    this.inbound.add(conn);
    const previous = this.inboundByPeer.get(conn.peer);
    this.inboundByPeer.set(conn.peer, conn);
    if (previous && previous !== conn) {
      previous.replaced = true;
      safeClose(previous.ws, CloseCode.Replaced, 'replaced by a newer connection');
    }
    ws.on('message', (data, isBinary) => this.onFrame(conn, data, isBinary));
    ws.on('error', (err: Error & { code?: string }) => {
      // `ws` reports invalid WebSocket framing (then closes the connection); socket errors just close.
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.nOversizedFrames++;
      else if (err.code?.startsWith('WS_ERR_')) this.nMalformed++;
    });
    ws.on('close', () => {
      this.inbound.delete(conn);
      if (this.inboundByPeer.get(conn.peer) === conn) this.inboundByPeer.delete(conn.peer);
    });
  }

  private onFrame(conn: Inbound, data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    const frame = toBytes(data);
    this.nBytesReceived += frame.length;
    if (conn.replaced) return;
    if (!isBinary) {
      this.nMalformed++;
      return;
    }
    const out = this.decoded;
    try {
      decodeBatch(this.codec!, frame, out);
    } catch {
      this.nMalformed++;
      return;
    }
    this.nFramesReceived++;
    const peer = conn.peer;
    const drop = this.isolatedFlag || (this.blocked.size > 0 && this.blocked.has(peer));
    const n = out.length;
    for (let i = 0; i < n; i++) {
      const m = out[i]!;
      out[i] = undefined as unknown as M;
      if (drop || this.closed) {
        this.nDropped++;
      } else if (m.from !== peer) {
        // A message claiming another sender than the authenticated hello: refuse it.
        this.nMalformed++;
      } else if (m.to !== this.id) {
        this.nDropped++;
      } else {
        this.deliver(m);
      }
    }
    out.length = 0;
  }

  private deliver(m: M): void {
    const h = this.handler;
    if (h === null) {
      this.nDropped++;
      return;
    }
    this.nReceived++;
    try {
      h.onMessage(m);
    } catch (err) {
      this.nHandlerErrors++;
      this.reportError(err);
    }
  }

  private reportError(err: unknown): void {
    if (!this.onError) return;
    try {
      this.onError(err);
    } catch {
      // An error reporter must not take the transport down.
    }
  }

  // ---------------------------------------------------------------- stats

  /** Counters since construction. */
  stats(): WebSocketTransportStats {
    let outbound = 0;
    for (const l of this.links.values()) if (l.state === 'open') outbound++;
    return {
      sent: this.nSent,
      received: this.nReceived,
      dropped: this.nDropped,
      malformed: this.nMalformed,
      framesSent: this.nFramesSent,
      framesReceived: this.nFramesReceived,
      bytesSent: this.nBytesSent,
      bytesReceived: this.nBytesReceived,
      connects: this.nConnects,
      disconnects: this.nDisconnects,
      rejected: this.nRejected,
      clusterMismatches: this.nClusterMismatches,
      handshakeEvictions: this.nHandshakeEvictions,
      pendingHandshakes: this.pending.size,
      oversizedFrames: this.nOversizedFrames,
      oversized: this.nOversized,
      queueOverflows: this.nQueueOverflows,
      encodeErrors: this.nEncodeErrors,
      handlerErrors: this.nHandlerErrors,
      inboundConnections: this.inboundByPeer.size,
      outboundConnections: outbound,
    };
  }
}

const EMPTY = new Uint8Array(0);

/** The callback form of `ws`'s `verifyClient`. */
type VerifyCallback = (result: boolean, code?: number, message?: string, headers?: Record<string, string>) => void;

function httpReason(status: number): string {
  switch (status) {
    case 408:
      return 'Request Timeout';
    case 503:
      return 'Service Unavailable';
    default:
      return 'Error';
  }
}

/** Closes with a code and a reason trimmed to the 123 bytes a close frame allows; never throws. */
function safeClose(ws: WebSocket, code: number, reason: string): void {
  let r = Buffer.from(reason, 'utf8');
  if (r.length > 123) r = r.subarray(0, 120);
  try {
    ws.close(code, r.toString('utf8').replace(/\uFFFD+$/, ''));
  } catch {
    ws.terminate();
  }
}

/** A received `ws` payload as one Uint8Array view (no copy for the usual single Buffer). */
function toBytes(data: RawData): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return new Uint8Array(data);
}
