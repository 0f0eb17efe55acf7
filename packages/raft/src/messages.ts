/**
 * The messages Raft servers exchange (Raft paper Figure 2, thesis ch. 3, 4, 6, 9), as plain
 * objects. Entry payloads are never copied: an AppendEntries message carries the very `Entry`
 * objects of the leader's log, and the codec decodes payloads as views into the frame.
 */
import type { Entry, Message, NodeId, SnapshotMeta } from '@synod/log';

/**
 * The largest term a Raft message may carry and a core may reach: 2^52.
 *
 * Terms are encoded as unsigned varints of safe integers, so `term + 1` must stay exact and
 * encodable (at most 2^53 - 1). A term above this bound could not be incremented safely, so a
 * message carrying one is invalid input: `step()` drops and counts it, with no effect. A core
 * never produces a term above it either: at `MAX_TERM` it refuses to campaign (pre-vote,
 * election, TimeoutNow) instead of overflowing; its current leader, if any, keeps leading. No
 * honest cluster gets near it (2^52 elections at one per millisecond take over 140,000 years):
 * reaching it means something forged or corrupted a term.
 */
export const MAX_TERM = 2 ** 52;

/** Type tags of {@link RaftMessage}. */
export const RaftMessageType = {
  /** RequestVote (§5.2). */
  Vote: 1,
  /** Reply to RequestVote. */
  VoteResponse: 2,
  /** Pre-vote request (thesis §9.6): "would you vote for me at term + 1?". */
  PreVote: 3,
  /** Reply to a pre-vote request. */
  PreVoteResponse: 4,
  /** AppendEntries (§5.3). */
  Append: 5,
  /** Reply to AppendEntries. */
  AppendResponse: 6,
  /** Heartbeat: carries the commit index and a read-confirmation sequence (thesis §6.4). */
  Heartbeat: 7,
  /** Reply to a heartbeat. */
  HeartbeatResponse: 8,
  /** One chunk of InstallSnapshot (§7). */
  InstallSnapshot: 9,
  /** Acknowledges snapshot chunks received so far. */
  SnapshotResponse: 10,
  /** TimeoutNow (thesis §3.10): start an election now, for a leadership transfer. */
  TimeoutNow: 11,
  /** Proposals forwarded by a follower to the leader. */
  Propose: 12,
  /** A follower asks the leader for a read index (thesis §6.4). */
  ReadIndex: 13,
  /** The leader's answer to {@link ReadIndexRequest}. */
  ReadIndexResponse: 14,
} as const;
/** One of the {@link RaftMessageType} values. */
export type RaftMessageType = (typeof RaftMessageType)[keyof typeof RaftMessageType];

/** RequestVote or a pre-vote request (Raft §5.2, §5.4.1; thesis §9.6). */
export interface VoteRequest extends Message {
  readonly type: typeof RaftMessageType.Vote | typeof RaftMessageType.PreVote;
  /** The candidate's term (for a pre-vote: the term it would campaign in, currentTerm + 1). */
  readonly term: number;
  /** Index of the candidate's last log entry. */
  readonly lastLogIndex: number;
  /** Term of the candidate's last log entry. */
  readonly lastLogTerm: number;
  /**
   * True when the election was started by TimeoutNow (leadership transfer, thesis §3.10): voters
   * then disregard the "a leader is in contact" rule of check-quorum.
   */
  readonly transfer: boolean;
}

/** Reply to a {@link VoteRequest}. */
export interface VoteResponse extends Message {
  readonly type: typeof RaftMessageType.VoteResponse | typeof RaftMessageType.PreVoteResponse;
  /** The request's term when granted, else the voter's current term. */
  readonly term: number;
  readonly granted: boolean;
}

/** AppendEntries (Raft §5.3); a leader sends it with no entries to carry a new commit index. */
export interface AppendRequest extends Message {
  readonly type: typeof RaftMessageType.Append;
  /** Leader's term. */
  readonly term: number;
  /** Index of the entry immediately preceding `entries`. */
  readonly prevLogIndex: number;
  /** Term of that entry. */
  readonly prevLogTerm: number;
  /** Entries `prevLogIndex + 1 ...` (contiguous, terms non-decreasing and <= `term`). */
  readonly entries: readonly Entry[];
  /** Leader's commitIndex. */
  readonly leaderCommit: number;
}

/**
 * Reply to {@link AppendRequest}.
 * - success: `index` is the index of the last entry the follower now holds that matches the
 *   leader's log (prevLogIndex + number of entries, or the follower's commitIndex).
 * - failure: `index` is the rejected prevLogIndex; `conflictTerm` is the follower's term at that
 *   index (0 if the follower's log is shorter) and `conflictIndex` the first index the follower
 *   holds with that term (or its lastIndex + 1 when shorter): the fast-backtracking hint that
 *   lets the leader skip a whole term per round trip (Raft §5.3, "optimization").
 */
export interface AppendResponse extends Message {
  readonly type: typeof RaftMessageType.AppendResponse;
  readonly term: number;
  readonly success: boolean;
  readonly index: number;
  readonly conflictIndex: number;
  readonly conflictTerm: number;
}

/** Heartbeat of a leader (Raft §5.2). */
export interface HeartbeatRequest extends Message {
  readonly type: typeof RaftMessageType.Heartbeat;
  readonly term: number;
  /** min(leader's commitIndex, the follower's matchIndex): never past what the follower verified. */
  readonly commit: number;
  /** Heartbeat sequence number, echoed back; confirms leadership for ReadIndex and leases. */
  readonly seq: number;
}

/** Reply to a {@link HeartbeatRequest}. */
export interface HeartbeatResponse extends Message {
  readonly type: typeof RaftMessageType.HeartbeatResponse;
  readonly term: number;
  /** The `seq` of the heartbeat being answered. */
  readonly seq: number;
  /**
   * True when the follower could not commit up to the heartbeat's `commit` because it has not
   * verified that much of its log against this leader in this term (after a restart, say): a
   * follower commits only what it verified (§5.3). The leader answers with an AppendEntries,
   * whose consistency check verifies the log and whose leaderCommit then applies.
   */
  readonly unverified: boolean;
}

/** One chunk of a snapshot (Raft §7, thesis §5.4.2 chunked transfer). */
export interface InstallSnapshotRequest extends Message {
  readonly type: typeof RaftMessageType.InstallSnapshot;
  readonly term: number;
  /** What the snapshot stands for: last included index, its term, its configuration. */
  readonly meta: SnapshotMeta;
  /** Total size of the snapshot data in bytes. */
  readonly size: number;
  /** Byte offset of this chunk in the snapshot data. */
  readonly offset: number;
  /** The chunk's bytes (`offset + data.length <= size`; the last chunk ends at `size`). */
  readonly data: Uint8Array;
}

/** Acknowledges the snapshot bytes received so far; the leader continues from `offset`. */
export interface SnapshotResponse extends Message {
  readonly type: typeof RaftMessageType.SnapshotResponse;
  readonly term: number;
  /** Index of the snapshot being received. */
  readonly index: number;
  /** Number of contiguous bytes received from the start. */
  readonly offset: number;
}

/** TimeoutNow (thesis §3.10): the leader asks the transfer target to campaign at once. */
export interface TimeoutNowRequest extends Message {
  readonly type: typeof RaftMessageType.TimeoutNow;
  readonly term: number;
}

/** Commands proposed on a follower and forwarded to its leader (payloads are not copied). */
export interface ProposeRequest extends Message {
  readonly type: typeof RaftMessageType.Propose;
  /** The sender's current term (informational; proposals are not term-checked). */
  readonly term: number;
  readonly commands: readonly Uint8Array[];
}

/** Read consistency codes carried in {@link ReadIndexRequest}: 0 linearizable, 1 lease. */
export const ReadMode = { Linearizable: 0, Lease: 1 } as const;
/** One of the {@link ReadMode} values. */
export type ReadMode = (typeof ReadMode)[keyof typeof ReadMode];

/** A follower's request for a read index (thesis §6.4: "the follower asks the leader"). */
export interface ReadIndexRequest extends Message {
  readonly type: typeof RaftMessageType.ReadIndex;
  readonly term: number;
  readonly mode: ReadMode;
  /** The follower's local read request ids, answered together. */
  readonly ids: readonly number[];
  /**
   * A random number drawn by the follower's core when it started, echoed in the answer, so an
   * answer delayed across a restart cannot match a new request that reuses an id.
   */
  readonly nonce: number;
}

/** Outcome codes of {@link ReadIndexResponse}. */
export const ReadStatus = { Ok: 0, NotLeader: 1, LeaseExpired: 2 } as const;
/** One of the {@link ReadStatus} values. */
export type ReadStatus = (typeof ReadStatus)[keyof typeof ReadStatus];

/** The leader's answer to a {@link ReadIndexRequest}. */
export interface ReadIndexResponse extends Message {
  readonly type: typeof RaftMessageType.ReadIndexResponse;
  readonly term: number;
  readonly ids: readonly number[];
  /** The request's nonce. */
  readonly nonce: number;
  readonly status: ReadStatus;
  /** The read index when `status` is Ok, else 0. */
  readonly index: number;
  /** Who the responder thinks leads, when `status` is NotLeader. */
  readonly leaderHint: NodeId | null;
}

/** Every Raft message. Discriminate on `type` ({@link RaftMessageType}). */
export type RaftMessage =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | InstallSnapshotRequest
  | SnapshotResponse
  | TimeoutNowRequest
  | ProposeRequest
  | ReadIndexRequest
  | ReadIndexResponse;
