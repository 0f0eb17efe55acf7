/**
 * Options of the Raft core: timeouts in ticks, feature switches, and the byte and message
 * limits of replication and snapshots. Every option has a default; {@link resolveRaftOptions}
 * validates a partial set and fills in the rest.
 */
import { InvalidConfigurationError } from '@synod/log';

/** Options of {@link raft}. Every field is optional; see {@link DEFAULT_RAFT_OPTIONS}. */
export interface RaftOptions {
  /**
   * Election timeout in ticks (Raft §5.2). A follower or candidate that hears nothing from a
   * leader for a randomized timeout in `[electionTicks, 2 * electionTicks)` starts an election.
   * Also the check-quorum period of a leader and the leadership-transfer deadline.
   * Default 10. Must be greater than `heartbeatTicks` (and at least 2).
   */
  readonly electionTicks?: number;
  /** Heartbeat interval of a leader, in ticks. Default 1. */
  readonly heartbeatTicks?: number;
  /**
   * Pre-vote (Raft thesis §9.6): a node asks whether it could win before it increments its
   * term, so a partitioned node that rejoins cannot depose a healthy leader. Default true.
   */
  readonly preVote?: boolean;
  /**
   * Check-quorum (thesis §6.2, §9.6): a leader that did not hear from a quorum during an election
   * timeout steps down, and a follower that heard from a leader within the election timeout
   * ignores vote requests (the "leader stickiness" that also protects against removed
   * servers, thesis §4.2.3). Default true.
   */
  readonly checkQuorum?: boolean;
  /**
   * Forward a proposal made on a follower to the leader it knows (true), or refuse it with
   * NotLeaderError carrying the leader hint (false). Default true.
   */
  readonly forwardProposals?: boolean;
  /**
   * Enables `lease` reads (thesis §6.4.1): the leader answers from its lease without a round of
   * heartbeats. Requires `checkQuorum`. Safe only if clocks drift by less than
   * `leaseClockDrift`. Default false (a `lease` read then throws UnsupportedError).
   */
  readonly leaseRead?: boolean;
  /**
   * Upper bound on the relative clock-rate difference between any two servers, as a fraction
   * (0.1 = one server's ticks may run up to 10% faster than another's). The leader lease lasts
   * `floor((electionTicks - 1) * (1 - leaseClockDrift)) - 1` ticks after the heartbeat that a
   * quorum acknowledged was sent. Default 0.1. Must be in [0, 0.5].
   */
  readonly leaseClockDrift?: number;
  /**
   * Largest size in bytes of the entries carried by one AppendEntries message (payload bytes;
   * one entry is always sent even if larger). Default 1 MiB.
   */
  readonly maxSizePerMsg?: number;
  /**
   * Largest number of AppendEntries messages in flight to one follower while pipelining (etcd's
   * MaxInflightMsgs). Default 256.
   */
  readonly maxInflightMsgs?: number;
  /**
   * Largest number of entry payload bytes in flight to one follower; 0 means no byte limit.
   * Default 32 MiB.
   */
  readonly maxInflightBytes?: number;
  /**
   * Largest total payload size in bytes of the entries a leader has appended but not yet
   * committed; beyond it proposals fail with UncommittedLogFullError (a leader that lost its
   * quorum stops accepting work). One proposal (or one batch forwarded by a follower, accepted or
   * dropped whole) is always accepted when nothing is pending.
   * 0 means unlimited. Default 64 MiB.
   */
  readonly maxUncommittedEntriesSize?: number;
  /** Size in bytes of one InstallSnapshot chunk. Default 1 MiB. */
  readonly snapshotChunkBytes?: number;
  /**
   * Entries kept in the log below a snapshot taken by `compact()`, so a follower that lags by
   * less than this catches up from entries instead of a snapshot (hashicorp/raft's
   * TrailingLogs). Default 1024.
   */
  readonly trailingEntries?: number;
  /**
   * When a learner is promoted by `addVoter` (thesis §4.2.1), the leader waits until the
   * learner's matchIndex reaches the commitIndex; it gives up after this many election
   * timeouts, leaving the node a learner. Default 20.
   */
  readonly promotionTimeoutElections?: number;
}

/** {@link RaftOptions} with every field present. */
export type ResolvedRaftOptions = { readonly [K in keyof RaftOptions]-?: NonNullable<RaftOptions[K]> };

/** The defaults of every {@link RaftOptions} field (units: ticks, bytes, messages). */
export const DEFAULT_RAFT_OPTIONS: ResolvedRaftOptions = Object.freeze({
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  forwardProposals: true,
  leaseRead: false,
  leaseClockDrift: 0.1,
  maxSizePerMsg: 1024 * 1024,
  maxInflightMsgs: 256,
  maxInflightBytes: 32 * 1024 * 1024,
  maxUncommittedEntriesSize: 64 * 1024 * 1024,
  snapshotChunkBytes: 1024 * 1024,
  trailingEntries: 1024,
  promotionTimeoutElections: 20,
});

/**
 * Validates options and fills in defaults. Throws {@link InvalidConfigurationError} for unknown
 * types, non-integers, out-of-range values or inconsistent combinations (e.g. `leaseRead`
 * without `checkQuorum`, `heartbeatTicks >= electionTicks`).
 */
export function resolveRaftOptions(options: RaftOptions = {}): ResolvedRaftOptions {
  if (options === null || typeof options !== 'object') throw new InvalidConfigurationError('raft options must be an object');
  const o = { ...DEFAULT_RAFT_OPTIONS } as { -readonly [K in keyof ResolvedRaftOptions]: ResolvedRaftOptions[K] };
  for (const key of Object.keys(options) as (keyof RaftOptions)[]) {
    const v = options[key];
    if (v === undefined) continue;
    if (!(key in DEFAULT_RAFT_OPTIONS)) throw new InvalidConfigurationError(`unknown raft option ${String(key)}`);
    const def = DEFAULT_RAFT_OPTIONS[key];
    if (typeof def === 'boolean') {
      if (typeof v !== 'boolean') throw new InvalidConfigurationError(`raft option ${key} must be a boolean`);
    } else if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new InvalidConfigurationError(`raft option ${key} must be a finite number`);
    } else if (key !== 'leaseClockDrift' && (!Number.isSafeInteger(v) || v < 0)) {
      throw new InvalidConfigurationError(`raft option ${key} must be a non-negative integer, got ${v}`);
    }
    (o as Record<string, unknown>)[key] = v;
  }
  const positive: (keyof RaftOptions)[] = ['electionTicks', 'heartbeatTicks', 'maxSizePerMsg', 'maxInflightMsgs', 'snapshotChunkBytes', 'promotionTimeoutElections'];
  for (const k of positive) {
    if ((o[k] as number) < 1) throw new InvalidConfigurationError(`raft option ${k} must be at least 1`);
  }
  if (o.electionTicks < 2) throw new InvalidConfigurationError('electionTicks must be at least 2');
  if (o.heartbeatTicks >= o.electionTicks) {
    throw new InvalidConfigurationError(`heartbeatTicks (${o.heartbeatTicks}) must be less than electionTicks (${o.electionTicks})`);
  }
  if (o.leaseClockDrift < 0 || o.leaseClockDrift > 0.5) {
    throw new InvalidConfigurationError(`leaseClockDrift must be in [0, 0.5], got ${o.leaseClockDrift}`);
  }
  if (o.leaseRead && !o.checkQuorum) {
    throw new InvalidConfigurationError('leaseRead needs checkQuorum: followers must ignore votes while a leader is in contact');
  }
  if (o.leaseRead && leaseTicksOf(o) < 1) {
    throw new InvalidConfigurationError('electionTicks too small for a leader lease with this leaseClockDrift');
  }
  return Object.freeze(o);
}

/**
 * Length of the leader lease in ticks (thesis §6.4.1), measured from the tick at which the
 * heartbeat a quorum acknowledged was sent. A follower refuses votes for `electionTicks` ticks
 * of its own clock after hearing from the leader; counting from the send time, discounting the
 * clock-drift bound and one tick of granularity on each side gives this value.
 */
export function leaseTicksOf(o: Pick<ResolvedRaftOptions, 'electionTicks' | 'leaseClockDrift'>): number {
  return Math.floor((o.electionTicks - 1) * (1 - o.leaseClockDrift)) - 1;
}
