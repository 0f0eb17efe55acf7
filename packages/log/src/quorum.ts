/**
 * Majority and joint-majority quorum math, kept apart from any protocol so it can be tested
 * alone (as etcd-io/raft's `quorum/` package). Raft uses it for commit indexes and elections;
 * Paxos uses it when its quorums are plain majorities.
 */
import type { Configuration, NodeId } from './types.js';

/** Outcome of counting votes (or acknowledgements) against a quorum. */
export type VoteResult = 'won' | 'lost' | 'pending';

/** Size of a majority of `n` voters: floor(n/2)+1 (0 voters need 0). */
export function majoritySize(n: number): number {
  return n === 0 ? 0 : Math.floor(n / 2) + 1;
}

/**
 * The largest index that a majority of `voters` has acknowledged, given each voter's
 * acknowledged index (`ack(id)`, 0 if unknown). An empty voter set returns +Infinity so that a
 * joint configuration with an empty half defers to the other half.
 */
export function majorityCommitted(voters: readonly NodeId[], ack: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return Number.POSITIVE_INFINITY;
  const acks = new Array<number>(n);
  for (let i = 0; i < n; i++) acks[i] = ack(voters[i]!);
  acks.sort((a, b) => b - a);
  return acks[majoritySize(n) - 1]!;
}

/** Tallies votes of a simple majority: `votes(id)` is true (granted), false (refused) or undefined. */
export function majorityVoteResult(
  voters: readonly NodeId[],
  votes: (id: NodeId) => boolean | undefined,
): VoteResult {
  const n = voters.length;
  if (n === 0) return 'won';
  let yes = 0;
  let missing = 0;
  for (const v of voters) {
    const r = votes(v);
    if (r === true) yes++;
    else if (r === undefined) missing++;
  }
  const q = majoritySize(n);
  if (yes >= q) return 'won';
  if (yes + missing >= q) return 'pending';
  return 'lost';
}

/**
 * The committed index under `config`: the majority-committed index of `voters`, and while the
 * configuration is joint, the minimum of both halves (Raft thesis §4.3).
 */
export function committedIndex(config: Configuration, ack: (id: NodeId) => number): number {
  const a = majorityCommitted(config.voters, ack);
  if (!config.outgoingVoters) return a;
  const b = majorityCommitted(config.outgoingVoters, ack);
  return Math.min(a, b);
}

/** Vote result under `config`: a joint configuration needs both halves to win (thesis §4.3). */
export function voteResult(config: Configuration, votes: (id: NodeId) => boolean | undefined): VoteResult {
  const a = majorityVoteResult(config.voters, votes);
  if (!config.outgoingVoters) return a;
  const b = majorityVoteResult(config.outgoingVoters, votes);
  if (a === 'won' && b === 'won') return 'won';
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}

/** Whether the set `active` contains a quorum of `config` (used by check-quorum and leases). */
export function hasQuorum(config: Configuration, active: ReadonlySet<NodeId>): boolean {
  return voteResult(config, (id) => (active.has(id) ? true : undefined)) === 'won';
}
