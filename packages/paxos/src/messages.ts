/**
 * The messages of synod's Multi-Paxos (Lamport, "Paxos Made Simple" §2-3; "Paxos Made Moderately
 * Complex" for the leader/acceptor split). A ballot is the pair (round, owner): `round` is a
 * positive integer, `owner` the proposer's node id, ordered by round then by owner. Where a
 * message names a ballot only by `round`, its owner is implied: the sender for a leader's
 * message (`Prepare`, `Accept`, `Snapshot`, `TimeoutNow`) and the addressee for a reply to the
 * leader (`Promise`, `Accepted`, `SnapshotAck`).
 */
import type { Entry, Message, NodeId, SnapshotMeta } from '@synod/log';

/**
 * The highest round (ballot number) the core accepts from the wire or uses itself: 2^52.
 *
 * Rounds are JavaScript numbers persisted as `HardState.term`, which storage requires to be a
 * safe integer (at most 2^53 - 1). A candidate picks a round one above every round it has
 * promised or seen, so an unbounded round from the wire (2^53 - 1, say) would make the next
 * campaign overflow and every replica stop on a storage error. With the bound, any message
 * naming a round above `MAX_ROUND` (its ballot, a reported promise, a transfer ballot, the round
 * of a reported entry or of a snapshot) is invalid input: `step()` drops it, counts it in
 * `droppedMessages` and changes nothing. A node whose promise reached `MAX_ROUND` never starts
 * phase 1 again (it still accepts, learns and applies under that ballot): 2^52 rounds are out of
 * reach of any honest cluster, so reaching the bound means a faulty or hostile peer, and
 * refusing to campaign is the only choice that keeps promises safe (a promise never goes back).
 */
export const MAX_ROUND = 2 ** 52;

/** Type tags of {@link PaxosMessage}s (the first byte on the wire). */
export const PaxosMessageType = {
  /** Phase 1a: a candidate asks for a promise on every slot above its chosen watermark. */
  Prepare: 1,
  /** Phase 1b: a promise, with every value the acceptor accepted above the candidate's watermark. */
  Promise: 2,
  /** Refusal of a `Prepare`, `Accept` or `Snapshot` under a ballot below the acceptor's promise. */
  Nack: 3,
  /** Phase 2a (batched, pipelined) and heartbeat: values for slots plus the commit watermark. */
  Accept: 4,
  /** Phase 2b: the acceptor's contiguous match slot under the leader's ballot. */
  Accepted: 5,
  /** One chunk of a snapshot sent by the leader to a lagging replica. */
  Snapshot: 6,
  /** Acknowledges snapshot chunks (next expected byte offset) and an installed snapshot. */
  SnapshotAck: 7,
  /** Leadership transfer: the leader tells a caught-up voter to start phase 1 at once. */
  TimeoutNow: 8,
  /** Commands proposed on a follower, forwarded to the leader. */
  Forward: 9,
  /** A follower asks the leader for a read index. */
  ReadIndex: 10,
  /** The leader's answer to `ReadIndex`. */
  ReadIndexResponse: 11,
} as const;
/** One of the {@link PaxosMessageType} values. */
export type PaxosMessageType = (typeof PaxosMessageType)[keyof typeof PaxosMessageType];

/**
 * Phase 1a. `round` with owner `from`. `commit` is the candidate's chosen watermark: the acceptor
 * reports what it accepted above it. `force` marks a leadership transfer authorized by the
 * leader of ballot (`transferRound`, `transferOwner`): an acceptor still promised to that ballot
 * answers at once instead of waiting for its leader-contact window to pass.
 */
export interface PrepareMessage extends Message {
  readonly type: 1;
  readonly round: number;
  readonly commit: number;
  readonly force: boolean;
  readonly transferRound: number;
  readonly transferOwner: NodeId | null;
}

/**
 * Phase 1b: the acceptor promised ballot (`round`, `to`) and reports `entries`, every value it
 * holds above the candidate's watermark, each with the round (`term`) it was accepted under.
 * `commit` is the acceptor's own chosen watermark.
 */
export interface PromiseMessage extends Message {
  readonly type: 2;
  readonly round: number;
  readonly commit: number;
  readonly entries: readonly Entry[];
}

/**
 * A refusal of ballot (`round`, `to`): the acceptor is promised to (`promisedRound`,
 * `promisedOwner`). `lagging` says the candidate's watermark is below the acceptor's snapshot,
 * so the acceptor cannot report the compacted slots; `commit` is the acceptor's watermark.
 */
export interface NackMessage extends Message {
  readonly type: 3;
  readonly round: number;
  readonly promisedRound: number;
  readonly promisedOwner: NodeId | null;
  readonly lagging: boolean;
  readonly commit: number;
}

/**
 * Phase 2a under ballot (`round`, `from`): accept `entries` (ascending slots; their `term` is
 * `round` once accepted). `commit` is the leader's chosen watermark; `seq` numbers the leader's
 * heartbeat rounds, echoed back for read-index and lease confirmation. No entries = heartbeat.
 */
export interface AcceptMessage extends Message {
  readonly type: 4;
  readonly round: number;
  readonly commit: number;
  readonly seq: number;
  readonly entries: readonly Entry[];
}

/**
 * Phase 2b under ballot (`round`, `to`). `match` is the highest slot m such that the acceptor
 * holds, for every slot <= m, either a chosen value or the value accepted under this ballot.
 * `last` is the highest slot of the `Accept` it answers (0 for a heartbeat), so the leader
 * notices a gap. `seq` echoes the `Accept`'s.
 */
export interface AcceptedMessage extends Message {
  readonly type: 5;
  readonly round: number;
  readonly match: number;
  readonly last: number;
  readonly seq: number;
}

/**
 * One chunk of the leader's snapshot: bytes [`offset`, `offset + data.length`) of a snapshot of
 * `total` bytes described by `meta`, under ballot (`round`, `from`).
 */
export interface SnapshotMessage extends Message {
  readonly type: 6;
  readonly round: number;
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly total: number;
  readonly data: Uint8Array;
}

/**
 * Answer to a snapshot chunk under ballot (`round`, `to`): `index` is the snapshot's index,
 * `offset` the next byte expected, `match` as in {@link AcceptedMessage} (>= `index` once installed).
 */
export interface SnapshotAckMessage extends Message {
  readonly type: 7;
  readonly round: number;
  readonly index: number;
  readonly offset: number;
  readonly match: number;
}

/** Leadership transfer (Raft thesis §3.10 adapted): start phase 1 now, forced, under the leader of ballot (`round`, `from`). */
export interface TimeoutNowMessage extends Message {
  readonly type: 8;
  readonly round: number;
}

/** Commands proposed on a follower and forwarded to the leader it knows. */
export interface ForwardMessage extends Message {
  readonly type: 9;
  readonly commands: readonly Uint8Array[];
}

/** A follower's linearizable read: asks the leader for a read index for request `ctx`. */
export interface ReadIndexMessage extends Message {
  readonly type: 10;
  readonly ctx: number;
}

/** The leader's answer to {@link ReadIndexMessage}: `index` if `ok`, else the leader refused. */
export interface ReadIndexResponseMessage extends Message {
  readonly type: 11;
  readonly ctx: number;
  readonly ok: boolean;
  readonly index: number;
}

/** Every message of the Paxos core. */
export type PaxosMessage =
  | PrepareMessage
  | PromiseMessage
  | NackMessage
  | AcceptMessage
  | AcceptedMessage
  | SnapshotMessage
  | SnapshotAckMessage
  | TimeoutNowMessage
  | ForwardMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage;

/** Human-readable name of a message type, for logs and tests. */
export function messageTypeName(type: number): string {
  for (const [k, v] of Object.entries(PaxosMessageType)) if (v === type) return k;
  return `Unknown(${type})`;
}

/**
 * Whether every round `m` names is at most {@link MAX_ROUND}: its ballot round, a Nack's
 * promised round, a Prepare's transfer round, the rounds (`term`) of a Promise's reported
 * entries and a Snapshot's `meta.term`. Assumes `m` passed `isValidPaxosMessage`.
 */
export function roundsWithinBound(m: PaxosMessage): boolean {
  switch (m.type) {
    case PaxosMessageType.Prepare:
      return m.round <= MAX_ROUND && m.transferRound <= MAX_ROUND;
    case PaxosMessageType.Promise:
      return m.round <= MAX_ROUND && m.entries.every((e) => e.term <= MAX_ROUND);
    case PaxosMessageType.Nack:
      return m.round <= MAX_ROUND && m.promisedRound <= MAX_ROUND;
    case PaxosMessageType.Snapshot:
      return m.round <= MAX_ROUND && m.meta.term <= MAX_ROUND;
    case PaxosMessageType.Accept:
    case PaxosMessageType.Accepted:
    case PaxosMessageType.SnapshotAck:
    case PaxosMessageType.TimeoutNow:
      return m.round <= MAX_ROUND;
    default:
      return true;
  }
}
