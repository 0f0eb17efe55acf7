/**
 * The Raft core: a deterministic state machine implementing `ConsensusCore` (Raft paper §5,
 * Ongaro's thesis ch. 3-6 and 9). One step function per role, as in etcd-io/raft, but written
 * for synod's Ready/advance contract:
 *
 * - elections with randomized timeouts, pre-vote and check-quorum (§5.2, thesis §9.6);
 * - replication with the prevLogIndex/prevLogTerm check, conflict truncation, pipelining,
 *   per-follower flow control and fast backtracking (§5.3);
 * - commit only of a current-term entry held by a quorum, the leader's own log counting once
 *   durable (§5.4.2); a no-op on election;
 * - ReadIndex and lease reads (thesis §6.4, §6.4.1), follower reads through the leader;
 * - membership by joint consensus with learners and automatic leave (thesis §4.3);
 * - snapshots sent in chunks (§7), leadership transfer (thesis §3.10).
 */
import {
  allMembers,
  allVoters,
  type Configuration,
  type ConsensusCore,
  type CoreInit,
  type CoreReadMode,
  type CoreStatus,
  committedIndex,
  ConfigChangeInProgressError,
  encodeConfiguration,
  type Entry,
  EntryType,
  type HardState,
  hasQuorum,
  InvalidArgumentError,
  InvalidConfigurationError,
  isJoint,
  isValidNodeId,
  isVoter,
  LeaseExpiredError,
  type MembershipChange,
  type NodeId,
  NotLeaderError,
  type Random,
  type Ready,
  type ReadState,
  type Snapshot,
  StorageError,
  TransferInProgressError,
  UncommittedLogFullError,
  UnsupportedError,
  validateConfiguration,
  voteResult,
} from '@synod/log';
import {
  type AppendRequest,
  type AppendResponse,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type InstallSnapshotRequest,
  MAX_TERM,
  type ProposeRequest,
  type RaftMessage,
  RaftMessageType,
  type ReadIndexRequest,
  type ReadIndexResponse,
  ReadMode,
  ReadStatus,
  type SnapshotResponse,
  type VoteRequest,
  type VoteResponse,
} from './messages.js';
import { leaseTicksOf, type ResolvedRaftOptions } from './options.js';
import { Progress } from './progress.js';
import { RaftLog, tryDecodeConfiguration } from './raft-log.js';

type RaftRole = 'leader' | 'candidate' | 'precandidate' | 'follower';

/** A read request waiting at the leader: local (`from === null`) or forwarded by a follower. */
interface ReadRequest {
  readonly id: number;
  readonly from: NodeId | null;
  /** The requesting follower's nonce (0 for local reads). */
  readonly nonce: number;
}

/** Reads that share one read index and one heartbeat round (thesis §6.4 batching). */
interface ReadBatch {
  index: number;
  /** Heartbeat sequence number confirming this batch, 0 until broadcast. */
  seq: number;
  readonly requests: ReadRequest[];
}

/** A snapshot being received in chunks. */
interface SnapshotReceiver {
  readonly index: number;
  readonly term: number;
  readonly size: number;
  buf: Uint8Array | null;
  received: number;
}

const EMPTY_READS: ReadState[] = [];
const EMPTY_MSGS: RaftMessage[] = [];

function sortedConfiguration(c: Configuration): Configuration {
  const out: { -readonly [K in keyof Configuration]: Configuration[K] } = {
    voters: [...c.voters].sort(),
    learners: [...c.learners].sort(),
  };
  if (c.outgoingVoters) out.outgoingVoters = [...c.outgoingVoters].sort();
  if (c.addresses) {
    const a: Record<NodeId, string> = {};
    for (const k of Object.keys(c.addresses).sort()) a[k] = c.addresses[k]!;
    out.addresses = a;
  }
  return out;
}

function isSafeIndex(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** The Raft implementation of `ConsensusCore`. Build it with `raft(options).create(init)`. */
export class RaftCore implements ConsensusCore<RaftMessage> {
  readonly id: NodeId;
  private readonly o: ResolvedRaftOptions;
  private readonly random: Random;
  private readonly log = new RaftLog();
  private readonly leaseTicks: number;

  // persistent state (Figure 2)
  private term = 0;
  private vote: NodeId | null = null;
  private lastHard: HardState;

  // volatile state
  private role: RaftRole = 'follower';
  private leader: NodeId | null = null;
  private ticks = 0;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** After a restart with lease reads on, refuse votes for one election timeout (thesis §6.4.1). */
  private leaseGuard: boolean;
  private readonly votes = new Map<NodeId, boolean>();
  private dropped = 0;
  private seenConfigVersion = -1;

  // leader state
  private readonly progress = new Map<NodeId, Progress>();
  private termStartIndex = 0;
  /** Set once this leader sent TimeoutNow: its lease can no longer be trusted this term. */
  private leaseRevoked = false;
  private committedCurrentTerm = false;
  private uncommittedSize = 0;
  private leadTransferee: NodeId | null = null;
  private transferElapsed = 0;
  private promotion: { id: NodeId; deadline: number; address: string | undefined } | null = null;
  private needAppendBroadcast = false;
  private needCommitBroadcast = false;
  private heartbeatSeq = 0;
  /** Recent heartbeat broadcasts as (seq, tick) pairs, ascending (for the lease). */
  private heartbeatLog: number[] = [];
  private readBatches: ReadBatch[] = [];
  private readsAwaitingCommit: ReadRequest[] = [];
  private needReadHeartbeat = false;

  // follower state
  private forwardQueue: Uint8Array[] = [];
  private forwardReads: number[][] = [[], []];
  /** Forwarded read ids waiting for the leader's answer. */
  private readonly readsInFlight = new Set<number>();
  private receiver: SnapshotReceiver | null = null;
  /**
   * The highest index verified to match the log of `verifiedLeader` in `verifiedTerm` (by a
   * successful AppendEntries consistency check or an installed snapshot, §5.3). A heartbeat
   * commits no further (the invariant "a follower never commits past what it has verified").
   * It holds only for that leader in that term, so a term or leader change voids it.
   */
  private verifiedIndex = 0;
  private verifiedTerm = 0;
  private verifiedLeader: NodeId | null = null;
  /** Tags this incarnation's forwarded reads (see {@link ReadIndexRequest.nonce}). */
  private readonly readNonce: number;

  // outputs
  private msgs: RaftMessage[] = [];
  private readStates: ReadState[] = [];
  private lastReady: Ready<RaftMessage> | null = null;

  constructor(init: CoreInit, options: ResolvedRaftOptions) {
    if (!isValidNodeId(init.id)) throw new InvalidConfigurationError(`invalid node id ${JSON.stringify(init.id)}`);
    this.id = init.id;
    this.o = options;
    this.random = init.random;
    this.leaseTicks = leaseTicksOf(options);
    this.leaseGuard = options.leaseRead;
    this.readNonce = init.random.int(1, 0x7fffffff);
    const st = init.state;
    const hs = st.hardState;
    const log = this.log;
    if (hs.term > MAX_TERM) {
      throw new StorageError(`stored term ${hs.term} is above MAX_TERM (${MAX_TERM}): written by a version without the term bound, or corrupt`);
    }
    this.term = hs.term;
    this.vote = hs.vote;
    this.lastHard = hs;
    const snap = st.snapshot;
    if (snap) {
      log.snapshot = snap;
      log.offset = snap.meta.index;
      log.offsetTerm = snap.meta.term;
      log.setBaseConfig(snap.meta.config);
      log.applied = snap.meta.index;
    }
    let expect = log.offset + 1;
    const ents: Entry[] = [];
    for (const e of st.entries) {
      if (e.index < expect) continue; // kept below the snapshot (trailing entries): not needed
      if (e.index !== expect) throw new StorageError(`stored log is not contiguous: expected index ${expect}, found ${e.index}`);
      ents.push(e);
      expect++;
    }
    log.append(ents);
    log.handedOut = log.lastIndex();
    log.persisted = log.lastIndex();
    log.commit = Math.min(Math.max(hs.commit, log.offset), log.lastIndex());
    const hasConfig = snap !== null || ents.some((e) => e.type === EntryType.Config);
    const empty = snap === null && ents.length === 0 && hs.term === 0;
    if (!hasConfig && init.bootstrap) {
      validateConfiguration(init.bootstrap);
      const boot = sortedConfiguration(init.bootstrap);
      if (empty) {
        // hashicorp-style bootstrap: the configuration is entry 1 of term 1, byte-identical on
        // every bootstrap server, and committed by construction.
        this.term = 1;
        log.append([{ index: 1, term: 1, type: EntryType.Config, data: encodeConfiguration(boot) }]);
        log.commit = 1;
      } else {
        log.setBaseConfig(boot);
      }
    }
    this.syncConfig();
    this.resetRandomizedElectionTimeout();
  }

  // =================================================================== public API

  tick(): void {
    this.ticks++;
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  step(m: RaftMessage): void {
    // Everything that can reject a message is checked before it can change anything: a dropped
    // (counted) message has no effect at all, in particular not on the term.
    if (!this.valid(m) || !this.admissible(m)) {
      this.dropped++;
      return;
    }
    switch (m.type) {
      case RaftMessageType.Propose:
        this.onPropose(m);
        return;
      case RaftMessageType.ReadIndex:
        this.onReadIndex(m);
        return;
      case RaftMessageType.ReadIndexResponse:
        this.onReadIndexResponse(m);
        return;
    }
    /** Whether this message raised our term: it had an effect, so it is not counted as dropped. */
    let adopted = false;
    if (m.term > this.term) {
      if (m.type === RaftMessageType.Vote || m.type === RaftMessageType.PreVote) {
        if (!(m.transfer && this.isKnownVoter(m.from)) && this.inLease()) {
          // Check-quorum stickiness (thesis §4.2.3, §9.6): a leader is in contact, so this
          // candidate cannot be needed; ignore it without changing term. Only a voter of our
          // configuration may claim a leadership transfer to get past it.
          this.dropped++;
          return;
        }
      }
      if (m.type === RaftMessageType.PreVote) {
        // never change term for a pre-vote
      } else if (m.type === RaftMessageType.PreVoteResponse && m.granted) {
        // granted pre-votes carry the future term we asked about
      } else {
        const lead =
          m.type === RaftMessageType.Append || m.type === RaftMessageType.Heartbeat || m.type === RaftMessageType.InstallSnapshot
            ? m.from
            : null;
        this.becomeFollower(m.term, lead);
        adopted = true;
      }
    } else if (m.term < this.term) {
      if ((this.o.checkQuorum || this.o.preVote) && (m.type === RaftMessageType.Append || m.type === RaftMessageType.Heartbeat)) {
        // A stale leader (or we advanced our term while partitioned): tell it our term so it
        // steps down, else we could never rejoin (etcd's rule with check-quorum/pre-vote).
        this.send({ type: RaftMessageType.AppendResponse, from: this.id, to: m.from, term: this.term, success: false, index: 0, conflictIndex: 0, conflictTerm: 0 });
      } else if (m.type === RaftMessageType.PreVote || m.type === RaftMessageType.Vote) {
        // Reply with our term (Figure 2: "currentTerm, for candidate to update itself").
        const type = m.type === RaftMessageType.PreVote ? RaftMessageType.PreVoteResponse : RaftMessageType.VoteResponse;
        this.send({ type, from: this.id, to: m.from, term: this.term, granted: false });
      } else {
        this.dropped++;
      }
      return;
    }

    switch (m.type) {
      case RaftMessageType.Vote:
      case RaftMessageType.PreVote:
        this.onVoteRequest(m);
        return;
      case RaftMessageType.VoteResponse:
      case RaftMessageType.PreVoteResponse: {
        const pre = m.type === RaftMessageType.PreVoteResponse;
        if ((pre && this.role !== 'precandidate') || (!pre && this.role !== 'candidate')) {
          if (!adopted) this.dropped++; // a late answer to an election that is over
          return;
        }
        this.onVoteResponse(m);
        return;
      }
      case RaftMessageType.Append:
      case RaftMessageType.Heartbeat:
      case RaftMessageType.InstallSnapshot:
        if (this.role !== 'follower') this.becomeFollower(this.term, m.from);
        this.hearFromLeader(m.from);
        if (m.type === RaftMessageType.Append) this.onAppend(m);
        else if (m.type === RaftMessageType.Heartbeat) this.onHeartbeat(m);
        else this.onSnapshotChunk(m);
        return;
      case RaftMessageType.TimeoutNow:
        // Leadership transfer (thesis §3.10): campaign at once, skipping pre-vote and the lease.
        this.campaign(false, true);
        return;
      case RaftMessageType.AppendResponse:
      case RaftMessageType.HeartbeatResponse:
      case RaftMessageType.SnapshotResponse: {
        const pr = this.role === 'leader' ? this.progress.get(m.from) : undefined;
        if (!pr) {
          if (!adopted) this.dropped++; // an answer to a leader we no longer are
          return;
        }
        pr.recentActive = true;
        pr.lastActiveTick = this.ticks;
        if (m.type === RaftMessageType.AppendResponse) this.onAppendResponse(m, pr);
        else if (m.type === RaftMessageType.HeartbeatResponse) this.onHeartbeatResponse(m, pr);
        else this.onSnapshotResponse(m, pr);
        return;
      }
    }
  }

  propose(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('a proposal must be a Uint8Array');
    if (this.role === 'leader') {
      this.checkCanAppend(data.length);
      this.appendEntry(EntryType.Normal, data);
      this.uncommittedSize += data.length;
      return;
    }
    if (this.leader !== null && this.o.forwardProposals) {
      this.forwardQueue.push(data);
      return;
    }
    throw new NotLeaderError(this.leader);
  }

  proposeMembershipChange(change: MembershipChange): void {
    if (!change || typeof change !== 'object' || !isValidNodeId((change as { id?: unknown }).id)) {
      throw new InvalidArgumentError('a membership change needs a valid node id');
    }
    const t = (change as { type?: unknown }).type;
    if (t !== 'addLearner' && t !== 'addVoter' && t !== 'remove') throw new InvalidArgumentError(`unknown membership change ${String(t)}`);
    const address = (change as { address?: unknown }).address;
    if (address !== undefined && typeof address !== 'string') throw new InvalidArgumentError('address must be a string');
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (this.leadTransferee !== null) throw new TransferInProgressError();
    if (!this.committedCurrentTerm) {
      throw new ConfigChangeInProgressError('the leader has not yet committed an entry of its term (thesis §4.1); retry shortly');
    }
    const c = this.log.config;
    if (this.log.configIndex > this.log.commit || isJoint(c) || this.promotion !== null) throw new ConfigChangeInProgressError();
    const id = change.id;
    const addrs = (extra?: string): Record<NodeId, string> | undefined => {
      const a: Record<NodeId, string> = { ...(c.addresses ?? {}) };
      if (extra !== undefined) a[id] = extra;
      return Object.keys(a).length > 0 ? a : undefined;
    };
    const withAddrs = (base: Configuration, a: Record<NodeId, string> | undefined): Configuration => (a ? { ...base, addresses: a } : base);
    let next: Configuration;
    switch (change.type) {
      case 'addLearner': {
        if (c.voters.includes(id)) throw new UnsupportedError(`${id} is a voter; demoting a voter to learner is not supported (remove it, then add it as a learner)`);
        if (c.learners.includes(id) && (change.address === undefined || c.addresses?.[id] === change.address)) return;
        const learners = c.learners.includes(id) ? [...c.learners] : [...c.learners, id];
        next = withAddrs({ voters: [...c.voters], learners }, addrs(change.address));
        break;
      }
      case 'addVoter': {
        if (c.voters.includes(id)) return;
        this.promotion = { id, deadline: this.ticks + this.o.promotionTimeoutElections * this.o.electionTicks, address: change.address };
        if (c.learners.includes(id)) {
          // Promote once caught up (thesis §4.2.1), through a joint configuration.
          this.maybePromote();
          return;
        }
        // Not a member yet: add it as a learner first; it is promoted once it has caught up.
        next = withAddrs({ voters: [...c.voters], learners: [...c.learners, id] }, addrs(change.address));
        break;
      }
      case 'remove': {
        if (!allMembers(c).includes(id)) return;
        const a = { ...(c.addresses ?? {}) };
        delete a[id];
        const aa = Object.keys(a).length > 0 ? a : undefined;
        if (c.learners.includes(id)) {
          next = withAddrs({ voters: [...c.voters], learners: c.learners.filter((x) => x !== id) }, aa);
        } else {
          const voters = c.voters.filter((x) => x !== id);
          if (voters.length === 0) throw new InvalidConfigurationError('cannot remove the last voter');
          // Joint consensus C_old,new (thesis §4.3); C_new follows automatically once committed.
          next = withAddrs({ voters, learners: [...c.learners], outgoingVoters: [...c.voters] }, aa);
        }
        break;
      }
    }
    validateConfiguration(next);
    this.appendEntry(EntryType.Config, encodeConfiguration(next));
  }

  read(id: number, mode: CoreReadMode): void {
    if (!Number.isSafeInteger(id)) throw new InvalidArgumentError('read id must be an integer');
    if (mode !== 'linearizable' && mode !== 'lease') throw new InvalidArgumentError(`unknown read mode ${String(mode)}`);
    if (mode === 'lease' && !this.o.leaseRead) throw new UnsupportedError('lease reads are disabled; enable the leaseRead option');
    const rm = mode === 'lease' ? ReadMode.Lease : ReadMode.Linearizable;
    if (this.role === 'leader') {
      this.leaderRead({ id, from: null, nonce: 0 }, rm);
      return;
    }
    if (this.leader === null) {
      this.readStates.push({ id, error: new NotLeaderError(null) });
      return;
    }
    this.forwardReads[rm]!.push(id);
    this.readsInFlight.add(id);
  }

  transferLeadership(to: NodeId): void {
    if (!isValidNodeId(to)) throw new InvalidArgumentError('transfer target must be a valid node id');
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (to === this.id) return;
    if (!this.log.config.voters.includes(to)) throw new InvalidArgumentError(`${to} is not a voter of the configuration`);
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.transferElapsed = 0;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) {
      this.sendTimeoutNow(to);
    } else {
      // Catch the target up first (thesis §3.10); TimeoutNow follows once its log matches.
      if (pr.state === 'probe') pr.probeSent = false;
      this.sendAppendLoop(to, pr);
    }
  }

  compact(index: number, data: Uint8Array): void {
    if (!isSafeIndex(index)) throw new InvalidArgumentError('compact index must be a non-negative integer');
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('snapshot data must be a Uint8Array');
    const log = this.log;
    if (index > log.applied) throw new InvalidArgumentError(`cannot compact to ${index}: applied index is ${log.applied}`);
    if (index <= log.snapshotIndex() || index === 0) return;
    const term = log.term(index);
    if (term === undefined) throw new InvalidArgumentError(`cannot compact to ${index}: entry not in the log`);
    const snap: Snapshot = { meta: { index, term, config: log.configAt(index) }, data };
    log.setLocalSnapshot(snap, index - this.o.trailingEntries);
  }

  hasReady(): boolean {
    const log = this.log;
    return (
      this.msgs.length > 0 ||
      this.readStates.length > 0 ||
      log.hasUnstable() ||
      log.hasNextCommitted() ||
      log.pendingSnapshot !== null ||
      log.pendingTruncateFrom !== null ||
      log.pendingCompactTo !== null ||
      this.term !== this.lastHard.term ||
      this.vote !== this.lastHard.vote ||
      log.commit !== this.lastHard.commit ||
      (this.role === 'leader' && (this.needAppendBroadcast || this.needCommitBroadcast || this.needReadHeartbeat)) ||
      this.forwardQueue.length > 0 ||
      this.forwardReads[0]!.length > 0 ||
      this.forwardReads[1]!.length > 0
    );
  }

  ready(): Ready<RaftMessage> {
    this.flush();
    const log = this.log;
    let hardState: HardState | null = null;
    // A leader whose term and vote are already durable may send before persisting (thesis
    // §10.2.1): its messages depend only on durable state; it counts its own new entries toward
    // a quorum only after advance() confirms them (see maybeCommit).
    const sendBeforePersist = this.role === 'leader' && this.term === this.lastHard.term && this.vote === this.lastHard.vote;
    if (this.term !== this.lastHard.term || this.vote !== this.lastHard.vote || log.commit !== this.lastHard.commit) {
      hardState = { term: this.term, vote: this.vote, commit: log.commit };
      this.lastHard = hardState;
    }
    const committed = log.nextCommitted();
    const rd: Ready<RaftMessage> = {
      hardState,
      truncateFrom: log.pendingTruncateFrom,
      compactTo: log.pendingCompactTo,
      snapshot: log.pendingSnapshot,
      entries: log.takeUnstable(),
      messages: this.msgs.length > 0 ? this.msgs : EMPTY_MSGS,
      sendBeforePersist,
      committed,
      reads: this.readStates.length > 0 ? this.readStates : EMPTY_READS,
    };
    log.pendingTruncateFrom = null;
    log.pendingCompactTo = null;
    log.pendingSnapshot = null;
    if (this.msgs.length > 0) this.msgs = [];
    if (this.readStates.length > 0) this.readStates = [];
    this.lastReady = rd;
    return rd;
  }

  advance(rd: Ready<RaftMessage>): void {
    if (rd !== this.lastReady) return;
    this.lastReady = null;
    const log = this.log;
    const n = rd.entries.length;
    if (n > 0) log.persistedTo(rd.entries[n - 1]!.index);
    if (rd.snapshot && rd.snapshot.meta.index > log.applied) log.applied = rd.snapshot.meta.index;
    const c = rd.committed.length;
    if (c > 0 && rd.committed[c - 1]!.index > log.applied) log.applied = rd.committed[c - 1]!.index;
    if (this.role === 'leader' && n > 0) this.maybeCommit();
  }

  status(): CoreStatus {
    const config = this.log.config;
    let role: CoreStatus['role'] = this.role;
    if (role === 'follower' && config.learners.includes(this.id)) role = 'learner';
    return {
      id: this.id,
      role,
      term: this.term,
      leader: this.leader,
      commitIndex: this.log.commit,
      appliedIndex: this.log.applied,
      lastIndex: this.log.lastIndex(),
      snapshotIndex: this.log.snapshotIndex(),
      config,
      transferring: this.leadTransferee !== null,
      droppedMessages: this.dropped,
    };
  }

  // =================================================================== roles

  /** Whether this node may start an election: it is a voter and a next term exists. */
  private canCampaign(): boolean {
    return this.promotable() && this.term < MAX_TERM;
  }

  private promotable(): boolean {
    return this.log.config.voters.includes(this.id) || (this.log.config.outgoingVoters?.includes(this.id) ?? false);
  }

  private inLease(): boolean {
    return this.o.checkQuorum && this.electionElapsed < this.o.electionTicks && (this.leader !== null || this.leaseGuard);
  }

  private resetRandomizedElectionTimeout(): void {
    const e = this.o.electionTicks;
    this.randomizedElectionTimeout = this.random.int(e, 2 * e - 1);
  }

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    const wasLeader = this.role === 'leader';
    if (term > this.term) {
      this.term = term;
      this.vote = null;
    }
    this.role = 'follower';
    this.setLeader(leader);
    this.resetTimers();
    this.votes.clear();
    if (wasLeader) this.clearLeaderState();
  }

  private setLeader(leader: NodeId | null): void {
    if (leader !== this.leader) {
      // Forwarded reads went to a leader we no longer follow: fail them so clients retry.
      this.failForwardedReads(leader);
    }
    this.leader = leader;
  }

  private clearLeaderState(): void {
    const hint = this.leader;
    for (const b of this.readBatches) for (const r of b.requests) this.rejectRead(r, hint);
    for (const r of this.readsAwaitingCommit) this.rejectRead(r, hint);
    this.readBatches = [];
    this.readsAwaitingCommit = [];
    this.needReadHeartbeat = false;
    this.progress.clear();
    this.leadTransferee = null;
    this.promotion = null;
    this.needAppendBroadcast = false;
    this.needCommitBroadcast = false;
    this.uncommittedSize = 0;
    this.committedCurrentTerm = false;
    this.heartbeatLog = [];
  }

  private campaign(pre: boolean, transfer: boolean): void {
    // At MAX_TERM no further term can be asked for: refuse rather than overflow (see MAX_TERM).
    if (!this.canCampaign()) return;
    const log = this.log;
    let voteTerm: number;
    if (pre) {
      this.role = 'precandidate';
      voteTerm = this.term + 1;
    } else {
      this.role = 'candidate';
      this.term += 1;
      this.vote = this.id;
      voteTerm = this.term;
    }
    this.setLeader(null);
    this.resetTimers();
    this.votes.clear();
    this.votes.set(this.id, true);
    if (this.tallyAndAct(pre)) return;
    const type = pre ? RaftMessageType.PreVote : RaftMessageType.Vote;
    const lastLogIndex = log.lastIndex();
    const lastLogTerm = log.lastTerm();
    for (const v of allVoters(log.config)) {
      if (v === this.id) continue;
      this.send({ type, from: this.id, to: v, term: voteTerm, lastLogIndex, lastLogTerm, transfer });
    }
  }

  /** Counts votes; returns true if the election ended (won or lost). */
  private tallyAndAct(pre: boolean): boolean {
    const res = voteResult(this.log.config, (id) => this.votes.get(id));
    if (res === 'won') {
      if (pre) this.campaign(false, false);
      else this.becomeLeader();
      return true;
    }
    if (res === 'lost') {
      this.becomeFollower(this.term, null);
      return true;
    }
    return false;
  }

  private becomeLeader(): void {
    const log = this.log;
    this.role = 'leader';
    this.setLeader(this.id);
    this.resetTimers();
    this.votes.clear();
    this.leaseGuard = false;
    this.progress.clear();
    const last = log.lastIndex();
    this.refreshProgress(); // every member, in probe
    this.leaseRevoked = false;
    this.committedCurrentTerm = false;
    this.uncommittedSize = 0;
    this.leadTransferee = null;
    this.promotion = null;
    this.heartbeatLog = [];
    // A no-op of the new term commits everything before it (§5.4.2, §8).
    this.termStartIndex = last + 1;
    this.appendEntry(EntryType.NoOp, new Uint8Array(0));
  }

  private newProgress(id: NodeId, next: number): Progress {
    const pr = new Progress(next, this.log.config.learners.includes(id), this.o.maxInflightMsgs, this.o.maxInflightBytes);
    pr.lastActiveTick = this.ticks;
    return pr;
  }

  private hearFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.leaseGuard = false;
    if (this.leader !== from) this.setLeader(from);
  }

  // =================================================================== ticks

  private tickElection(): void {
    this.electionElapsed++;
    if (this.leaseGuard && this.electionElapsed >= this.o.electionTicks) this.leaseGuard = false;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.campaign(this.o.preVote, false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.o.checkQuorum && !this.quorumActive()) {
      // Check-quorum (thesis §6.2): no quorum heard from us within an election timeout.
      this.becomeFollower(this.term, null);
      return;
    }
    if (this.electionElapsed >= this.o.electionTicks) this.electionElapsed = 0;
    if (this.leadTransferee !== null) {
      this.transferElapsed++;
      if (this.transferElapsed >= this.o.electionTicks) this.leadTransferee = null; // abort (thesis §3.10)
    }
    if (this.promotion !== null && this.ticks > this.promotion.deadline) this.promotion = null;
    if (this.heartbeatElapsed >= this.o.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
    // Retransmit snapshot chunks that were not acknowledged in time.
    const retry = Math.max(2, Math.ceil(this.o.electionTicks / 2));
    for (const [id, pr] of this.progress) {
      if (pr.state === 'snapshot' && id !== this.id && this.ticks - pr.snapshotSentTick >= retry) this.sendSnapshotChunk(id, pr);
    }
  }

  /** Whether a quorum (self included) was heard from within the last election timeout. */
  private quorumActive(): boolean {
    const horizon = this.ticks - this.o.electionTicks;
    const active = new Set<NodeId>([this.id]);
    for (const [id, pr] of this.progress) if (pr.lastActiveTick > horizon) active.add(id);
    return hasQuorum(this.log.config, active);
  }

  // =================================================================== messages: elections

  private onVoteRequest(m: VoteRequest): void {
    const pre = m.type === RaftMessageType.PreVote;
    const canVote = this.vote === m.from || (this.vote === null && this.leader === null) || (pre && m.term > this.term);
    const respType = pre ? RaftMessageType.PreVoteResponse : RaftMessageType.VoteResponse;
    if (canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, granted: true });
      if (!pre) {
        this.electionElapsed = 0;
        this.vote = m.from; // durable in the same Ready as the reply (contract rule 3)
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, granted: false });
    }
  }

  /** A vote from a voter of our configuration (see admissible) in the election we run. */
  private onVoteResponse(m: VoteResponse): void {
    if (!this.votes.has(m.from)) this.votes.set(m.from, m.granted);
    this.tallyAndAct(m.type === RaftMessageType.PreVoteResponse);
  }

  // =================================================================== messages: replication (follower)

  private onAppend(m: AppendRequest): void {
    const log = this.log;
    let prev = m.prevLogIndex;
    let prevTerm = m.prevLogTerm;
    let ents = m.entries;
    let from = 0;
    if (prev < log.commit) {
      // Entries up to commit are known to match the leader (Log Matching + Leader Completeness):
      // skip them and continue from our commit point.
      const skip = Math.min(log.commit - prev, ents.length);
      from = skip;
      prev = prev + skip;
      prevTerm = skip > 0 ? ents[skip - 1]!.term : prevTerm;
      if (prev < log.commit) {
        this.markVerified(m.from, log.commit);
        this.send({ type: RaftMessageType.AppendResponse, from: this.id, to: m.from, term: this.term, success: true, index: log.commit, conflictIndex: 0, conflictTerm: 0 });
        return;
      }
      // Here prev === commit, and admissible() checked that the entry there matches ours.
    }
    if (!log.matchTerm(prev, prevTerm)) {
      let conflictIndex: number;
      let conflictTerm: number;
      if (prev > log.lastIndex()) {
        conflictIndex = log.lastIndex() + 1;
        conflictTerm = 0;
      } else {
        conflictTerm = log.term(prev) ?? 0;
        conflictIndex = conflictTerm === 0 ? log.commit + 1 : Math.max(log.firstIndexWithTermAtLeast(conflictTerm, prev), log.commit + 1);
      }
      this.send({ type: RaftMessageType.AppendResponse, from: this.id, to: m.from, term: this.term, success: false, index: m.prevLogIndex, conflictIndex, conflictTerm });
      return;
    }
    // Find the first entry that is new or conflicts; entries already present are kept (a stale,
    // shorter AppendEntries must not truncate them, §5.3). Entries from `from` on lie above
    // commit (see above), so a conflict never truncates a committed entry.
    const last = log.lastIndex();
    let i = from;
    for (; i < ents.length; i++) {
      const e = ents[i]!;
      if (e.index > last) break;
      if (log.term(e.index) !== e.term) {
        log.truncateFrom(e.index);
        // Cannot happen below what this leader verified in this term (its log only grows), but
        // never let a verification outlive the entries it was about.
        if (this.verifiedIndex >= e.index) this.verifiedIndex = e.index - 1;
        break;
      }
    }
    if (i < ents.length) log.append(ents, i);
    this.syncConfig();
    const lastNew = m.prevLogIndex + ents.length;
    this.markVerified(m.from, lastNew);
    // A follower never commits past what it has verified against the leader (§5.3).
    log.commitTo(Math.min(m.leaderCommit, lastNew));
    this.send({ type: RaftMessageType.AppendResponse, from: this.id, to: m.from, term: this.term, success: true, index: lastNew, conflictIndex: 0, conflictTerm: 0 });
  }

  private onHeartbeat(m: HeartbeatRequest): void {
    // The leader sends min(commit, our matchIndex), which an honest leader learned from our own
    // answers in this term; still commit only what we verified against this leader in this
    // term ourselves (§5.3): a buggy or forged commit must not apply entries of an old term.
    const log = this.log;
    log.commitTo(Math.min(m.commit, this.verifiedFor(m.from), log.lastIndex()));
    // Could not go as far as the leader says (e.g. we restarted and lost the verification):
    // ask for an AppendEntries, whose consistency check re-verifies our log.
    const unverified = m.commit > log.commit;
    this.send({ type: RaftMessageType.HeartbeatResponse, from: this.id, to: m.from, term: this.term, seq: m.seq, unverified });
  }

  /** Records that our log matches `leader`'s (of the current term) up to `index`. */
  private markVerified(leader: NodeId, index: number): void {
    if (this.verifiedTerm !== this.term || this.verifiedLeader !== leader) {
      this.verifiedTerm = this.term;
      this.verifiedLeader = leader;
      this.verifiedIndex = index;
    } else if (index > this.verifiedIndex) {
      this.verifiedIndex = index;
    }
  }

  /** How far our log is verified to match `leader`'s log of the current term (0 if not at all). */
  private verifiedFor(leader: NodeId): number {
    return this.verifiedTerm === this.term && this.verifiedLeader === leader ? this.verifiedIndex : 0;
  }

  private onSnapshotChunk(m: InstallSnapshotRequest): void {
    const log = this.log;
    const meta = m.meta;
    if (meta.index <= log.commit) {
      this.receiver = null;
      this.markVerified(m.from, log.commit);
      this.send({ type: RaftMessageType.AppendResponse, from: this.id, to: m.from, term: this.term, success: true, index: log.commit, conflictIndex: 0, conflictTerm: 0 });
      return;
    }
    let r = this.receiver;
    if (!r || r.index !== meta.index || r.term !== meta.term || r.size !== m.size) {
      if (m.offset !== 0) {
        this.send({ type: RaftMessageType.SnapshotResponse, from: this.id, to: m.from, term: this.term, index: meta.index, offset: 0 });
        return;
      }
      r = { index: meta.index, term: meta.term, size: m.size, buf: null, received: 0 };
      this.receiver = r;
    }
    if (m.offset !== r.received) {
      this.send({ type: RaftMessageType.SnapshotResponse, from: this.id, to: m.from, term: this.term, index: meta.index, offset: r.received });
      return;
    }
    let data: Uint8Array;
    if (m.offset === 0 && m.data.length === m.size) {
      data = m.data; // one chunk: no copy
    } else {
      if (!r.buf) {
        try {
          r.buf = new Uint8Array(r.size);
        } catch {
          // Out of memory for this snapshot: a local failure, not a bad message (the message
          // was accepted, so it is not counted as dropped); the leader retransmits.
          this.receiver = null;
          return;
        }
      }
      r.buf.set(m.data, m.offset);
      data = r.buf;
    }
    r.received += m.data.length;
    if (r.received < r.size) {
      this.send({ type: RaftMessageType.SnapshotResponse, from: this.id, to: m.from, term: this.term, index: meta.index, offset: r.received });
      return;
    }
    this.receiver = null;
    if (log.matchTerm(meta.index, meta.term)) {
      // We already hold the snapshot's last entry: keep the log, just commit (§7).
      log.commitTo(meta.index);
    } else {
      log.restore({ meta, data });
      this.syncConfig();
    }
    this.markVerified(m.from, log.commit);
    this.send({ type: RaftMessageType.AppendResponse, from: this.id, to: m.from, term: this.term, success: true, index: log.commit, conflictIndex: 0, conflictTerm: 0 });
  }

  // =================================================================== messages: replication (leader)

  private onAppendResponse(m: AppendResponse, pr: Progress): void {
    const log = this.log;
    if (!m.success) {
      if (m.index === 0 && m.conflictIndex === 0) return; // a term notice (already handled)
      if (pr.state === 'snapshot') return;
      if (pr.state === 'replicate' && m.index <= pr.match) return; // stale
      if (pr.state === 'probe' && m.index !== pr.next - 1) return; // stale
      let next: number;
      if (m.conflictTerm > 0) {
        const idx = log.lastIndexWithTermAtMost(m.conflictTerm, m.index);
        next = idx > log.offset && log.term(idx) === m.conflictTerm ? idx + 1 : m.conflictIndex;
      } else {
        next = m.conflictIndex;
      }
      next = Math.max(pr.match + 1, Math.min(next, m.index));
      pr.state = 'probe';
      pr.next = next;
      pr.probeSent = false;
      pr.inflights.reset();
      this.sendAppend(m.from, pr, false);
      return;
    }
    const oldPaused = pr.isPaused();
    if (pr.maybeUpdate(m.index) || (pr.state === 'probe' && pr.match === m.index)) {
      if (pr.state === 'probe') pr.becomeReplicate();
      else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);
      this.maybeCommit();
      if (this.role !== 'leader') return; // stepped down (removed from the configuration)
      if (m.from === this.leadTransferee && pr.match === log.lastIndex()) this.sendTimeoutNow(m.from);
      if (this.promotion?.id === m.from) this.maybePromote();
      this.sendAppendLoop(m.from, pr);
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.index);
      if (oldPaused && !pr.isPaused()) this.sendAppendLoop(m.from, pr);
    }
  }

  private onHeartbeatResponse(m: HeartbeatResponse, pr: Progress): void {
    if (m.seq > pr.heartbeatAck) pr.heartbeatAck = m.seq;
    if (pr.match < this.log.lastIndex() || m.unverified) {
      // Resume a paused probe, and in replicate state make sure lost messages cannot stall the
      // follower: free one in-flight slot and send (possibly empty) AppendEntries from `next`.
      // Also when the follower could not commit what the heartbeat said (`unverified`, e.g.
      // after a restart): the AppendEntries carries leaderCommit and re-verifies its log.
      if (pr.state === 'probe') pr.probeSent = false;
      else if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
      if (pr.state !== 'snapshot') this.sendAppend(m.from, pr, true);
    }
    // The TimeoutNow of a transfer may have been lost or refused (the target was between
    // pre-vote rounds): repeat it while the transfer lasts and the target is caught up.
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    if (this.readBatches.length > 0) this.releaseReads();
  }

  private onSnapshotResponse(m: SnapshotResponse, pr: Progress): void {
    if (pr.state !== 'snapshot' || m.index !== pr.pendingSnapshot) return;
    const snap = this.log.snapshot;
    if (!snap) return;
    pr.snapshotAcked = Math.min(m.offset, snap.data.length);
    if (pr.snapshotAcked < snap.data.length) this.sendSnapshotChunk(m.from, pr);
  }

  /** Sends as many AppendEntries as flow control allows. */
  private sendAppendLoop(to: NodeId, pr: Progress): void {
    while (this.sendAppend(to, pr, false)) {
      if (pr.state !== 'replicate') break;
    }
  }

  /**
   * Sends one AppendEntries (or starts a snapshot) to `to`. Returns true if entries were sent.
   * With `sendIfEmpty`, sends an empty one to carry the commit index.
   */
  private sendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (to === this.id) return false;
    if (pr.isPaused()) return false;
    const log = this.log;
    const prev = pr.next - 1;
    const prevTerm = log.term(prev);
    if (prevTerm === undefined || prev < log.offset) {
      this.startSnapshot(to, pr);
      return false;
    }
    const ents = pr.next <= log.lastIndex() ? log.slice(pr.next, this.o.maxSizePerMsg) : [];
    if (ents.length === 0 && !sendIfEmpty) return false;
    const commit = log.commit;
    this.send({ type: RaftMessageType.Append, from: this.id, to, term: this.term, prevLogIndex: prev, prevLogTerm: prevTerm, entries: ents, leaderCommit: commit });
    pr.sentCommit = commit;
    if (pr.state === 'replicate') {
      const n = ents.length;
      if (n > 0) {
        let bytes = 0;
        for (let i = 0; i < n; i++) bytes += ents[i]!.data.length;
        const last = ents[n - 1]!.index;
        pr.next = last + 1;
        pr.inflights.add(last, bytes);
      }
    } else {
      pr.probeSent = true;
    }
    return ents.length > 0;
  }

  private startSnapshot(to: NodeId, pr: Progress): void {
    const snap = this.log.snapshot;
    if (!snap) return;
    pr.becomeSnapshot(snap.meta.index);
    this.sendSnapshotChunk(to, pr);
  }

  private sendSnapshotChunk(to: NodeId, pr: Progress): void {
    const snap = this.log.snapshot;
    if (!snap) return;
    if (pr.pendingSnapshot !== snap.meta.index) pr.becomeSnapshot(snap.meta.index); // a newer snapshot replaced it
    const size = snap.data.length;
    const offset = pr.snapshotAcked;
    const end = Math.min(size, offset + this.o.snapshotChunkBytes);
    this.send({
      type: RaftMessageType.InstallSnapshot,
      from: this.id,
      to,
      term: this.term,
      meta: snap.meta,
      size,
      offset,
      data: offset === 0 && end === size ? snap.data : snap.data.subarray(offset, end),
    });
    pr.snapshotSent = end;
    pr.snapshotSentTick = this.ticks;
  }

  private sendTimeoutNow(to: NodeId): void {
    // The target will campaign past the voters' check-quorum stickiness, possibly later than
    // we think (a delayed message): no more lease reads in this term.
    this.leaseRevoked = true;
    this.send({ type: RaftMessageType.TimeoutNow, from: this.id, to, term: this.term });
  }

  private broadcastHeartbeat(): void {
    const seq = ++this.heartbeatSeq;
    this.heartbeatLog.push(seq, this.ticks);
    // Keep only what a lease can still use.
    if (this.heartbeatLog.length > 4 * (this.o.electionTicks + 2)) this.heartbeatLog.splice(0, 2 * (this.o.electionTicks + 2));
    const commit = this.log.commit;
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      this.send({ type: RaftMessageType.Heartbeat, from: this.id, to: id, term: this.term, commit: Math.min(pr.match, commit), seq });
    }
    for (const b of this.readBatches) if (b.seq === 0) b.seq = seq;
    this.needReadHeartbeat = false;
  }

  /** Advances commitIndex to the highest current-term index a quorum holds (§5.3, §5.4.2). */
  private maybeCommit(): boolean {
    const log = this.log;
    const idx = committedIndex(log.config, (id) => (id === this.id ? log.persisted : (this.progress.get(id)?.match ?? 0)));
    if (!Number.isFinite(idx) || idx <= log.commit) return false;
    if (log.term(idx) !== this.term) return false; // Figure 8: only current-term entries by counting
    const old = log.commit;
    log.commitTo(idx);
    this.onCommitAdvanced(old);
    return true;
  }

  private onCommitAdvanced(old: number): void {
    const log = this.log;
    this.needCommitBroadcast = true;
    if (this.uncommittedSize > 0) {
      for (let i = Math.max(old + 1, this.termStartIndex); i <= log.commit; i++) {
        const e = log.entry(i);
        if (e && e.type === EntryType.Normal) this.uncommittedSize -= e.data.length;
      }
      if (this.uncommittedSize < 0) this.uncommittedSize = 0;
    }
    if (!this.committedCurrentTerm && log.commit >= this.termStartIndex) {
      this.committedCurrentTerm = true;
      const waiting = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const r of waiting) this.leaderRead(r, ReadMode.Linearizable);
    }
    if (log.configIndex > old) this.refreshProgress(); // a configuration entry just committed
    const c = log.config;
    if (log.configIndex <= log.commit) {
      if (isJoint(c)) {
        // Auto-leave: C_old,new is committed, so append C_new (thesis §4.3).
        const next: { -readonly [K in keyof Configuration]: Configuration[K] } = { voters: [...c.voters], learners: [...c.learners] };
        if (c.addresses) next.addresses = c.addresses;
        this.appendEntry(EntryType.Config, encodeConfiguration(next));
        return;
      }
      if (!c.voters.includes(this.id)) {
        // Removed leader (thesis §4.2.2): step down once C_new is committed, handing over to the
        // most up-to-date voter so the cluster need not wait for an election timeout.
        let best: NodeId | null = null;
        let bestMatch = -1;
        for (const v of c.voters) {
          const pr = this.progress.get(v);
          if (pr && pr.match > bestMatch) {
            best = v;
            bestMatch = pr.match;
          }
        }
        if (best !== null && bestMatch === log.lastIndex()) this.sendTimeoutNow(best);
        this.becomeFollower(this.term, null);
        return;
      }
    }
    if (this.promotion) this.maybePromote();
  }

  /** Promotes a caught-up learner through a joint configuration (thesis §4.2.1, §4.3). */
  private maybePromote(): void {
    const p = this.promotion;
    if (!p || this.role !== 'leader') return;
    const log = this.log;
    const c = log.config;
    if (isJoint(c) || log.configIndex > log.commit) return;
    if (!c.learners.includes(p.id)) {
      if (c.voters.includes(p.id)) this.promotion = null;
      return;
    }
    const pr = this.progress.get(p.id);
    if (!pr || pr.match < log.commit) return;
    this.promotion = null;
    const next: { -readonly [K in keyof Configuration]: Configuration[K] } = {
      voters: [...c.voters, p.id],
      learners: c.learners.filter((x) => x !== p.id),
      outgoingVoters: [...c.voters],
    };
    if (p.address !== undefined) next.addresses = { ...(c.addresses ?? {}), [p.id]: p.address };
    else if (c.addresses) next.addresses = c.addresses;
    this.appendEntry(EntryType.Config, encodeConfiguration(next));
  }

  private checkCanAppend(bytes: number): void {
    if (this.leadTransferee !== null) throw new TransferInProgressError();
    const max = this.o.maxUncommittedEntriesSize;
    if (max > 0 && this.uncommittedSize > 0 && this.uncommittedSize + bytes > max) throw new UncommittedLogFullError();
  }

  /** Leader: appends one entry of the current term to its log. */
  private appendEntry(type: EntryType, data: Uint8Array): void {
    const log = this.log;
    log.appendOne({ index: log.lastIndex() + 1, term: this.term, type, data });
    this.needAppendBroadcast = true;
    if (type === EntryType.Config) this.syncConfig();
    // A single-voter cluster commits as soon as the entry is durable (see advance).
  }

  /** Applies a change of the newest configuration to leader bookkeeping. */
  private syncConfig(): void {
    const log = this.log;
    if (log.configVersion === this.seenConfigVersion) return;
    this.seenConfigVersion = log.configVersion;
    if (this.role !== 'leader') {
      if (this.role !== 'follower' && !this.promotable()) this.becomeFollower(this.term, this.leader);
      return;
    }
    this.refreshProgress();
    this.maybeCommit(); // a smaller or different quorum may already hold more
  }

  /**
   * Leader: keeps a progress record for every member of the newest configuration, and also
   * of the committed one until the newest commits, so a server being removed still receives
   * (and learns of) its removal instead of campaigning from a stale configuration.
   */
  private refreshProgress(): void {
    const log = this.log;
    const c = log.config;
    const members = new Set(allMembers(c));
    if (log.configIndex > log.commit) for (const id of allMembers(log.configAt(log.commit))) members.add(id);
    for (const id of [...this.progress.keys()]) {
      if (!members.has(id)) {
        this.progress.delete(id);
        if (this.leadTransferee === id) this.leadTransferee = null;
      }
    }
    for (const id of members) {
      let pr = this.progress.get(id);
      if (!pr) {
        // Start by offering the last entry (the configuration entry that added the member, or
        // the entry before a new leader's no-op): the first probe then carries data.
        pr = this.newProgress(id, Math.max(log.offset + 1, log.lastIndex()));
        if (id === this.id) {
          pr.match = log.persisted;
          pr.state = 'replicate';
        }
        this.progress.set(id, pr);
      }
      pr.isLearner = c.learners.includes(id);
    }
  }

  // =================================================================== proposals and reads

  private onPropose(m: ProposeRequest): void {
    if (this.role !== 'leader') {
      this.dropped++;
      return;
    }
    // All or nothing (as etcd): a batch that does not fit is dropped whole, never half appended.
    let bytes = 0;
    for (const data of m.commands) bytes += data.length;
    try {
      this.checkCanAppend(bytes);
    } catch {
      this.dropped++;
      return;
    }
    for (const data of m.commands) {
      this.appendEntry(EntryType.Normal, data);
      this.uncommittedSize += data.length;
    }
  }

  private leaderRead(r: ReadRequest, mode: ReadMode): void {
    const log = this.log;
    if (mode === ReadMode.Lease) {
      if (this.committedCurrentTerm && this.leadTransferee === null && this.leaseValid()) this.answerRead(r, log.commit);
      else this.answerReadStatus(r, ReadStatus.LeaseExpired);
      return;
    }
    if (!this.committedCurrentTerm) {
      // Thesis §6.4 step 1: a new leader serves reads only once it committed an entry of its term.
      this.readsAwaitingCommit.push(r);
      return;
    }
    if (this.selfIsQuorum()) {
      this.answerRead(r, log.commit);
      return;
    }
    let b = this.readBatches[this.readBatches.length - 1];
    if (!b || b.seq !== 0) {
      b = { index: log.commit, seq: 0, requests: [] };
      this.readBatches.push(b);
    }
    b.index = log.commit; // commit only grows; the batch is not yet confirmed
    b.requests.push(r);
    this.needReadHeartbeat = true;
  }

  /** Whether this node alone is a quorum (a single-voter configuration). */
  private selfIsQuorum(): boolean {
    const c = this.log.config;
    const one = (v: readonly NodeId[] | undefined) => v === undefined || (v.length === 1 && v[0] === this.id);
    return c.voters.length === 1 && one(c.voters) && one(c.outgoingVoters);
  }

  /** The highest heartbeat sequence number acknowledged by a quorum (self counts as latest). */
  private quorumAckedSeq(): number {
    const v = committedIndex(this.log.config, (id) => (id === this.id ? this.heartbeatSeq : (this.progress.get(id)?.heartbeatAck ?? 0)));
    return Number.isFinite(v) ? v : this.heartbeatSeq;
  }

  private releaseReads(): void {
    const acked = this.quorumAckedSeq();
    let k = 0;
    const batches = this.readBatches;
    while (k < batches.length && batches[k]!.seq !== 0 && batches[k]!.seq <= acked) {
      const b = batches[k]!;
      for (const r of b.requests) this.answerRead(r, b.index);
      k++;
    }
    if (k > 0) this.readBatches = batches.slice(k);
  }

  /** Whether the leader lease holds (thesis §6.4.1). */
  private leaseValid(): boolean {
    if (this.leaseRevoked) return false;
    if (this.selfIsQuorum()) return true;
    const seq = this.quorumAckedSeq();
    if (seq === 0) return false;
    const hl = this.heartbeatLog;
    for (let i = hl.length - 2; i >= 0; i -= 2) {
      if (hl[i] === seq) return this.ticks - hl[i + 1]! < this.leaseTicks;
      if (hl[i]! < seq) break;
    }
    return false;
  }

  private answerRead(r: ReadRequest, index: number): void {
    if (r.from === null) {
      this.readStates.push({ id: r.id, index });
      return;
    }
    this.send({ type: RaftMessageType.ReadIndexResponse, from: this.id, to: r.from, term: this.term, ids: [r.id], status: ReadStatus.Ok, index, leaderHint: this.id, nonce: r.nonce });
  }

  private answerReadStatus(r: ReadRequest, status: ReadStatus): void {
    if (r.from === null) {
      this.readStates.push({ id: r.id, error: status === ReadStatus.LeaseExpired ? new LeaseExpiredError() : new NotLeaderError(this.leader) });
      return;
    }
    this.send({ type: RaftMessageType.ReadIndexResponse, from: this.id, to: r.from, term: this.term, ids: [r.id], status, index: 0, leaderHint: this.leader, nonce: r.nonce });
  }

  private rejectRead(r: ReadRequest, hint: NodeId | null): void {
    if (r.from === null) {
      this.readStates.push({ id: r.id, error: new NotLeaderError(hint) });
      return;
    }
    this.send({ type: RaftMessageType.ReadIndexResponse, from: this.id, to: r.from, term: this.term, ids: [r.id], status: ReadStatus.NotLeader, index: 0, leaderHint: hint, nonce: r.nonce });
  }

  private onReadIndex(m: ReadIndexRequest): void {
    if (this.role !== 'leader') {
      this.send({ type: RaftMessageType.ReadIndexResponse, from: this.id, to: m.from, term: this.term, ids: m.ids, status: ReadStatus.NotLeader, index: 0, leaderHint: this.leader, nonce: m.nonce });
      return;
    }
    if (m.mode === ReadMode.Lease && !this.o.leaseRead) {
      this.send({ type: RaftMessageType.ReadIndexResponse, from: this.id, to: m.from, term: this.term, ids: m.ids, status: ReadStatus.LeaseExpired, index: 0, leaderHint: this.id, nonce: m.nonce });
      return;
    }
    for (const id of m.ids) this.leaderRead({ id, from: m.from, nonce: m.nonce }, m.mode);
  }

  private onReadIndexResponse(m: ReadIndexResponse): void {
    if (m.nonce !== this.readNonce) {
      this.dropped++; // an answer to an earlier incarnation of this node (no effect)
      return;
    }
    for (const id of m.ids) {
      if (!this.readsInFlight.delete(id)) continue;
      if (m.status === ReadStatus.Ok) this.readStates.push({ id, index: m.index });
      else if (m.status === ReadStatus.LeaseExpired) this.readStates.push({ id, error: new LeaseExpiredError() });
      else this.readStates.push({ id, error: new NotLeaderError(m.leaderHint === this.id ? null : m.leaderHint) });
    }
  }

  private failForwardedReads(hint: NodeId | null): void {
    if (this.readsInFlight.size === 0) return;
    for (const id of this.readsInFlight) this.readStates.push({ id, error: new NotLeaderError(hint) });
    this.readsInFlight.clear();
    this.forwardReads = [[], []];
  }

  // =================================================================== output

  private send(m: RaftMessage): void {
    this.msgs.push(m);
  }

  /** Turns pending work into messages (batched once per Ready). */
  private flush(): void {
    if (this.role === 'leader') {
      if (this.forwardQueue.length > 0) {
        // Proposals queued for forwarding before this node won an election: append them here.
        const q = this.forwardQueue;
        this.forwardQueue = [];
        this.onPropose({ type: RaftMessageType.Propose, from: this.id, to: this.id, term: this.term, commands: q });
      }
      if (this.needAppendBroadcast || this.needCommitBroadcast) {
        const commitOnly = this.needCommitBroadcast;
        this.needAppendBroadcast = false;
        this.needCommitBroadcast = false;
        const commit = this.log.commit;
        for (const [id, pr] of this.progress) {
          if (id === this.id) continue;
          this.sendAppendLoop(id, pr);
          // Tell an up-to-date follower the new commit index (it may commit up to next - 1).
          if (commitOnly && pr.state === 'replicate' && Math.min(pr.next - 1, commit) > pr.sentCommit) {
            this.sendAppend(id, pr, true);
          }
        }
      }
      for (const mode of [ReadMode.Linearizable, ReadMode.Lease] as const) {
        const ids = this.forwardReads[mode]!;
        if (ids.length === 0) continue;
        this.forwardReads[mode] = [];
        for (const id of ids) {
          this.readsInFlight.delete(id);
          this.leaderRead({ id, from: null, nonce: 0 }, mode);
        }
      }
      if (this.needReadHeartbeat) this.broadcastHeartbeat();
      return;
    }
    const leader = this.leader;
    if (this.forwardQueue.length > 0) {
      if (leader !== null) this.send({ type: RaftMessageType.Propose, from: this.id, to: leader, term: this.term, commands: this.forwardQueue });
      this.forwardQueue = [];
    }
    for (const mode of [ReadMode.Linearizable, ReadMode.Lease] as const) {
      const ids = this.forwardReads[mode]!;
      if (ids.length === 0) continue;
      if (leader !== null) {
        this.send({ type: RaftMessageType.ReadIndex, from: this.id, to: leader, term: this.term, mode, ids, nonce: this.readNonce });
      } else {
        for (const id of ids) {
          this.readsInFlight.delete(id);
          this.readStates.push({ id, error: new NotLeaderError(null) });
        }
      }
      this.forwardReads[mode] = [];
    }
  }

  // =================================================================== validation

  /**
   * Who may send what (checked after {@link valid}, before anything changes; a message failing
   * it is dropped and counted with no effect). Raft has no authentication, so these rules do
   * not stop a forger who knows the members and the term; they keep confused, removed, stale or
   * unknown servers from disturbing the cluster, and keep every "dropped" message effect-free:
   *
   * - AppendEntries, heartbeats and InstallSnapshot are accepted from any server: a joining node
   *   (empty configuration) or a lagging one must follow a leader it does not know yet. But in
   *   the current term only from the leader we know (Election Safety: one leader per term), not
   *   by a leader, and an AppendEntries contradicting our committed log is refused up front.
   * - TimeoutNow only in our term, from our leader (or from a voter while we know no leader:
   *   a pre-vote round that just failed forgot it, and only the leader of a term sends
   *   TimeoutNow), to a follower or pre-candidate that can campaign.
   * - Vote and pre-vote requests from any server whose log is at least as up to date as ours (a
   *   voter we do not know yet may need our vote, thesis §4.3); a server outside our
   *   configuration with an older log could never get it, so its term is not adopted (a removed
   *   server cannot disrupt, thesis §4.2.3, even without check-quorum).
   * - Vote answers only from voters of the newest configuration (the ones we ask).
   * - AppendEntries/heartbeat/snapshot answers: on a leader, from the servers it replicates to;
   *   elsewhere only from members (they can carry a higher term and nothing else).
   * - ReadIndex answers only from our current leader (reads forwarded to an earlier leader
   *   were already failed when it changed).
   * - Proposals and ReadIndex requests are client requests: accepted from anyone (their term is
   *   not used); a non-leader refuses them as before.
   */
  private admissible(m: RaftMessage): boolean {
    switch (m.type) {
      case RaftMessageType.Append:
      case RaftMessageType.Heartbeat:
      case RaftMessageType.InstallSnapshot:
        if (m.term === this.term && (this.role === 'leader' || (this.leader !== null && this.leader !== m.from))) return false;
        return !(m.type === RaftMessageType.Append && m.term >= this.term && this.contradictsCommitted(m));
      case RaftMessageType.TimeoutNow:
        return (
          m.term === this.term &&
          (m.from === this.leader || (this.leader === null && this.isKnownVoter(m.from))) &&
          (this.role === 'follower' || this.role === 'precandidate') &&
          this.canCampaign()
        );
      case RaftMessageType.Vote:
      case RaftMessageType.PreVote:
        return this.isKnownVoter(m.from) || this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
      case RaftMessageType.VoteResponse:
      case RaftMessageType.PreVoteResponse:
        return isVoter(this.log.config, m.from);
      case RaftMessageType.AppendResponse:
      case RaftMessageType.HeartbeatResponse:
      case RaftMessageType.SnapshotResponse:
        return this.role === 'leader' ? this.progress.has(m.from) : this.isKnownMember(m.from);
      case RaftMessageType.ReadIndexResponse:
        return m.from === this.leader;
      default:
        return true;
    }
  }

  /**
   * Whether an AppendEntries claims, at or below our commitIndex, an entry other than ours: it
   * cannot come from a legitimate leader (Leader Completeness), so it is refused before its
   * term or leadership is taken into account. Entries at or below commit are not compared
   * otherwise (they may be compacted); only the one at commit, where onAppend resumes.
   */
  private contradictsCommitted(m: AppendRequest): boolean {
    const commit = this.log.commit;
    const prev = m.prevLogIndex;
    if (prev >= commit) return false;
    const skip = Math.min(commit - prev, m.entries.length);
    if (prev + skip < commit) return false;
    return !this.log.matchTerm(commit, m.entries[skip - 1]!.term);
  }

  /** Whether `id` votes in the newest or the committed configuration. */
  private isKnownVoter(id: NodeId): boolean {
    const log = this.log;
    return isVoter(log.config, id) || (log.configIndex > log.commit && isVoter(log.configAt(log.commit), id));
  }

  /** Whether `id` is a member (voter or learner) of the newest or the committed configuration. */
  private isKnownMember(id: NodeId): boolean {
    const log = this.log;
    const has = (c: Configuration) => isVoter(c, id) || c.learners.includes(id);
    return has(log.config) || (log.configIndex > log.commit && has(log.configAt(log.commit)));
  }

  /** Structural checks; anything failing is dropped and counted (contract rule 5). */
  private valid(m: RaftMessage): boolean {
    if (m === null || typeof m !== 'object') return false;
    if (m.to !== this.id || !isValidNodeId(m.from) || m.from === this.id || !isSafeIndex(m.term) || m.term > MAX_TERM) return false;
    switch (m.type) {
      case RaftMessageType.Vote:
      case RaftMessageType.PreVote:
        return m.term >= 1 && isSafeIndex(m.lastLogIndex) && isSafeIndex(m.lastLogTerm) && m.lastLogTerm <= m.term && typeof m.transfer === 'boolean';
      case RaftMessageType.VoteResponse:
      case RaftMessageType.PreVoteResponse:
        return typeof m.granted === 'boolean';
      case RaftMessageType.Append: {
        if (!isSafeIndex(m.prevLogIndex) || !isSafeIndex(m.prevLogTerm) || !isSafeIndex(m.leaderCommit) || !Array.isArray(m.entries)) return false;
        if (m.prevLogTerm > m.term || (m.prevLogIndex === 0 && m.prevLogTerm !== 0)) return false;
        let prevTerm = m.prevLogTerm;
        const ents = m.entries;
        for (let i = 0; i < ents.length; i++) {
          const e = ents[i];
          if (!e || e.index !== m.prevLogIndex + 1 + i || !isSafeIndex(e.term) || e.term < prevTerm || e.term > m.term) return false;
          if (!(e.data instanceof Uint8Array)) return false;
          if (e.type === EntryType.Config) {
            const c = tryDecodeConfiguration(e.data);
            if (!c) return false;
            try {
              validateConfiguration(c);
            } catch {
              return false;
            }
          } else if (e.type !== EntryType.Normal && e.type !== EntryType.NoOp) return false;
          prevTerm = e.term;
        }
        return true;
      }
      case RaftMessageType.AppendResponse:
        return typeof m.success === 'boolean' && isSafeIndex(m.index) && isSafeIndex(m.conflictIndex) && isSafeIndex(m.conflictTerm) && m.conflictTerm <= m.term;
      case RaftMessageType.Heartbeat:
        return isSafeIndex(m.commit) && isSafeIndex(m.seq);
      case RaftMessageType.HeartbeatResponse:
        return isSafeIndex(m.seq) && typeof m.unverified === 'boolean';
      case RaftMessageType.InstallSnapshot: {
        const meta = m.meta;
        if (!meta || !isSafeIndex(meta.index) || meta.index < 1 || !isSafeIndex(meta.term) || meta.term < 1 || meta.term > m.term) return false;
        if (!isSafeIndex(m.size) || !isSafeIndex(m.offset) || !(m.data instanceof Uint8Array) || m.offset + m.data.length > m.size) return false;
        try {
          validateConfiguration(meta.config);
        } catch {
          return false;
        }
        return true;
      }
      case RaftMessageType.SnapshotResponse:
        return isSafeIndex(m.index) && isSafeIndex(m.offset);
      case RaftMessageType.TimeoutNow:
        return m.term >= 1;
      case RaftMessageType.Propose:
        return Array.isArray(m.commands) && m.commands.every((c) => c instanceof Uint8Array);
      case RaftMessageType.ReadIndex:
        return (m.mode === ReadMode.Linearizable || m.mode === ReadMode.Lease) && isSafeIndex(m.nonce) && Array.isArray(m.ids) && m.ids.every((x) => Number.isSafeInteger(x));
      case RaftMessageType.ReadIndexResponse:
        return (
          Array.isArray(m.ids) &&
          m.ids.every((x) => Number.isSafeInteger(x)) &&
          (m.status === ReadStatus.Ok || m.status === ReadStatus.NotLeader || m.status === ReadStatus.LeaseExpired) &&
          isSafeIndex(m.index) &&
          isSafeIndex(m.nonce) &&
          (m.leaderHint === null || isValidNodeId(m.leaderHint))
        );
      default:
        return false;
    }
  }
}
