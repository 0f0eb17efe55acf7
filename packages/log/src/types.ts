/**
 * The data every consensus core, storage and transport of synod agrees on.
 *
 * Both protocols share these words: a Raft *index* is a Multi-Paxos *slot*, a Raft *term* is
 * the Paxos *ballot* an entry was accepted under (encoded by the Paxos core as one totally
 * ordered number), and `commit` is the commitIndex (Raft) or the chosen watermark (Paxos).
 */

/** Identifies one replica. Any non-empty string without whitespace, e.g. `"n1"`. */
export type NodeId = string;

/** A value that may be returned synchronously or as a promise (storage and transport calls). */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What an {@link Entry} carries.
 * - `Normal`: a client command, opaque to the core (the runtime adds its own header).
 * - `NoOp`: written by a new leader to commit earlier entries (Raft §5.4.2, Paxos gap filling).
 * - `Config`: an encoded {@link Configuration} (Raft thesis §4.3; Paxos reconfiguration).
 */
export const EntryType = {
  Normal: 0,
  NoOp: 1,
  Config: 2,
} as const;
/** One of the {@link EntryType} values. */
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/**
 * One position of the replicated log.
 *
 * Entries are immutable once created: cores, storages and transports never mutate `data`,
 * so one buffer can travel from the proposer to storage and over the wire without copies.
 */
export interface Entry {
  /** 1-based log index (Raft) or slot number (Paxos). */
  readonly index: number;
  /** Term (Raft §5.1) or ballot number (Paxos) under which the entry was written. */
  readonly term: number;
  /** See {@link EntryType}. */
  readonly type: EntryType;
  /** Command bytes (`Normal`), empty (`NoOp`), or an encoded configuration (`Config`). */
  readonly data: Uint8Array;
}

/**
 * The state a core must have on stable storage before any message that depends on it leaves
 * (Raft Figure 2 "persistent state"; a Paxos acceptor's promise).
 */
export interface HardState {
  /** currentTerm (Raft) or the highest promised ballot (Paxos). Never decreases. */
  readonly term: number;
  /** votedFor in `term` (Raft); for Paxos, the owner of the promised ballot (`term` is its round); or `null`. */
  readonly vote: NodeId | null;
  /** commitIndex (Raft) or chosen watermark (Paxos) known when persisted; never decreases. */
  readonly commit: number;
}

/** The hard state of a node that has never run. */
export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: null, commit: 0 });

/**
 * A cluster membership (Raft thesis ch. 4). While `outgoingVoters` is present the
 * configuration is *joint* (C_old,new, thesis §4.3): every decision needs a quorum of
 * `voters` and a quorum of `outgoingVoters`.
 */
export interface Configuration {
  /** Voting members (C_new while joint). */
  readonly voters: readonly NodeId[];
  /** Non-voting members that receive the log but never vote or campaign. */
  readonly learners: readonly NodeId[];
  /** C_old while a joint change is in flight; absent otherwise. */
  readonly outgoingVoters?: readonly NodeId[];
  /**
   * Optional network addresses of members (e.g. `ws://127.0.0.1:7001`), carried through the
   * log so every replica can reach a member added at run time (as hashicorp/raft's Server.Address).
   */
  readonly addresses?: Readonly<Record<NodeId, string>>;
}

/** The configuration of a node that knows no members yet (a server waiting to be added). */
export const EMPTY_CONFIGURATION: Configuration = Object.freeze({ voters: [], learners: [] });

/** Describes the state a snapshot stands for. */
export interface SnapshotMeta {
  /** Index (slot) of the last entry the snapshot includes. */
  readonly index: number;
  /** Term (ballot) of that entry. */
  readonly term: number;
  /** The newest configuration at or below `index`. */
  readonly config: Configuration;
}

/**
 * A point-in-time image of the state machine (plus the runtime's session table), standing for
 * every entry up to `meta.index` (Raft §7).
 */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** Opaque bytes produced by the runtime from `StateMachine.snapshot()`. */
  readonly data: Uint8Array;
}

/** Everything a {@link Storage} hands back when a node restarts. */
export interface PersistedState {
  readonly hardState: HardState;
  /** The latest snapshot, or `null` if none was ever taken or installed. */
  readonly snapshot: Snapshot | null;
  /**
   * Stored entries above the snapshot, ascending by index. Raft logs are contiguous; Paxos logs
   * may have gaps (slots nobody accepted yet).
   */
  readonly entries: readonly Entry[];
}

/**
 * One atomic, durable write (a single transaction). Applied in this order:
 * `truncateFrom`, `compactTo`, `snapshot`, `entries`, `hardState`.
 * Absent fields leave the stored value unchanged.
 */
export interface PersistBatch {
  /** New hard state; replaces the stored one. */
  readonly hardState?: HardState | null;
  /** Delete every entry with `index >= truncateFrom` (a conflicting Raft suffix). */
  readonly truncateFrom?: number | null;
  /** Delete every entry with `index <= compactTo` (the log prefix a snapshot now covers). */
  readonly compactTo?: number | null;
  /** Replace the stored snapshot. */
  readonly snapshot?: Snapshot | null;
  /** Insert or replace these entries by index (upsert; Paxos may leave gaps). */
  readonly entries?: readonly Entry[];
}
