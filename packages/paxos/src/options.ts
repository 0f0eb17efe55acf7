/**
 * Options of the Paxos core, their defaults, and the flexible-quorum arithmetic (Howard, Malkhi,
 * Spiegelman, "Flexible Paxos: Quorum intersection revisited", 2016): phase 1 (leader change)
 * and phase 2 (replication) quorums only need to intersect each other, |Q1| + |Q2| > N.
 */
import { type Configuration, InvalidConfigurationError, majoritySize, type NodeId } from '@synod/log';

/** Options of {@link paxos}. Every duration is in ticks (one `tick()` call of the runtime). */
export interface PaxosOptions {
  /**
   * Minimum election timeout in ticks (default 10). A follower that hears nothing from a leader
   * for a random number of ticks in [electionTicks, 2 * electionTicks) starts phase 1; a
   * candidate that fails retries after a random, growing backoff (up to 8 * electionTicks).
   * An acceptor that heard from its leader in the last `electionTicks` ignores other
   * candidates' prepares (leader stickiness, which also makes leases safe).
   */
  readonly electionTicks?: number;
  /** Heartbeat interval of the leader in ticks (default 1). Must be below `electionTicks`. */
  readonly heartbeatTicks?: number;
  /**
   * Length of the leader lease in ticks (default `electionTicks - 1`); must be below
   * `electionTicks`. Lease reads are linearizable only while every node's tick rate stays within
   * `(electionTicks - leaseTicks) / electionTicks` of the others (the drift bound).
   */
  readonly leaseTicks?: number;
  /**
   * Phase-1 quorum size |Q1| (default: see {@link quorumSizes}). Needed to elect a leader.
   */
  readonly phase1Quorum?: number;
  /**
   * Phase-2 quorum size |Q2| (default: see {@link quorumSizes}). Needed to choose a value, to
   * confirm a read index and to hold a lease.
   */
  readonly phase2Quorum?: number;
  /** Most entries in one `Accept` message (default 512). */
  readonly maxBatchEntries?: number;
  /** Most payload bytes in one `Accept` message, at least one entry is always sent (default 1 MiB). */
  readonly maxBatchBytes?: number;
  /**
   * Most entries the leader holds proposed but not yet chosen; beyond it `propose` throws
   * UncommittedLogFullError (default 65,536).
   */
  readonly maxUncommittedEntries?: number;
  /** Size of one snapshot chunk in bytes (default 1 MiB). */
  readonly snapshotChunkBytes?: number;
  /**
   * A leader that has not heard from a phase-2 quorum for `electionTicks` steps down, so clients
   * stop waiting on it (default true).
   */
  readonly checkQuorum?: boolean;
  /** A follower forwards proposals to the leader it knows instead of refusing them (default true). */
  readonly forwardProposals?: boolean;
}

/** {@link PaxosOptions} with every default filled in. */
export interface ResolvedPaxosOptions {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly leaseTicks: number;
  readonly phase1Quorum: number | undefined;
  readonly phase2Quorum: number | undefined;
  readonly maxBatchEntries: number;
  readonly maxBatchBytes: number;
  readonly maxUncommittedEntries: number;
  readonly snapshotChunkBytes: number;
  readonly checkQuorum: boolean;
  readonly forwardProposals: boolean;
}

function posInt(v: number | undefined, name: string, dflt: number): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < 1) throw new InvalidConfigurationError(`${name} must be a positive integer, got ${String(x)}`);
  return x;
}

/**
 * Fills in defaults and checks ranges. Throws InvalidConfigurationError for a non-positive or
 * non-integer value, `heartbeatTicks >= electionTicks` or `leaseTicks >= electionTicks`.
 */
export function resolveOptions(o: PaxosOptions = {}): ResolvedPaxosOptions {
  const electionTicks = posInt(o.electionTicks, 'electionTicks', 10);
  if (electionTicks < 2) throw new InvalidConfigurationError('electionTicks must be at least 2');
  const heartbeatTicks = posInt(o.heartbeatTicks, 'heartbeatTicks', 1);
  if (heartbeatTicks >= electionTicks) {
    throw new InvalidConfigurationError(`heartbeatTicks (${heartbeatTicks}) must be below electionTicks (${electionTicks})`);
  }
  const leaseTicks = posInt(o.leaseTicks, 'leaseTicks', electionTicks - 1);
  if (leaseTicks >= electionTicks) {
    throw new InvalidConfigurationError(`leaseTicks (${leaseTicks}) must be below electionTicks (${electionTicks})`);
  }
  const phase1Quorum = o.phase1Quorum === undefined ? undefined : posInt(o.phase1Quorum, 'phase1Quorum', 1);
  const phase2Quorum = o.phase2Quorum === undefined ? undefined : posInt(o.phase2Quorum, 'phase2Quorum', 1);
  return {
    electionTicks,
    heartbeatTicks,
    leaseTicks,
    phase1Quorum,
    phase2Quorum,
    maxBatchEntries: posInt(o.maxBatchEntries, 'maxBatchEntries', 512),
    maxBatchBytes: posInt(o.maxBatchBytes, 'maxBatchBytes', 1 << 20),
    maxUncommittedEntries: posInt(o.maxUncommittedEntries, 'maxUncommittedEntries', 65_536),
    snapshotChunkBytes: posInt(o.snapshotChunkBytes, 'snapshotChunkBytes', 1 << 20),
    checkQuorum: o.checkQuorum ?? true,
    forwardProposals: o.forwardProposals ?? true,
  };
}

/** Phase-1 and phase-2 quorum sizes for one set of voters. */
export interface QuorumSizes {
  readonly q1: number;
  readonly q2: number;
}

/**
 * The quorum sizes used for `n` voters:
 * - neither size set: majorities, q1 = q2 = floor(n/2) + 1;
 * - only `phase2Quorum` set: q2 = min(phase2Quorum, n), q1 = n - q2 + 1;
 * - only `phase1Quorum` set: q1 = min(phase1Quorum, n), q2 = n - q1 + 1;
 * - both set: q2 = min(phase2Quorum, n), q1 = min(n, max(phase1Quorum, n - q2 + 1)).
 * The result always satisfies q1 + q2 > n, so quorums of the two phases intersect whatever the
 * membership: when voters are added, the phase-1 size grows if it must; when voters are removed,
 * sizes shrink to at most `n`. (With both sizes set, `paxos()` and membership changes refuse a
 * voter count where they would not intersect as given; see {@link checkQuorumSizes}.)
 */
export function quorumSizes(n: number, phase1Quorum: number | undefined, phase2Quorum: number | undefined): QuorumSizes {
  if (n === 0) return { q1: 0, q2: 0 };
  if (phase1Quorum === undefined && phase2Quorum === undefined) {
    const m = majoritySize(n);
    return { q1: m, q2: m };
  }
  if (phase1Quorum === undefined) {
    const q2 = Math.min(phase2Quorum!, n);
    return { q1: n - q2 + 1, q2 };
  }
  if (phase2Quorum === undefined) {
    const q1 = Math.min(phase1Quorum, n);
    return { q1, q2: n - q1 + 1 };
  }
  const q2 = Math.min(phase2Quorum, n);
  return { q1: Math.min(n, Math.max(phase1Quorum, n - q2 + 1)), q2 };
}

/**
 * Throws InvalidConfigurationError when both quorum sizes are set and |Q1| + |Q2| <= N for the
 * voters of `config` (each half of a joint configuration is checked alone).
 */
export function checkQuorumSizes(config: Configuration, o: ResolvedPaxosOptions): void {
  if (o.phase1Quorum === undefined || o.phase2Quorum === undefined) return;
  const halves: (readonly NodeId[])[] = [config.voters];
  if (config.outgoingVoters) halves.push(config.outgoingVoters);
  for (const voters of halves) {
    const n = voters.length;
    if (n > 0 && o.phase1Quorum + o.phase2Quorum <= n) {
      throw new InvalidConfigurationError(
        `flexible quorums must intersect: phase1Quorum (${o.phase1Quorum}) + phase2Quorum (${o.phase2Quorum}) must exceed the ${n} voters`,
      );
    }
  }
}

/**
 * Whether the members of `acks` (those for which `has(id)` is true) form a quorum of size `size`
 * (from {@link quorumSizes}) of `config`: both halves of a joint configuration must agree.
 */
export function isQuorum(
  config: Configuration,
  has: (id: NodeId) => boolean,
  which: 'q1' | 'q2',
  o: ResolvedPaxosOptions,
): boolean {
  const half = (voters: readonly NodeId[]): boolean => {
    const need = quorumSizes(voters.length, o.phase1Quorum, o.phase2Quorum)[which];
    let n = 0;
    for (const v of voters) if (has(v)) n++;
    return n >= need;
  };
  if (!half(config.voters)) return false;
  return config.outgoingVoters ? half(config.outgoingVoters) : true;
}

/**
 * The largest value v such that a phase-2 quorum of `config` has `value(id) >= v` (the
 * q2-th largest value; joint configurations take the smaller of both halves). An empty voter
 * set gives +Infinity.
 */
export function quorumValue(config: Configuration, value: (id: NodeId) => number, o: ResolvedPaxosOptions): number {
  const a = qthLargest(config.voters, value, o);
  return config.outgoingVoters ? Math.min(a, qthLargest(config.outgoingVoters, value, o)) : a;
}

/** Scratch for {@link qthLargest}: called on every acknowledgement, so it must not allocate. */
let scratch = new Float64Array(16);

/** The q2-th largest `value` over `voters` (insertion sort into a reused buffer; n is small). */
function qthLargest(voters: readonly NodeId[], value: (id: NodeId) => number, o: ResolvedPaxosOptions): number {
  const n = voters.length;
  if (n === 0) return Number.POSITIVE_INFINITY;
  // quorumSizes(n, ...).q2 without allocating.
  const p1 = o.phase1Quorum;
  const p2 = o.phase2Quorum;
  const q = p2 !== undefined ? Math.min(p2, n) : p1 !== undefined ? n - Math.min(p1, n) + 1 : majoritySize(n);
  if (scratch.length < n) scratch = new Float64Array(n * 2);
  const vs = scratch;
  for (let i = 0; i < n; i++) {
    const v = value(voters[i]!);
    let j = i;
    while (j > 0 && vs[j - 1]! < v) {
      vs[j] = vs[j - 1]!;
      j--;
    }
    vs[j] = v;
  }
  return vs[q - 1]!;
}
