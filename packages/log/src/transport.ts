/**
 * The network contract: best-effort, unordered-tolerant delivery of protocol messages between
 * replicas. Consensus cores tolerate loss, duplication and reordering, so a transport never
 * retries a message; it only keeps trying to (re)connect.
 */
import type { Message, MessageCodec } from './core.js';
import type { MaybePromise, NodeId } from './types.js';

/** What the runtime gives a transport when it starts. */
export interface TransportHandler<M extends Message = Message> {
  /** The codec of the protocol in use (byte transports need it, in-memory ones may ignore it). */
  readonly codec: MessageCodec<M>;
  /** Called for every message addressed to this node. Must not throw. */
  onMessage(msg: M): void;
}

/** Counters every transport keeps. */
export interface TransportStats {
  /** Messages handed to `send`. */
  readonly sent: number;
  /** Messages delivered to `onMessage`. */
  readonly received: number;
  /** Messages dropped on the way (no link, buffer full, fault injection). */
  readonly dropped: number;
  /** Inputs that failed to decode and were dropped. */
  readonly malformed: number;
}

/**
 * One replica's endpoint on the network.
 *
 * Guarantees (checked by `transportConformance` in `@synod/log/testing`): messages sent to a
 * reachable peer arrive intact, each at most once per send, to the right node; a message to
 * an unknown or unreachable peer is dropped without an error; after `close()` nothing more is
 * delivered.
 */
export interface Transport<M extends Message = Message> {
  /** This node's id. */
  readonly id: NodeId;
  /** Starts accepting messages for this node. */
  start(handler: TransportHandler<M>): MaybePromise<void>;
  /** Sends messages (each to its `to`). Never throws for network reasons; never blocks. */
  send(messages: readonly M[]): void;
  /**
   * Tells the transport where a peer lives (from a configuration's `addresses`). Transports
   * that need no addresses ignore it.
   */
  setPeerAddress?(id: NodeId, address: string): void;
  /** Counters since start. */
  stats(): TransportStats;
  /** Stops delivery and releases resources. */
  close(): MaybePromise<void>;
}
