/**
 * The pure-core contract (the etcd-io/raft RawNode / OmniPaxos shape): a consensus core is a
 * deterministic state machine with no I/O, timers, promises, clock or ambient randomness.
 * Time arrives as `tick()`, peers' messages as `step()`, and everything the core wants done
 * comes out of `ready()` to be carried out by the runtime ({@link ReplicatedLog}) in order.
 */
import type { BinaryReader, BinaryWriter } from './binary.js';
import type { MembershipChange } from './config.js';
import type { SynodError } from './errors.js';
import type { Random } from './random.js';
import type { Configuration, Entry, HardState, NodeId, PersistedState, Snapshot } from './types.js';

/**
 * The envelope every protocol message has. Each protocol defines its own union of message
 * shapes extending it, and a {@link MessageCodec} that turns them into bytes.
 */
export interface Message {
  /** Protocol-defined message type tag. */
  readonly type: number;
  /** Sender. */
  readonly from: NodeId;
  /** Addressee. */
  readonly to: NodeId;
}

/**
 * Binary codec of one protocol's messages, used by byte-oriented transports. Writing many
 * messages into one writer lets a transport batch them into one frame.
 */
export interface MessageCodec<M extends Message = Message> {
  /** Appends `msg` to `w`. */
  write(w: BinaryWriter, msg: M): void;
  /**
   * Reads one message. Throws {@link MalformedMessageError} on invalid input (never another
   * error type), so transports can drop and count it. Payloads may be views into the input.
   */
  read(r: BinaryReader): M;
}

/** Read consistency a core can serve an index for. `stale` reads never reach the core. */
export type CoreReadMode = 'linearizable' | 'lease';

/**
 * The answer to {@link ConsensusCore.read}: either the read index (the caller may serve the
 * read once its state machine has applied `index`), or the error that refused it.
 */
export type ReadState =
  | { readonly id: number; readonly index: number; readonly error?: undefined }
  | { readonly id: number; readonly error: SynodError; readonly index?: undefined };

/** The role a node plays right now (Raft §5.1 and §9.6; a Paxos leader is the one with a phase-1 quorum). */
export type Role = 'leader' | 'candidate' | 'precandidate' | 'follower' | 'learner';

/** A read-only summary of a core, for status pages, tests and the runtime. */
export interface CoreStatus {
  readonly id: NodeId;
  readonly role: Role;
  /** currentTerm (Raft) or the promised ballot (Paxos), as stored in {@link HardState.term}. */
  readonly term: number;
  /** Who this node believes leads, or `null`. */
  readonly leader: NodeId | null;
  /** commitIndex (Raft) / chosen watermark (Paxos). */
  readonly commitIndex: number;
  /** lastApplied: the highest index handed to the runtime and advanced. */
  readonly appliedIndex: number;
  /** Index of the last entry in the log (including the snapshot's index if the log is empty). */
  readonly lastIndex: number;
  /** Index covered by the latest snapshot (0 if none). */
  readonly snapshotIndex: number;
  /** The configuration in effect: the newest one in the log, committed or not. */
  readonly config: Configuration;
  /** True while a leadership transfer led by this node is in progress. */
  readonly transferring: boolean;
  /** Messages dropped because they were invalid for this core (counted, never thrown). */
  readonly droppedMessages: number;
}

/**
 * Work the runtime must do, in this order (Raft thesis §10.2.1; etcd `Ready`):
 * 1. persist `truncateFrom`, `compactTo`, `snapshot`, `entries`, `hardState` in ONE atomic
 *    `Storage.persist` call;
 * 2. send `messages` (when `sendBeforePersist` is set, they may go before step 1);
 * 3. if `snapshot` is newer than the state machine, restore the state machine from it;
 * 4. apply `committed` in order;
 * 5. serve `reads`;
 * 6. call `advance(ready)`.
 */
export interface Ready<M extends Message = Message> {
  /** Changed hard state to persist, or `null` if unchanged. */
  readonly hardState: HardState | null;
  /** Delete stored entries with index >= this before writing `entries`, or `null`. */
  readonly truncateFrom: number | null;
  /** Delete stored entries with index <= this, or `null`. */
  readonly compactTo: number | null;
  /** A snapshot to persist (taken locally or received from the leader), or `null`. */
  readonly snapshot: Snapshot | null;
  /** Entries to persist (upsert by index). */
  readonly entries: readonly Entry[];
  /** Messages to send once the above is durable (or before, see `sendBeforePersist`). */
  readonly messages: readonly M[];
  /**
   * When true, `messages` do not depend on anything in this Ready's persist batch and the
   * runtime may send them BEFORE persisting, overlapping the local fsync with the network round
   * trip (Raft thesis §10.2.1: a leader may write its log in parallel with replicating it). A
   * core sets it only for a leader whose term and vote (promise) are unchanged in this Ready;
   * the leader still counts its own entries toward a quorum only once `advance` confirms them.
   * Absent means false.
   */
  readonly sendBeforePersist?: boolean;
  /** Newly committed entries to apply, ascending, contiguous from `appliedIndex + 1`. */
  readonly committed: readonly Entry[];
  /** Answers to `read()` calls. */
  readonly reads: readonly ReadState[];
}

/**
 * A deterministic consensus state machine.
 *
 * Between `ready()` and the matching `advance()` the runtime may keep calling `tick`, `step`,
 * `propose` and `read` while it persists; `ready()` is not called again before `advance()`.
 * No method performs I/O or reads a clock; methods that refuse a request throw a
 * {@link SynodError} synchronously and change nothing.
 */
export interface ConsensusCore<M extends Message = Message> {
  readonly id: NodeId;
  /** Advances logical time by one tick (election and heartbeat timeouts are counted in ticks). */
  tick(): void;
  /** Handles one message from a peer. Invalid messages are dropped and counted, never thrown. */
  step(msg: M): void;
  /**
   * Proposes a command. On the leader it is appended; on a follower it is forwarded to the
   * leader when one is known and forwarding is on. Throws NotLeaderError (with leader hint),
   * TransferInProgressError or UncommittedLogFullError.
   */
  propose(data: Uint8Array): void;
  /**
   * Proposes a membership change. Throws NotLeaderError, ConfigChangeInProgressError,
   * InvalidConfigurationError or UnsupportedError.
   */
  proposeMembershipChange(change: MembershipChange): void;
  /**
   * Asks for a read index for request `id` (Raft thesis §6.4 for `linearizable`, §6.4.1 for
   * `lease`). The answer arrives in `Ready.reads`, possibly after a round of heartbeats.
   */
  read(id: number, mode: CoreReadMode): void;
  /** Starts a leadership transfer to `to` (Raft thesis §3.10). Throws NotLeaderError or InvalidArgumentError. */
  transferLeadership(to: NodeId): void;
  /**
   * Tells the core that `data` is a state-machine snapshot at applied index `index`. The core
   * records it, may compact its log up to `index`, and returns both through the next `Ready`.
   * Throws InvalidArgumentError if `index` is above the applied index.
   */
  compact(index: number, data: Uint8Array): void;
  /** Whether `ready()` has anything to do. */
  hasReady(): boolean;
  /** Collects pending work. See {@link Ready} for the order it must be carried out in. */
  ready(): Ready<M>;
  /** Acknowledges that `rd` (the last value of `ready()`) has been carried out. */
  advance(rd: Ready<M>): void;
  /** A read-only summary. */
  status(): CoreStatus;
}

/** What a core is built from. */
export interface CoreInit {
  /** This node's id. */
  readonly id: NodeId;
  /** What the storage returned from `load()` (empty for a new node). */
  readonly state: PersistedState;
  /**
   * The initial membership, used only when `state` holds no configuration (a brand new
   * cluster). A node joining an existing cluster passes none and waits to be contacted.
   */
  readonly bootstrap?: Configuration;
  /** Seeded randomness (election timeouts, backoff). */
  readonly random: Random;
}

/**
 * A consensus protocol as the runtime sees it: a name, a message codec, and a factory of
 * cores. `raft(options)` and `paxos(options)` both return one, so switching protocols is
 * swapping one call.
 */
export interface ConsensusProtocol<M extends Message = Message> {
  /** `'raft'`, `'paxos'`, ... */
  readonly name: string;
  /** Codec of this protocol's messages. */
  readonly codec: MessageCodec<M>;
  /** Builds a core. Throws InvalidConfigurationError for unusable options. */
  create(init: CoreInit): ConsensusCore<M>;
}
