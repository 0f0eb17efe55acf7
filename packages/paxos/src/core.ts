/**
 * `PaxosCore`: Multi-Paxos with a distinguished leader as a pure, deterministic
 * {@link ConsensusCore} (the OmniPaxos / frankenpaxos "sans-IO" shape: every step's durable
 * changes leave in one `Ready`, persisted in one storage write before any message that depends
 * on them).
 *
 * Roles on one node: every member is an acceptor and a learner; a voter whose election timer
 * fires becomes a proposer (candidate), runs phase 1 once for every slot above its chosen
 * watermark, and on a phase-1 quorum becomes the leader, re-proposing the highest-ballot value
 * of every open slot (no-ops in gaps) and then pipelining batched phase-2 `Accept`s.
 *
 * Ballots are pairs (round, owner) ordered by round then owner, and an acceptor promises at most
 * one owner per round ({@link HardState} `{term: round, vote: owner}`), so within one round at
 * most one proposer can ever get a value chosen and a slot's round (`Entry.term`) is enough for
 * recovery. See the README for the argument.
 */
import {
  allMembers,
  type Configuration,
  ConfigChangeInProgressError,
  type ConsensusCore,
  type CoreInit,
  type CoreReadMode,
  type CoreStatus,
  decodeConfiguration,
  EMPTY_CONFIGURATION,
  encodeConfiguration,
  type Entry,
  EntryType,
  type HardState,
  InvalidArgumentError,
  InvalidConfigurationError,
  isValidNodeId,
  isVoter,
  LeaseExpiredError,
  type MembershipChange,
  NotLeaderError,
  type NodeId,
  type Random,
  type Ready,
  type ReadState,
  type Role,
  type Snapshot,
  type SnapshotMeta,
  TransferInProgressError,
  UncommittedLogFullError,
  validateConfiguration,
} from '@synod/log';
import { isValidPaxosMessage, NO_DATA } from './codec.js';
import {
  type AcceptedMessage,
  type AcceptMessage,
  type ForwardMessage,
  MAX_ROUND,
  type NackMessage,
  type PaxosMessage,
  PaxosMessageType as T,
  type PrepareMessage,
  type PromiseMessage,
  type ReadIndexMessage,
  type ReadIndexResponseMessage,
  type SnapshotAckMessage,
  type SnapshotMessage,
  type TimeoutNowMessage,
  roundsWithinBound,
} from './messages.js';
import { checkQuorumSizes, isQuorum, quorumValue, type ResolvedPaxosOptions } from './options.js';
import { SlotLog } from './slot-log.js';

/** Replication state of one peer, seen from the leader (etcd's `Progress`, simplified). */
interface Progress {
  /** Next slot to send. */
  next: number;
  /** Highest slot known to hold, with all below it, a chosen value or this ballot's value. */
  match: number;
  /** `probe`: one batch per heartbeat until the peer answers; `replicate`: pipeline. */
  state: 'probe' | 'replicate' | 'snapshot';
  /** In `probe`, a batch is in flight. */
  probeSent: boolean;
  /** Tick of the last message from the peer under this ballot. */
  lastAckTick: number;
  /** Tick at which `match` last grew. */
  lastMatchTick: number;
  /** Highest heartbeat round the peer echoed. */
  ackSeq: number;
  /** Commit watermark last sent. */
  commitSent: number;
  /** Snapshot transfer in progress. */
  snap: { snapshot: Snapshot; offset: number; inflight: boolean; sentTick: number } | null;
}

/** A read waiting for a quorum-confirmed index: local (`ctx === null`) or forwarded by `from`. */
interface PendingRead {
  readonly id: number;
  readonly from: NodeId | null;
  index: number;
  seq: number;
}

/** A snapshot being received chunk by chunk. */
interface SnapshotReceipt {
  readonly meta: SnapshotMeta;
  readonly total: number;
  readonly chunks: Uint8Array[];
  received: number;
}

const EMPTY_ENTRIES: readonly Entry[] = Object.freeze([]);

function decodeConfigOrNull(data: Uint8Array): Configuration | null {
  try {
    return decodeConfiguration(data);
  } catch {
    return null;
  }
}

/** The configuration in `data` if it decodes and passes `validateConfiguration`, else null. */
function validConfigOrNull(data: Uint8Array): Configuration | null {
  const cfg = decodeConfigOrNull(data);
  if (cfg === null) return null;
  try {
    validateConfiguration(cfg);
  } catch {
    return null;
  }
  return cfg;
}

/**
 * Whether every `Config` entry of `es` carries a valid configuration (decodes, at least one
 * voter, valid and unique ids, no member both voter and learner). A message carrying any other
 * is dropped whole, as the Raft core does.
 */
function configsValid(es: readonly Entry[]): boolean {
  for (const e of es) if (e.type === EntryType.Config && validConfigOrNull(e.data) === null) return false;
  return true;
}

/**
 * Checks beyond the structure `isValidPaxosMessage` verifies: every configuration `m` carries is
 * valid (the `Config` entries of an `Accept` or a `Promise`, a `Snapshot`'s `meta.config`), and
 * a `Promise` reports no entry accepted under a round above the promised one (an acceptor's
 * accepted rounds never exceed its promise, so such a report is forged or corrupt and would
 * otherwise win recovery).
 */
function configsWellFormed(m: PaxosMessage): boolean {
  switch (m.type) {
    case T.Accept:
      return configsValid(m.entries);
    case T.Promise:
      return m.entries.every((e) => e.term <= m.round) && configsValid(m.entries);
    case T.Snapshot:
      try {
        validateConfiguration(m.meta.config);
        return true;
      } catch {
        return false;
      }
    default:
      return true;
  }
}

/** Ballot order: round first, then owner id. A null owner sorts below every id. */
function ballotGreater(r1: number, o1: NodeId | null, r2: number, o2: NodeId | null): boolean {
  if (r1 !== r2) return r1 > r2;
  if (o1 === o2) return false;
  if (o2 === null) return true;
  if (o1 === null) return false;
  return o1 > o2;
}

/** The Multi-Paxos core. Build it through {@link paxos}. */
export class PaxosCore implements ConsensusCore<PaxosMessage> {
  readonly id: NodeId;
  private readonly o: ResolvedPaxosOptions;
  private readonly random: Random;
  private readonly log: SlotLog;

  // --- acceptor state, durable as HardState {term: promisedRound, vote: promisedOwner, commit}
  private promisedRound: number;
  private promisedOwner: NodeId | null;
  /** Chosen watermark: every slot <= commit is chosen and known here (in the log or snapshot). */
  private commit: number;
  /** Highest slot handed to the runtime in `Ready.committed` and advanced (or restored). */
  private applied: number;
  /** The latest snapshot (taken or installed), kept to send to lagging replicas. */
  private snapshot: Snapshot | null;

  // --- persistence bookkeeping (what the next Ready carries)
  private hardDirty = false;
  private persistedHard: HardState;
  private unstable: Entry[] = [];
  private pendingSnapshot: Snapshot | null = null;
  private pendingCompactTo: number | null = null;
  private msgs: PaxosMessage[] = [];
  private readStates: ReadState[] = [];

  // --- role and timers
  private role: Role;
  private leader: NodeId | null = null;
  private ticks = 0;
  private electionElapsed = 0;
  /** Ticks since this node last heard from the leader it is promised to (0 at start). */
  private leaderContactElapsed = 0;
  private electionTimeout: number;
  /** Failed campaigns in a row (grows the randomized backoff). */
  private attempts = 0;
  private maxSeenRound: number;
  private dropped = 0;

  // --- proposer (candidate and leader): ballot (myRound, id)
  private myRound = 0;
  private prepareCommit = 0;
  private promises: Map<NodeId, PromiseMessage> | null = null;
  private prepared: Set<NodeId> | null = null;
  private recoveryBest: Map<number, Entry> | null = null;
  private recoveryMax = 0;
  private campaignForce: { round: number; owner: NodeId } | null = null;

  // --- leader
  private readonly progress = new Map<NodeId, Progress>();
  private targetsDirty = false;
  /** Last slot re-proposed by phase-1 recovery; reads wait until it is chosen. */
  private recoveryEnd = 0;
  /** Highest slot of this ballot's own entries that is durable (the leader's own acceptance). */
  private persistedUpTo = 0;
  /** Slot of the leader's uncommitted `Config` entry (stop-sign), or 0. */
  private stopSign = 0;
  /** Proposals held until the stop-sign slot is chosen (or the pending change is appended). */
  private deferred: Uint8Array[] = [];
  /**
   * A membership change the leader accepted but has not appended yet: it waits until every slot
   * of the log is chosen, so the configuration it was computed from is the one in effect at the
   * slot it lands in (see `proposeMembershipChange`).
   */
  private pendingConfig: Configuration | null = null;
  private heartbeatElapsed = 0;
  private heartbeatDue = false;
  private checkQuorumElapsed = 0;
  private hbSeq = 0;
  private readonly seqSentTick = new Map<number, number>();
  private leaseUntil = -1;
  private leaseDisabled = false;
  private pendingReads: PendingRead[] = [];
  private readsAwaitingRecovery: PendingRead[] = [];
  private transferTo: NodeId | null = null;
  private transferElapsed = 0;
  private timeoutNowSent = false;

  // --- follower
  private matchRound = -1;
  private acceptMatch = 0;
  private forwardBuf: Uint8Array[] = [];
  /** Linearizable reads forwarded to the leader: request id -> tick last sent. */
  private readonly remoteReads = new Map<number, number>();
  private snapRecv: SnapshotReceipt | null = null;

  constructor(init: CoreInit, options: ResolvedPaxosOptions) {
    if (!isValidNodeId(init.id)) throw new InvalidConfigurationError(`invalid node id ${JSON.stringify(init.id)}`);
    this.id = init.id;
    this.o = options;
    this.random = init.random;
    const st = init.state;
    const snap = st.snapshot;
    this.snapshot = snap;
    const snapIndex = snap?.meta.index ?? 0;
    this.log = new SlotLog(snapIndex, snap?.meta.term ?? 0, snap?.meta.config ?? EMPTY_CONFIGURATION);
    for (const e of st.entries) {
      if (e.index <= snapIndex) continue;
      if (e.type === EntryType.Config) {
        // An undecodable or invalid configuration (written by an older version that did not
        // validate the wire) would leave the node unable to count quorums: it becomes a no-op.
        const cfg = validConfigOrNull(e.data);
        if (cfg) this.log.set(e, cfg);
        else this.log.set({ ...e, type: EntryType.NoOp });
      } else {
        this.log.set(e);
      }
    }
    this.promisedRound = st.hardState.term;
    this.promisedOwner = st.hardState.vote;
    this.commit = Math.max(st.hardState.commit, snapIndex);
    this.applied = snapIndex;
    this.persistedHard = st.hardState;
    this.maxSeenRound = this.promisedRound;

    const hasConfig = snap !== null || this.log.configsAbove(0).length > 0;
    if (!hasConfig && init.bootstrap && this.log.get(1) === undefined) {
      // Bootstrap (hashicorp-style): the initial configuration is slot 1, chosen by fiat on every
      // bootstrap node, byte-identical (sorted ids), under round 0, which no proposer ever uses.
      const b = init.bootstrap;
      const cfg: Configuration = {
        voters: [...b.voters].sort(),
        learners: [...b.learners].sort(),
        ...(b.addresses ? { addresses: sortedAddresses(b.addresses) } : {}),
      };
      validateConfiguration(cfg);
      const e: Entry = { index: 1, term: 0, type: EntryType.Config, data: encodeConfiguration(cfg) };
      this.log.set(e, cfg);
      this.unstable.push(e);
      this.commit = Math.max(this.commit, 1);
      this.hardDirty = true;
    }
    const cfg = this.log.newestConfig();
    if (cfg.voters.length > 0) checkQuorumSizes(cfg, this.o);
    this.role = this.followerRole();
    this.electionTimeout = this.randomizedTimeout();
  }

  // ================================================================ ConsensusCore API

  tick(): void {
    this.ticks++;
    if (this.role === 'leader') {
      this.tickLeader();
      return;
    }
    this.electionElapsed++;
    this.leaderContactElapsed++;
    this.resendRemoteReads();
    if (this.electionElapsed >= this.electionTimeout) {
      if (!this.canCampaign() || !this.campaign(null)) {
        this.electionElapsed = 0;
        this.electionTimeout = this.randomizedTimeout();
      }
    }
  }

  step(msg: PaxosMessage): void {
    // Anything refused here, or by a handler returning false, is dropped whole: counted, and with
    // no effect on the node's state (no promise, round, log or timer change).
    if (!isValidPaxosMessage(msg) || msg.to !== this.id || msg.from === this.id || !roundsWithinBound(msg) || !configsWellFormed(msg)) {
      this.dropped++;
      return;
    }
    let ok: boolean;
    switch (msg.type) {
      case T.Prepare:
        ok = this.onPrepare(msg);
        break;
      case T.Promise:
        ok = this.onPromise(msg);
        break;
      case T.Nack:
        ok = this.onNack(msg);
        break;
      case T.Accept:
        ok = this.onAccept(msg);
        break;
      case T.Accepted:
        ok = this.onAccepted(msg);
        break;
      case T.Snapshot:
        ok = this.onSnapshot(msg);
        break;
      case T.SnapshotAck:
        ok = this.onSnapshotAck(msg);
        break;
      case T.TimeoutNow:
        ok = this.onTimeoutNow(msg);
        break;
      case T.Forward:
        ok = this.onForward(msg);
        break;
      case T.ReadIndex:
        ok = this.onReadIndex(msg);
        break;
      case T.ReadIndexResponse:
        ok = this.onReadIndexResponse(msg);
        break;
    }
    if (!ok) this.dropped++;
  }

  propose(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('proposal data must be a Uint8Array');
    if (this.role !== 'leader') {
      if (this.o.forwardProposals && this.leader !== null && this.leader !== this.id) {
        this.forwardBuf.push(data);
        return;
      }
      throw new NotLeaderError(this.leader);
    }
    if (this.transferTo !== null) throw new TransferInProgressError();
    if (this.log.lastIndex - this.commit + this.deferred.length >= this.o.maxUncommittedEntries) {
      throw new UncommittedLogFullError();
    }
    if (this.stopSign > this.commit || this.pendingConfig !== null) {
      this.deferred.push(data);
      return;
    }
    this.appendOwn(EntryType.Normal, data);
  }

  /**
   * Changes membership through the log (stop-sign; see the README). The new configuration is
   * computed from the current one and appended as a `Config` entry once every slot of the log is
   * chosen; until then the change is pending and new proposals wait behind it. Nothing above the
   * entry is proposed until it is chosen. A pending change is dropped if this node stops leading.
   * @throws NotLeaderError, InvalidArgumentError (bad id or type), TransferInProgressError,
   *   ConfigChangeInProgressError (a change is pending or not chosen yet),
   *   InvalidConfigurationError (no voter left, or explicit quorum sizes that would not intersect).
   */
  proposeMembershipChange(change: MembershipChange): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (!change || !isValidNodeId((change as { id?: unknown }).id)) throw new InvalidArgumentError('membership change needs a valid id');
    if (this.transferTo !== null) throw new TransferInProgressError();
    if (this.stopSign > this.commit || this.pendingConfig !== null || this.log.configsAbove(this.commit).length > 0) {
      throw new ConfigChangeInProgressError();
    }
    // No Config entry above the watermark: the newest configuration is the chosen one, and it
    // stays the one in effect at the end of the log until the change is appended.
    const cur = this.log.newestConfig();
    const next = applyChange(cur, change);
    if (sameMembers(cur, next)) return;
    validateConfiguration(next);
    checkQuorumSizes(next, this.o);
    // The change is appended only once every slot below it is chosen (new proposals wait behind
    // it, as behind the stop-sign). A Config entry above unchosen slots could be recovered by a
    // later phase 1 after another configuration was chosen below it (a leader change in between,
    // a retried request), and re-proposing it would undo that configuration: a removed member
    // would come back. With the drain, everything below the slot is chosen when the entry is
    // made, so whichever value is ever chosen there was computed from the configuration in
    // effect at that slot.
    this.pendingConfig = next;
    this.maybeAppendPendingConfig();
  }

  read(id: number, mode: CoreReadMode): void {
    if (this.role !== 'leader') {
      if (mode === 'linearizable' && this.leader !== null && this.leader !== this.id) {
        this.remoteReads.set(id, this.ticks);
        this.msgs.push({ type: T.ReadIndex, from: this.id, to: this.leader, ctx: id } satisfies ReadIndexMessage);
        return;
      }
      this.readStates.push({ id, error: new NotLeaderError(this.leader) });
      return;
    }
    if (mode === 'lease') {
      if (this.leaseValid()) this.readStates.push({ id, index: this.commit });
      else this.readStates.push({ id, error: new LeaseExpiredError() });
      return;
    }
    if (mode !== 'linearizable') throw new InvalidArgumentError(`unknown read mode ${String(mode)}`);
    this.queueRead({ id, from: null, index: 0, seq: 0 });
  }

  transferLeadership(to: NodeId): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (to === this.id) return;
    if (!isValidNodeId(to) || !isVoter(this.log.newestConfig(), to)) {
      throw new InvalidArgumentError(`cannot transfer leadership to ${String(to)}: not a voter`);
    }
    if (this.transferTo !== null) {
      if (this.transferTo === to) return;
      throw new TransferInProgressError();
    }
    this.transferTo = to;
    this.transferElapsed = 0;
    this.timeoutNowSent = false;
    // A forced phase 1 may depose this leader while its lease would still run: no more lease
    // reads under this ballot.
    this.leaseDisabled = true;
    this.maybeSendTimeoutNow();
  }

  compact(index: number, data: Uint8Array): void {
    if (!Number.isSafeInteger(index) || index < 0) throw new InvalidArgumentError(`invalid compaction index ${index}`);
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('snapshot data must be a Uint8Array');
    if (index > this.applied) {
      throw new InvalidArgumentError(`cannot compact to ${index}: only ${this.applied} is applied (chosen watermark ${this.commit})`);
    }
    if (index <= this.log.snapshotIndex) return; // already covered: compaction is idempotent
    const term = this.log.termAt(index) ?? 0;
    const config = this.log.configAt(index + 1);
    const snap: Snapshot = { meta: { index, term, config }, data };
    this.log.compact(index, term);
    this.snapshot = snap;
    this.pendingSnapshot = snap;
    this.pendingCompactTo = Math.max(this.pendingCompactTo ?? 0, index);
  }

  hasReady(): boolean {
    if (this.hardDirty || this.unstable.length > 0 || this.msgs.length > 0 || this.readStates.length > 0) return true;
    if (this.pendingSnapshot !== null || this.pendingCompactTo !== null) return true;
    if (this.forwardBuf.length > 0 && this.leader !== null) return true;
    if (this.role === 'leader' && this.leaderHasMessages()) return true;
    const from = Math.max(this.applied, this.log.snapshotIndex) + 1;
    return from <= this.commit && this.log.get(from) !== undefined;
  }

  ready(): Ready<PaxosMessage> {
    if (this.role === 'leader') this.flushLeader();
    if (this.forwardBuf.length > 0) {
      if (this.leader !== null && this.leader !== this.id) {
        this.msgs.push({ type: T.Forward, from: this.id, to: this.leader, commands: this.forwardBuf } satisfies ForwardMessage);
      }
      this.forwardBuf = [];
    }
    const committed: Entry[] = [];
    for (let s = Math.max(this.applied, this.log.snapshotIndex) + 1; s <= this.commit; s++) {
      const e = this.log.get(s);
      if (!e) break;
      committed.push(e);
    }
    const hardState = this.hardDirty ? this.hardState() : null;
    // A leader whose promise (round, owner) is already durable may send before persisting:
    // its Accepts and commit announcements depend only on durable state, and it counts its own
    // acceptances toward Q2 only after advance() confirms them (Raft thesis §10.2.1, same idea).
    const sendBeforePersist =
      this.role === 'leader' &&
      (hardState === null || (hardState.term === this.persistedHard.term && hardState.vote === this.persistedHard.vote));
    const rd: Ready<PaxosMessage> = {
      hardState,
      sendBeforePersist,
      truncateFrom: null,
      compactTo: this.pendingCompactTo,
      snapshot: this.pendingSnapshot,
      entries: this.takeUnstable(),
      messages: this.msgs,
      committed,
      reads: this.readStates,
    };
    this.hardDirty = false;
    this.msgs = [];
    this.readStates = [];
    this.pendingSnapshot = null;
    this.pendingCompactTo = null;
    return rd;
  }

  advance(rd: Ready<PaxosMessage>): void {
    if (rd.hardState) this.persistedHard = rd.hardState;
    if (rd.snapshot) this.applied = Math.max(this.applied, rd.snapshot.meta.index);
    const lastCommitted = rd.committed[rd.committed.length - 1];
    if (lastCommitted) this.applied = Math.max(this.applied, lastCommitted.index);
    if (this.role === 'leader') {
      let grew = false;
      for (const e of rd.entries) {
        if (e.term === this.myRound && e.index > this.persistedUpTo && this.log.get(e.index) === e) {
          this.persistedUpTo = e.index;
          grew = true;
        }
      }
      if (grew) this.maybeCommit();
    } else if (this.role === 'candidate' && rd.hardState) {
      this.checkPhase1();
    }
  }

  status(): CoreStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.promisedRound,
      leader: this.leader,
      commitIndex: this.commit,
      appliedIndex: this.applied,
      lastIndex: this.log.lastIndex,
      snapshotIndex: this.log.snapshotIndex,
      config: this.log.newestConfig(),
      transferring: this.transferTo !== null,
      droppedMessages: this.dropped,
    };
  }

  /** The ballot this node is promised to: `{round, owner}` (HardState `term` and `vote`). */
  get promise(): { readonly round: number; readonly owner: NodeId | null } {
    return { round: this.promisedRound, owner: this.promisedOwner };
  }

  /** The entry this node holds at `slot` (for tests and tools), or undefined. */
  entryAt(slot: number): Entry | undefined {
    return this.log.get(slot);
  }

  // ================================================================ helpers

  private hardState(): HardState {
    return { term: this.promisedRound, vote: this.promisedOwner, commit: this.commit };
  }

  private setPromise(round: number, owner: NodeId): void {
    if (round === this.promisedRound && owner === this.promisedOwner) return;
    this.promisedRound = round;
    this.promisedOwner = owner;
    if (round > this.maxSeenRound) this.maxSeenRound = round;
    this.hardDirty = true;
  }

  private setCommit(c: number): void {
    if (c <= this.commit) return;
    this.commit = c;
    this.hardDirty = true;
  }

  /** Unstable entries, ascending and unique by slot (last write wins), none compacted. */
  private takeUnstable(): readonly Entry[] {
    const u = this.unstable;
    if (u.length === 0) return EMPTY_ENTRIES;
    this.unstable = [];
    const floor = this.log.snapshotIndex;
    let sorted = true;
    for (let i = 1; i < u.length; i++) {
      if (u[i]!.index <= u[i - 1]!.index) {
        sorted = false;
        break;
      }
    }
    if (sorted && u[0]!.index > floor) return u;
    const by = new Map<number, Entry>();
    for (const e of u) if (e.index > floor) by.set(e.index, e);
    return [...by.values()].sort((a, b) => a.index - b.index);
  }

  private followerRole(): Role {
    return this.log.newestConfig().learners.includes(this.id) ? 'learner' : 'follower';
  }

  /** A voter of the chosen configuration or of the newest one may start phase 1. */
  private canCampaign(): boolean {
    return isVoter(this.log.configAt(this.commit + 1), this.id) || isVoter(this.log.newestConfig(), this.id);
  }

  /**
   * Whether a `Prepare` from `p` with watermark `commit` comes from a node this acceptor knows is
   * not a voter: its chosen watermark is at least the candidate's (so it does not lag behind a
   * change that added `p`), and `p` votes neither in the configuration chosen at that watermark
   * nor in the newest one in its log. Such a Prepare (typically from a removed voter that missed
   * its removal and keeps campaigning) is dropped, so it cannot make acceptors promise a ballot
   * that can never lead. A candidate ahead of us, or any candidate while we know no voters at all
   * (a node waiting to be added), is answered: we may be the one that lags.
   */
  private isRemovedCandidate(p: NodeId, commit: number): boolean {
    if (commit > this.commit) return false;
    const newest = this.log.newestConfig();
    if (newest.voters.length === 0) return false;
    return !isVoter(newest, p) && !isVoter(this.log.configAt(this.commit + 1), p);
  }

  /** Random election timeout in [E, E + E * 2^min(attempts, 3)): randomized backoff. */
  private randomizedTimeout(): number {
    const e = this.o.electionTicks;
    const spread = e * (1 << Math.min(this.attempts, 3));
    return e + this.random.int(0, spread - 1);
  }

  /** Accept rule with one owner per round: (round, owner) >= the promise, same round only for the same owner. */
  private acceptable(round: number, owner: NodeId): boolean {
    if (round > this.promisedRound) return true;
    return round === this.promisedRound && (this.promisedOwner === owner || this.promisedOwner === null);
  }

  private nack(to: NodeId, round: number, lagging = false): void {
    this.msgs.push({
      type: T.Nack,
      from: this.id,
      to,
      round,
      promisedRound: this.promisedRound,
      promisedOwner: this.promisedOwner,
      lagging,
      commit: this.commit,
    } satisfies NackMessage);
  }

  private seen(round: number): void {
    if (round > this.maxSeenRound) this.maxSeenRound = round;
  }

  /** Becomes a follower (or learner) of `leader` (null: unknown), leaving any proposer role. */
  private becomeFollower(leader: NodeId | null): void {
    const wasLeader = this.role === 'leader';
    if (wasLeader) this.leaveLeadership(leader);
    this.promises = null;
    this.prepared = null;
    this.recoveryBest = null;
    this.campaignForce = null;
    if (this.leader !== leader) this.failRemoteReads();
    this.role = this.followerRole();
    this.leader = leader;
    this.electionElapsed = 0;
    this.electionTimeout = this.randomizedTimeout();
  }

  private leaveLeadership(hint: NodeId | null): void {
    for (const r of [...this.pendingReads, ...this.readsAwaitingRecovery]) this.refuseRead(r, hint);
    this.pendingReads = [];
    this.readsAwaitingRecovery = [];
    this.progress.clear();
    this.deferred = [];
    this.pendingConfig = null;
    this.transferTo = null;
    this.stopSign = 0;
    this.leaseUntil = -1;
    this.leaseDisabled = false;
    this.seqSentTick.clear();
    // The node led until now: it counts as having just heard from the leader (itself), so it
    // does not promise a foreign candidate while its own lease could still be believed.
    this.leaderContactElapsed = 0;
  }

  private failRemoteReads(): void {
    for (const id of this.remoteReads.keys()) this.readStates.push({ id, error: new NotLeaderError(null) });
    this.remoteReads.clear();
  }

  /** A forwarded read (or its answer) may be lost: ask again every half election timeout. */
  private resendRemoteReads(): void {
    const leader = this.leader;
    if (this.remoteReads.size === 0 || leader === null || leader === this.id) return;
    const every = Math.max(1, this.o.electionTicks >> 1);
    for (const [id, sent] of this.remoteReads) {
      if (this.ticks - sent < every) continue;
      this.remoteReads.set(id, this.ticks);
      this.msgs.push({ type: T.ReadIndex, from: this.id, to: leader, ctx: id } satisfies ReadIndexMessage);
    }
  }

  // ================================================================ phase 1 (proposer)

  /**
   * Starts phase 1 with a fresh ballot (round above every round seen and promised). Refuses,
   * changing nothing and returning false, when that round would exceed {@link MAX_ROUND}.
   */
  private campaign(force: { round: number; owner: NodeId } | null): boolean {
    const round = Math.max(this.promisedRound, this.maxSeenRound) + 1;
    if (round > MAX_ROUND) return false;
    if (this.role === 'leader') this.leaveLeadership(null);
    this.myRound = round;
    this.setPromise(round, this.id);
    this.failRemoteReads();
    this.role = 'candidate';
    this.leader = null;
    this.prepareCommit = this.commit;
    this.promises = new Map();
    this.prepared = new Set();
    this.recoveryBest = new Map();
    this.recoveryMax = this.commit;
    this.campaignForce = force;
    // Our own accepted values are a report like any acceptor's.
    this.mergeReports(this.log.range(this.commit + 1, this.log.lastIndex));
    this.electionElapsed = 0;
    this.attempts++;
    this.electionTimeout = this.randomizedTimeout();
    this.sendPrepares();
    this.checkPhase1();
    return true;
  }

  private mergeReports(entries: readonly Entry[]): void {
    const best = this.recoveryBest!;
    for (const e of entries) {
      if (e.index <= this.prepareCommit) continue;
      const b = best.get(e.index);
      if (!b || e.term > b.term) best.set(e.index, e);
      if (e.index > this.recoveryMax) this.recoveryMax = e.index;
    }
  }

  /**
   * The configurations governing the slots being recovered: the chosen configuration at the
   * watermark, then each recovered `Config` value (stop-sign: it governs the slots above it).
   */
  private recoveryChain(): Configuration[] {
    const chain = [this.log.configAt(this.prepareCommit + 1)];
    const best = this.recoveryBest!;
    const slots: number[] = [];
    for (const [s, e] of best) if (e.type === EntryType.Config) slots.push(s);
    slots.sort((a, b) => a - b);
    for (const s of slots) {
      const cfg = decodeConfigOrNull(best.get(s)!.data);
      if (cfg) chain.push(cfg);
    }
    return chain;
  }

  private sendPrepares(): void {
    const prepared = this.prepared!;
    const force = this.campaignForce;
    for (const cfg of this.recoveryChain()) {
      for (const v of allMembers(cfg)) {
        if (v === this.id || prepared.has(v) || !isVoter(cfg, v)) continue;
        prepared.add(v);
        this.msgs.push({
          type: T.Prepare,
          from: this.id,
          to: v,
          round: this.myRound,
          commit: this.prepareCommit,
          force: force !== null,
          transferRound: force?.round ?? 0,
          transferOwner: force?.owner ?? null,
        } satisfies PrepareMessage);
      }
    }
  }

  private checkPhase1(): void {
    if (this.role !== 'candidate' || !this.promises) return;
    const selfOk = this.persistedHard.term === this.myRound && this.persistedHard.vote === this.id;
    const promises = this.promises;
    const has = (v: NodeId) => (v === this.id ? selfOk : promises.has(v));
    for (const cfg of this.recoveryChain()) {
      if (cfg.voters.length === 0 || !isQuorum(cfg, has, 'q1', this.o)) return;
    }
    this.becomeLeader();
  }

  private becomeLeader(): void {
    const best = this.recoveryBest!;
    const w = this.prepareCommit;
    this.role = 'leader';
    this.leader = this.id;
    this.attempts = 0;
    this.promises = null;
    this.prepared = null;
    this.recoveryBest = null;
    this.campaignForce = null;
    this.recoveryEnd = this.recoveryMax;
    this.persistedUpTo = w;
    this.stopSign = 0;
    // Re-propose, slot by slot, the highest-ballot value reported; fill gaps with no-ops.
    for (let s = w + 1; s <= this.recoveryEnd; s++) {
      const b = best.get(s);
      const e: Entry = { index: s, term: this.myRound, type: b?.type ?? EntryType.NoOp, data: b?.data ?? NO_DATA };
      if (e.type === EntryType.Config) {
        const cfg = decodeConfigOrNull(e.data)!;
        this.log.set(e, cfg);
        this.stopSign = s;
      } else {
        this.log.set(e);
      }
      this.unstable.push(e);
    }
    this.progress.clear();
    this.targetsDirty = true;
    this.syncTargets();
    this.heartbeatElapsed = 0;
    this.heartbeatDue = true;
    this.checkQuorumElapsed = 0;
    this.hbSeq = 0;
    this.seqSentTick.clear();
    this.leaseUntil = -1;
    this.leaseDisabled = false;
    this.transferTo = null;
    this.deferred = [];
    this.pendingConfig = null;
    this.maybeCommit();
  }

  private onPrepare(m: PrepareMessage): boolean {
    const p = m.from;
    const same = m.round === this.promisedRound && this.promisedOwner === p;
    if (!same && this.isRemovedCandidate(p, m.commit)) return false;
    if (!same && !this.acceptable(m.round, p)) {
      this.nack(p, m.round);
      return true;
    }
    if (!same) {
      // Leader stickiness: while the leader we follow (or we, leading) was heard from in the
      // last electionTicks, foreign candidates wait; this is what keeps leases safe. A transfer
      // authorized by that very leader's ballot passes. The ignored Prepare is dropped: its
      // round is not remembered (a disruptive or hostile round must not leak into our ballots).
      const forced = m.force && m.transferRound === this.promisedRound && m.transferOwner === this.promisedOwner;
      const inContact = this.role === 'leader' || this.leaderContactElapsed < this.o.electionTicks;
      if (inContact && p !== this.promisedOwner && !forced) return false;
    }
    if (this.log.snapshotIndex > m.commit) {
      // We compacted slots the candidate does not know are chosen: we cannot report them.
      this.nack(p, m.round, true);
      return true;
    }
    if (!same) {
      // Promising a new ballot ends whatever leadership we had or followed.
      if (this.role === 'leader' || this.role === 'candidate' || this.leader !== null) this.becomeFollower(null);
      this.setPromise(m.round, p);
      this.electionElapsed = 0;
    }
    this.msgs.push({
      type: T.Promise,
      from: this.id,
      to: p,
      round: m.round,
      commit: this.commit,
      entries: this.log.range(m.commit + 1, this.log.lastIndex),
    } satisfies PromiseMessage);
    return true;
  }

  private onPromise(m: PromiseMessage): boolean {
    if (this.role !== 'candidate' || m.round !== this.myRound || !this.promises) return false;
    if (this.promises.has(m.from)) return false; // a duplicate counts once
    this.promises.set(m.from, m);
    this.mergeReports(m.entries);
    this.sendPrepares();
    this.checkPhase1();
    return true;
  }

  private onNack(m: NackMessage): boolean {
    if ((this.role !== 'candidate' && this.role !== 'leader') || m.round !== this.myRound) return false;
    const wasLeader = this.role === 'leader';
    // A lagging refusal only matters to a candidate: the leader already has its quorum.
    const refused = (m.lagging && !wasLeader) || ballotGreater(m.promisedRound, m.promisedOwner, this.myRound, this.id);
    if (!refused) return false;
    // A refusal of our own ballot: the next campaign starts above the round it reports.
    this.seen(m.promisedRound);
    this.becomeFollower(null);
    if (wasLeader && m.promisedRound > this.myRound && m.promisedOwner === m.from) {
      // A lone candidate (promised to itself, e.g. back from a partition) refused our ballot.
      // Re-run phase 1 above its round at once: our followers still stick to us, so we win back
      // quickly instead of leaving the cluster leaderless for an election timeout.
      this.campaign(null);
    }
    return true;
  }

  // ================================================================ phase 2 (acceptor side)

  /** Adopts `from` as the leader of ballot (round, from); the caller checked `acceptable`. */
  private followLeader(round: number, from: NodeId): void {
    this.setPromise(round, from);
    if (this.role !== 'follower' && this.role !== 'learner') this.becomeFollower(from);
    else if (this.leader !== from) this.becomeFollower(from);
    this.electionElapsed = 0;
    this.leaderContactElapsed = 0;
    this.attempts = 0;
  }

  /**
   * Highest slot m such that every slot <= m holds a chosen value (<= commit) or the value
   * accepted under round `round` (whose owner is our promise's owner).
   */
  private followerMatch(round: number): number {
    if (this.matchRound !== round) {
      this.matchRound = round;
      this.acceptMatch = 0;
    }
    let m = Math.max(this.acceptMatch, this.commit, this.log.snapshotIndex);
    for (;;) {
      const e = this.log.get(m + 1);
      if (!e || e.term !== round) break;
      m++;
    }
    this.acceptMatch = m;
    return m;
  }

  private onAccept(m: AcceptMessage): boolean {
    if (!this.acceptable(m.round, m.from)) {
      this.nack(m.from, m.round);
      return true;
    }
    this.followLeader(m.round, m.from);
    const floor = Math.max(this.commit, this.log.snapshotIndex);
    for (const e of m.entries) {
      if (e.index <= floor) continue; // already chosen here
      const cur = this.log.get(e.index);
      if (cur && cur.term === m.round) continue; // one value per slot per ballot: a duplicate
      const ent: Entry = e.term === m.round ? e : { index: e.index, term: m.round, type: e.type, data: e.data };
      if (ent.type === EntryType.Config) this.log.set(ent, decodeConfigOrNull(ent.data)!);
      else this.log.set(ent);
      this.unstable.push(ent);
    }
    const match = this.followerMatch(m.round);
    this.setCommit(Math.min(m.commit, match));
    this.role = this.followerRole();
    const last = m.entries.length > 0 ? m.entries[m.entries.length - 1]!.index : 0;
    this.msgs.push({ type: T.Accepted, from: this.id, to: m.from, round: m.round, match, last, seq: m.seq } satisfies AcceptedMessage);
    return true;
  }

  private onSnapshot(m: SnapshotMessage): boolean {
    if (!this.acceptable(m.round, m.from)) {
      this.nack(m.from, m.round);
      return true;
    }
    this.followLeader(m.round, m.from);
    const meta = m.meta;
    const ack = (offset: number) =>
      this.msgs.push({
        type: T.SnapshotAck,
        from: this.id,
        to: m.from,
        round: m.round,
        index: meta.index,
        offset,
        match: this.followerMatch(m.round),
      } satisfies SnapshotAckMessage);
    if (meta.index <= this.commit) {
      this.snapRecv = null;
      ack(m.total);
      return true;
    }
    let r = this.snapRecv;
    if (m.offset === 0) {
      r = { meta, total: m.total, chunks: [], received: 0 };
      this.snapRecv = r;
    } else if (!r || r.meta.index !== meta.index || r.meta.term !== meta.term || r.total !== m.total || r.received !== m.offset) {
      ack(r && r.meta.index === meta.index && r.total === m.total ? r.received : 0);
      return true;
    }
    r.chunks.push(m.data);
    r.received += m.data.length;
    if (r.received < r.total) {
      ack(r.received);
      return true;
    }
    this.snapRecv = null;
    this.installSnapshot({ meta, data: concat(r.chunks, r.total) });
    ack(r.total);
    return true;
  }

  /** Installs a snapshot of chosen slots received from the leader (index above our commit). */
  private installSnapshot(snap: Snapshot): void {
    const { index, term, config } = snap.meta;
    this.log.compact(index, term, config);
    this.snapshot = snap;
    this.pendingSnapshot = snap;
    this.pendingCompactTo = Math.max(this.pendingCompactTo ?? 0, index);
    this.setCommit(index);
    this.role = this.followerRole();
  }

  private onTimeoutNow(m: TimeoutNowMessage): boolean {
    if (m.round !== this.promisedRound || m.from !== this.promisedOwner || this.role === 'leader') return false;
    if (!this.canCampaign()) return false;
    return this.campaign({ round: m.round, owner: m.from });
  }

  // ================================================================ leader

  private tickLeader(): void {
    this.heartbeatElapsed++;
    if (this.heartbeatElapsed >= this.o.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.heartbeatDue = true;
      for (const p of this.progress.values()) {
        if (p.state === 'probe') {
          // Retransmit from the first slot the peer lacks.
          p.probeSent = false;
          p.next = Math.min(p.next, p.match + 1);
        } else if (p.state === 'replicate' && p.match < p.next - 1 && this.ticks - p.lastMatchTick >= 2 * this.o.heartbeatTicks) {
          p.state = 'probe';
          p.probeSent = false;
          p.next = p.match + 1;
        }
      }
    }
    if (this.transferTo !== null) {
      this.transferElapsed++;
      if (this.transferElapsed >= this.o.electionTicks) {
        this.transferTo = null; // abort
      } else if (this.heartbeatDue) {
        // TimeoutNow may have been lost: repeat it with each heartbeat while the transfer lasts.
        this.timeoutNowSent = false;
        this.maybeSendTimeoutNow();
      }
    }
    this.checkQuorumElapsed++;
    if (this.o.checkQuorum && this.checkQuorumElapsed >= this.o.electionTicks) {
      this.checkQuorumElapsed = 0;
      const active = (v: NodeId) => v === this.id || this.ticks - (this.progress.get(v)?.lastAckTick ?? -Infinity) < this.o.electionTicks;
      if (!isQuorum(this.log.configAt(this.commit + 1), active, 'q2', this.o)) {
        this.becomeFollower(null);
      }
    }
  }

  /** Peers the leader replicates to: members of the chosen configuration and of any newer one. */
  private syncTargets(): void {
    if (!this.targetsDirty) return;
    this.targetsDirty = false;
    const want = new Set<NodeId>(allMembers(this.log.configAt(this.commit + 1)));
    for (const c of this.log.configsAbove(this.commit)) for (const v of allMembers(c.config)) want.add(v);
    want.delete(this.id);
    for (const v of [...this.progress.keys()]) if (!want.has(v)) this.progress.delete(v);
    for (const v of want) {
      if (this.progress.has(v)) continue;
      this.progress.set(v, {
        next: Math.min(this.log.lastIndex + 1, this.prepareCommit + 1),
        match: 0,
        state: 'probe',
        probeSent: false,
        lastAckTick: this.ticks,
        lastMatchTick: this.ticks,
        ackSeq: 0,
        commitSent: -1,
        snap: null,
      });
    }
  }

  /** Appends the pending membership change once every slot of the log is chosen (stop-sign after it). */
  private maybeAppendPendingConfig(): void {
    const next = this.pendingConfig;
    if (next === null || this.role !== 'leader' || this.commit < this.log.lastIndex) return;
    this.pendingConfig = null;
    this.appendOwn(EntryType.Config, encodeConfiguration(next), next);
    this.stopSign = this.log.lastIndex;
    this.targetsDirty = true;
  }

  private appendOwn(type: EntryType, data: Uint8Array, config?: Configuration): void {
    const e: Entry = { index: this.log.lastIndex + 1, term: this.myRound, type, data };
    this.log.set(e, config);
    this.unstable.push(e);
  }

  private leaderHasMessages(): boolean {
    if (this.heartbeatDue || this.targetsDirty) return true;
    const last = this.log.lastIndex;
    for (const p of this.progress.values()) {
      if (p.state === 'snapshot') {
        if (!p.snap || !p.snap.inflight) return true;
        continue;
      }
      if (p.next <= last && (p.state === 'replicate' || !p.probeSent)) return true;
      if (p.commitSent < this.commit) return true;
    }
    return false;
  }

  /** Builds this Ready's Accept batches, heartbeats and snapshot chunks. */
  private flushLeader(): void {
    this.syncTargets();
    const hb = this.heartbeatDue;
    if (hb) {
      this.hbSeq++;
      this.seqSentTick.set(this.hbSeq, this.ticks);
      this.heartbeatDue = false;
    }
    const last = this.log.lastIndex;
    for (const [peer, p] of this.progress) {
      if (p.state !== 'snapshot' && p.next <= this.log.snapshotIndex && this.snapshot) {
        p.state = 'snapshot';
        p.snap = { snapshot: this.snapshot, offset: 0, inflight: false, sentTick: this.ticks };
      }
      if (p.state === 'snapshot') {
        const s = p.snap!;
        if (!s.inflight || (hb && this.ticks - s.sentTick >= 2 * this.o.heartbeatTicks)) this.sendChunk(peer, p);
        if (hb) this.sendAccept(peer, p, EMPTY_ENTRIES);
        continue;
      }
      let sent = false;
      while (p.next <= last && (p.state === 'replicate' || !p.probeSent)) {
        const batch = this.batchFrom(p.next);
        if (batch.length === 0) {
          // A hole in our own log (never expected): wait for the next heartbeat's probe.
          p.state = 'probe';
          p.probeSent = true;
          break;
        }
        this.sendAccept(peer, p, batch);
        p.next = batch[batch.length - 1]!.index + 1;
        sent = true;
        if (p.state === 'probe') p.probeSent = true;
      }
      if (!sent && (hb || p.commitSent < this.commit)) this.sendAccept(peer, p, EMPTY_ENTRIES);
    }
    this.checkReads();
  }

  private batchFrom(from: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    const last = this.log.lastIndex;
    for (let s = from; s <= last && out.length < this.o.maxBatchEntries; s++) {
      const e = this.log.get(s);
      if (!e) break;
      if (out.length > 0 && bytes + e.data.length > this.o.maxBatchBytes) break;
      out.push(e);
      bytes += e.data.length;
    }
    return out;
  }

  private sendAccept(to: NodeId, p: Progress, entries: readonly Entry[]): void {
    p.commitSent = this.commit;
    this.msgs.push({ type: T.Accept, from: this.id, to, round: this.myRound, commit: this.commit, seq: this.hbSeq, entries } satisfies AcceptMessage);
  }

  private sendChunk(to: NodeId, p: Progress): void {
    const s = p.snap!;
    const data = s.snapshot.data;
    const end = Math.min(data.length, s.offset + this.o.snapshotChunkBytes);
    s.inflight = true;
    s.sentTick = this.ticks;
    this.msgs.push({
      type: T.Snapshot,
      from: this.id,
      to,
      round: this.myRound,
      meta: s.snapshot.meta,
      offset: s.offset,
      total: data.length,
      data: data.subarray(s.offset, end),
    } satisfies SnapshotMessage);
  }

  /** Advances the chosen watermark: slot s is chosen once a phase-2 quorum of its configuration holds it. */
  private maybeCommit(): void {
    if (this.role !== 'leader') return;
    let c = this.commit;
    const last = this.log.lastIndex;
    const matchOf = (v: NodeId) => (v === this.id ? this.persistedUpTo : (this.progress.get(v)?.match ?? 0));
    while (c < last) {
      const s = c + 1;
      const cfg = this.log.configAt(s);
      const regionEnd = Math.min(this.log.nextConfigSlot(s) ?? last, last);
      const v = quorumValue(cfg, matchOf, this.o);
      const nc = Math.min(v, regionEnd);
      if (nc <= c) break;
      c = nc;
      if (c < regionEnd) break;
    }
    if (c <= this.commit) return;
    const before = this.commit;
    this.setCommit(c);
    this.onLeaderCommit(before);
  }

  private onLeaderCommit(before: number): void {
    const cfgSlot = this.log.nextConfigSlot(before + 1);
    if (cfgSlot !== undefined && cfgSlot <= this.commit) this.targetsDirty = true;
    if (this.stopSign !== 0 && this.commit >= this.stopSign) {
      this.stopSign = 0;
      this.targetsDirty = true;
      if (!isVoter(this.log.configAt(this.commit + 1), this.id)) {
        // Removed by the configuration just chosen: tell everyone the watermark, then step down.
        for (const [peer, p] of this.progress) this.sendAccept(peer, p, EMPTY_ENTRIES);
        this.becomeFollower(null);
        return;
      }
      const held = this.deferred;
      this.deferred = [];
      for (const d of held) this.appendOwn(EntryType.Normal, d);
    }
    this.maybeAppendPendingConfig();
    if (this.readsAwaitingRecovery.length > 0 && this.commit >= this.recoveryEnd) {
      const rs = this.readsAwaitingRecovery;
      this.readsAwaitingRecovery = [];
      for (const r of rs) this.queueRead(r);
    }
    this.maybeSendTimeoutNow();
  }

  private onAccepted(m: AcceptedMessage): boolean {
    if (this.role !== 'leader' || m.round !== this.myRound) return false;
    const p = this.progress.get(m.from);
    if (!p) return false;
    p.lastAckTick = this.ticks;
    if (m.seq > p.ackSeq) p.ackSeq = m.seq;
    if (m.match > p.match) {
      p.match = m.match;
      p.lastMatchTick = this.ticks;
    }
    if (p.state === 'snapshot') {
      if (p.snap && p.match >= p.snap.snapshot.meta.index) this.leaveSnapshotState(p);
    } else {
      if (m.last > m.match) {
        // The peer lacks a slot at or below `last`: resend from its first gap.
        if (p.state === 'replicate' || p.probeSent) {
          p.state = 'probe';
          p.probeSent = false;
          p.next = Math.min(p.next, p.match + 1);
        }
      } else if (p.match >= p.next - 1) {
        p.state = 'replicate';
        p.probeSent = false;
      }
      if (p.next <= p.match) p.next = p.match + 1;
    }
    this.maybeCommit();
    this.updateLease();
    this.checkReads();
    this.maybeSendTimeoutNow();
    return true;
  }

  private leaveSnapshotState(p: Progress): void {
    p.state = 'probe';
    p.probeSent = false;
    p.snap = null;
    p.next = p.match + 1;
  }

  private onSnapshotAck(m: SnapshotAckMessage): boolean {
    if (this.role !== 'leader' || m.round !== this.myRound) return false;
    const p = this.progress.get(m.from);
    if (!p) return false;
    p.lastAckTick = this.ticks;
    if (m.match > p.match) {
      p.match = m.match;
      p.lastMatchTick = this.ticks;
    }
    const s = p.snap;
    if (p.state !== 'snapshot' || !s) {
      this.maybeCommit();
      return true;
    }
    if (p.match >= s.snapshot.meta.index) {
      this.leaveSnapshotState(p);
    } else if (m.index === s.snapshot.meta.index) {
      s.offset = Math.min(m.offset, s.snapshot.data.length);
      s.inflight = false;
    }
    this.maybeCommit();
    return true;
  }

  private maybeSendTimeoutNow(): void {
    const to = this.transferTo;
    if (to === null || this.role !== 'leader' || this.timeoutNowSent) return;
    const p = this.progress.get(to);
    if (!p || p.match < this.log.lastIndex) return;
    this.timeoutNowSent = true;
    this.msgs.push({ type: T.TimeoutNow, from: this.id, to, round: this.myRound } satisfies TimeoutNowMessage);
  }

  private onForward(m: ForwardMessage): boolean {
    if (this.role !== 'leader') return false;
    for (const c of m.commands) {
      try {
        this.propose(c);
      } catch {
        // Refused (transfer, full log): the origin's request times out; nothing was appended.
      }
    }
    return true;
  }

  // ================================================================ reads and lease

  /** Lease reads: leader, recovered, not transferring, and a phase-2 quorum acked recently enough. */
  private leaseValid(): boolean {
    return (
      this.role === 'leader' && !this.leaseDisabled && this.transferTo === null && this.commit >= this.recoveryEnd &&
      this.ticks < this.leaseUntil
    );
  }

  /** Highest heartbeat round echoed by a phase-2 quorum of the chosen configuration. */
  private quorumSeq(): number {
    return quorumValue(this.log.configAt(this.commit + 1), (v) => (v === this.id ? this.hbSeq : (this.progress.get(v)?.ackSeq ?? 0)), this.o);
  }

  private updateLease(): void {
    const q = this.quorumSeq();
    const sent = this.seqSentTick.get(q);
    if (sent !== undefined && sent + this.o.leaseTicks > this.leaseUntil) this.leaseUntil = sent + this.o.leaseTicks;
    for (const k of this.seqSentTick.keys()) if (k < q) this.seqSentTick.delete(k);
  }

  private queueRead(r: PendingRead): void {
    if (this.commit < this.recoveryEnd) {
      this.readsAwaitingRecovery.push(r);
      return;
    }
    r.index = this.commit;
    r.seq = this.hbSeq + 1;
    this.heartbeatDue = true;
    this.pendingReads.push(r);
  }

  private checkReads(): void {
    if (this.pendingReads.length === 0) return;
    const q = this.quorumSeq();
    const still: PendingRead[] = [];
    for (const r of this.pendingReads) {
      if (r.seq > q) {
        still.push(r);
        continue;
      }
      if (r.from === null) this.readStates.push({ id: r.id, index: r.index });
      else this.msgs.push({ type: T.ReadIndexResponse, from: this.id, to: r.from, ctx: r.id, ok: true, index: r.index } satisfies ReadIndexResponseMessage);
    }
    this.pendingReads = still;
  }

  private refuseRead(r: PendingRead, hint: NodeId | null): void {
    if (r.from === null) this.readStates.push({ id: r.id, error: new NotLeaderError(hint) });
    else this.msgs.push({ type: T.ReadIndexResponse, from: this.id, to: r.from, ctx: r.id, ok: false, index: 0 } satisfies ReadIndexResponseMessage);
  }

  private onReadIndex(m: ReadIndexMessage): boolean {
    const r: PendingRead = { id: m.ctx, from: m.from, index: 0, seq: 0 };
    if (this.role !== 'leader') {
      this.refuseRead(r, this.leader);
      return true;
    }
    this.queueRead(r);
    return true;
  }

  private onReadIndexResponse(m: ReadIndexResponseMessage): boolean {
    if (!this.remoteReads.delete(m.ctx)) return false;
    if (m.ok) this.readStates.push({ id: m.ctx, index: m.index });
    else this.readStates.push({ id: m.ctx, error: new NotLeaderError(this.leader === m.from ? null : this.leader) });
    return true;
  }
}

function sortedAddresses(a: Readonly<Record<NodeId, string>>): Record<NodeId, string> {
  const out: Record<NodeId, string> = {};
  for (const k of Object.keys(a).sort()) out[k] = a[k]!;
  return out;
}

/** The configuration after `change` (addLearner demotes a voter; addVoter promotes a learner). */
function applyChange(cur: Configuration, change: MembershipChange): Configuration {
  const id = change.id;
  let voters = cur.voters.filter((v) => v !== id);
  let learners = cur.learners.filter((v) => v !== id);
  const addresses: Record<NodeId, string> = { ...(cur.addresses ?? {}) };
  switch (change.type) {
    case 'addVoter':
      voters = [...voters, id];
      if (change.address !== undefined) addresses[id] = change.address;
      break;
    case 'addLearner':
      learners = [...learners, id];
      if (change.address !== undefined) addresses[id] = change.address;
      break;
    case 'remove':
      delete addresses[id];
      break;
    default:
      throw new InvalidArgumentError(`unknown membership change ${String((change as { type?: unknown }).type)}`);
  }
  // Keep the original order of members that stay, so unchanged configurations compare equal.
  const order = (ids: NodeId[], before: readonly NodeId[]) => [...before.filter((v) => ids.includes(v)), ...ids.filter((v) => !before.includes(v))];
  const out: { -readonly [K in keyof Configuration]: Configuration[K] } = {
    voters: order(voters, cur.voters),
    learners: order(learners, cur.learners),
  };
  if (Object.keys(addresses).length > 0) out.addresses = sortedAddresses(addresses);
  return out;
}

function sameMembers(a: Configuration, b: Configuration): boolean {
  const eq = (x: readonly NodeId[], y: readonly NodeId[]) => x.length === y.length && x.every((v) => y.includes(v));
  if (!eq(a.voters, b.voters) || !eq(a.learners, b.learners)) return false;
  const aa = a.addresses ?? {};
  const ba = b.addresses ?? {};
  const ka = Object.keys(aa);
  return ka.length === Object.keys(ba).length && ka.every((k) => aa[k] === ba[k]);
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]!.length === total) return chunks[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
