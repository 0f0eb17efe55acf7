/**
 * `ReplicatedLog`: the one loop that drives any {@link ConsensusCore}. It ticks the core on an
 * injected {@link Scheduler}, moves messages between core and {@link Transport}, persists each
 * `Ready` with one {@link Storage.persist} call (natural group commit), applies committed
 * entries to the {@link StateMachine}, resolves `propose()` promises with the state machine's
 * results, serves reads at the requested consistency, keeps client sessions for exactly-once
 * commands (Raft thesis §6.3), and takes snapshots at a threshold. It never branches on the
 * protocol.
 */
import { BinaryReader, BinaryWriter } from './binary.js';
import { allMembers, decodeConfiguration, type MembershipChange, isJoint, isValidNodeId } from './config.js';
import type { ConsensusCore, ConsensusProtocol, CoreStatus, Message, Ready, ReadState } from './core.js';
import { type CommandHeader, CommandKind, encodeCommandWith, encodeOrigin, parseCommandHeader } from './envelope.js';
import {
  CommandTooLargeError,
  InvalidArgumentError,
  InvalidConfigurationError,
  SessionExpiredError,
  StaleSequenceError,
  StateMachineError,
  StoppedError,
  StorageError,
  SynodError,
  TimeoutError,
  UnsupportedError,
} from './errors.js';
import { createRandom } from './random.js';
import { realScheduler, type Scheduler, type TimerHandle } from './scheduler.js';
import type { StateMachine } from './state-machine.js';
import type { Storage } from './storage.js';
import type { Transport } from './transport.js';
import type { Configuration, Entry, HardState, NodeId, PersistBatch, PersistedState, Snapshot } from './types.js';
import { web } from './web.js';
import { EntryType } from './types.js';

/**
 * Read consistency (Raft thesis §6.4):
 * - `linearizable`: ReadIndex; reflects every write acknowledged before the read began.
 * - `lease`: the leader answers from its lease without a round trip; linearizable only if
 *   clock drift stays within the bound the core documents.
 * - `stale`: this replica's applied state; any node, no quorum, monotonic per replica.
 */
export type ReadConsistency = 'linearizable' | 'lease' | 'stale';

/** Options of {@link ReplicatedLog}. */
export interface ReplicatedLogOptions<Result = unknown, Query = unknown, QueryResult = unknown> {
  /** This replica's id. */
  readonly id: NodeId;
  /** The protocol: `raft(options)` or `paxos(options)`. */
  readonly protocol: ConsensusProtocol<any>;
  /** Stable storage (e.g. `MemoryStorage`, `SqliteStorage`). */
  readonly storage: Storage;
  /** Network endpoint (in-memory or WebSocket). */
  readonly transport: Transport<any>;
  /** The application. */
  readonly stateMachine: StateMachine<Result, Query, QueryResult>;
  /**
   * Initial membership for a brand-new cluster (voter ids, or a full configuration). Ignored
   * when storage already holds a configuration. Omit on a node that will be added later.
   */
  readonly bootstrap?: readonly NodeId[] | Configuration;
  /** Clock and timers. Default: real time. */
  readonly scheduler?: Scheduler;
  /** Milliseconds per core tick. Default 100 (etcd's usual heartbeat interval). */
  readonly tickMs?: number;
  /** Default timeout of `propose`, `read` and membership calls, in ms. Default 5000. */
  readonly requestTimeoutMs?: number;
  /**
   * Take a snapshot and compact the log once this many entries were applied since the last
   * snapshot (default 10_000), or this many payload bytes (default 64 MiB), whichever first.
   * `entries: 0` disables snapshots.
   */
  readonly snapshotThreshold?: { readonly entries?: number; readonly bytes?: number };
  /**
   * Sessions idle for longer than this (in ms of the log's own time, from proposers' clocks)
   * expire, on every replica at the same log position. Must be equal on all replicas.
   * Default 1 hour.
   */
  readonly sessionTimeoutMs?: number;
  /**
   * Largest command `propose` accepts, in bytes (default 8 MiB). A bigger command is refused
   * with CommandTooLargeError before it enters the log: a transport could never carry it (the
   * WebSocket transport's default frame limit is 16 MiB), so it would stall replication.
   */
  readonly maxCommandBytes?: number;
  /** Seed of the core's PRNG. Default: random. Set it to replay a run. */
  readonly seed?: number;
  /** Called once if the replica stops on a fatal error: `StorageError` or `StateMachineError` (fail-stop). */
  readonly onFatal?: (err: SynodError) => void;
}

/** Options of one proposal. */
export interface ProposeOptions {
  /** Timeout in ms (default `requestTimeoutMs`). On timeout the outcome is unknown. */
  readonly timeoutMs?: number;
  /**
   * Run the command in a client session for exactly-once semantics (Raft thesis §6.3): a
   * retry with the same `id` and `seq` (even on another replica, after a failover) is applied
   * at most once and returns the cached result. `id` comes from {@link ReplicatedLog.openSession}.
   */
  readonly session?: { readonly id: number; readonly seq: number };
}

/** Options of one read. */
export interface ReadOptions {
  /** Default `linearizable`. */
  readonly consistency?: ReadConsistency;
  /** Timeout in ms (default `requestTimeoutMs`). */
  readonly timeoutMs?: number;
}

/** A replica's status: the core's summary plus runtime facts. */
export interface ReplicatedLogStatus extends CoreStatus {
  /** Protocol name (`raft`, `paxos`). */
  readonly protocol: string;
  /** Whether the replica stopped (by `stop()` or a fatal error). */
  readonly stopped: boolean;
  /** Proposals awaiting their result. */
  readonly pendingProposals: number;
  /** Reads awaiting their index or apply. */
  readonly pendingReads: number;
  /** Open client sessions known to the state machine side. */
  readonly sessions: number;
  /**
   * Committed commands skipped because the same request was already applied (network
   * duplicates), or because it came more than 4096 requests of its proposer late (never applied
   * twice; its proposer times out).
   */
  readonly duplicateCommands: number;
}

interface PendingProposal {
  resolve(v: unknown): void;
  reject(e: unknown): void;
  deadline: number;
  timer: TimerHandle | null;
}

interface PendingRead {
  query: unknown;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  timer: TimerHandle;
  index: number;
}

interface SessionRecord {
  lastSeq: number;
  lastActive: number;
  /** Encoded result of `lastSeq`, or undefined if it ended in an error. */
  result: Uint8Array | null;
  /** Raw (decoded) result while it is still in memory. */
  raw: unknown;
}

interface Waiter {
  check(): boolean;
}

/** Snapshot format without (SYN1) and with (SYN2) the duplicate-request table. */
const SNAPSHOT_MAGIC_V1 = 0x53594e31; // "SYN1"
const SNAPSHOT_MAGIC = 0x53594e32; // "SYN2"

/**
 * Requests remembered per proposer incarnation to drop a command that appears twice in the
 * log (a forwarded proposal duplicated by the network is appended twice by the leader).
 */
const DEDUPE_WINDOW = 4096;

/**
 * Which of the last {@link DEDUPE_WINDOW} request numbers of one proposer incarnation (its
 * origin tag) were applied: a sliding bitset over [base, base + window), O(1) per entry and
 * allocation-free. A request below the window is too old to judge and is skipped like a
 * duplicate: applying a command twice breaks linearizability, not applying it only times out
 * its proposer (an unknown outcome, which a `TimeoutError` already means). It takes more than
 * the window of later requests of the same proposer applied before it to get there.
 */
interface OriginRecord {
  base: number;
  readonly bits: Uint8Array;
  lastActive: number;
}

function newOrigin(lastActive: number): OriginRecord {
  return { base: 0, bits: new Uint8Array(DEDUPE_WINDOW >> 3), lastActive };
}

/** Marks `request` applied; returns true if it already was (a duplicate). */
function seenBefore(o: OriginRecord, request: number): boolean {
  if (request < o.base) return true; // too old to judge: never risk a second apply
  if (request >= o.base + DEDUPE_WINDOW) {
    const newBase = request - DEDUPE_WINDOW + 1;
    const evict = Math.min(newBase - o.base, DEDUPE_WINDOW);
    for (let i = 0; i < evict; i++) {
      const slot = (o.base + i) % DEDUPE_WINDOW;
      o.bits[slot >> 3]! &= ~(1 << (slot & 7));
    }
    o.base = newBase;
  }
  const slot = request % DEDUPE_WINDOW;
  const mask = 1 << (slot & 7);
  const byte = o.bits[slot >> 3]!;
  if (byte & mask) return true;
  o.bits[slot >> 3] = byte | mask;
  return false;
}

/**
 * A replicated state machine replica: drive it with a protocol, a storage, a transport and a
 * state machine, then `propose` commands and `read` queries.
 *
 * @example
 * ```ts
 * const log = new ReplicatedLog({ id: 'n1', protocol: raft(), storage, transport, stateMachine, bootstrap: ['n1','n2','n3'] });
 * await log.start();
 * const result = await log.propose(command);
 * ```
 */
export class ReplicatedLog<Result = unknown, Query = unknown, QueryResult = unknown> {
  /** This replica's id. */
  readonly id: NodeId;
  private readonly opts: ReplicatedLogOptions<Result, Query, QueryResult>;
  private readonly scheduler: Scheduler;
  private readonly sm: StateMachine<Result, Query, QueryResult>;
  private core: ConsensusCore<Message> | null = null;
  private started = false;
  /** Whether stop() released the transport and storage. */
  private closed = false;
  private stopped = false;
  private fatal: SynodError | null = null;
  private tickTimer: TimerHandle | null = null;
  private drainScheduled = false;
  private draining = false;
  private applied = 0;
  /**
   * 48 bits naming this incarnation in command headers and in every replica's duplicate table:
   * random, or (with `seed`) derived from the seed, the start time and the persisted state, so
   * a replayed run gets the same tags and a restarted replica a new one.
   */
  private originTag = 0;
  /** Our id as it appears in command headers, for allocation-free origin checks. */
  private readonly originBytes: Uint8Array;
  /** Scratch header reused for every applied entry. */
  private readonly header: CommandHeader = { kind: 0, mine: false, originTag: 0, request: 0, time: 0, session: 0, seq: 0, payloadOffset: 0 };
  private nextRequest = 1;
  private readonly proposals = new Map<number, PendingProposal>();
  private nextReadId = 1;
  private readonly reads = new Map<number, PendingRead>();
  /** Reads that have their index and wait for apply, in arrival order. */
  private readsAwaitingApply: PendingRead[] = [];
  private readonly sessions = new Map<number, SessionRecord>();
  /** Duplicate detection per proposer incarnation (origin tag), part of the snapshot. */
  private readonly origins = new Map<number, OriginRecord>();
  /** Commands skipped because the same request was already applied. */
  private duplicateCommands = 0;
  private logTime = 0;
  private nextSessionSweep = 0;
  private entriesSinceSnapshot = 0;
  private bytesSinceSnapshot = 0;
  private waiters = new Set<Waiter>();
  private readonly tickMs: number;
  private readonly timeoutMs: number;
  private readonly snapshotEntries: number;
  private readonly snapshotBytes: number;
  private readonly sessionTimeoutMs: number;
  private readonly maxCommandBytes: number;
  /** Scheduler time up to which ticks have been delivered to the core. */
  private tickedUntil = 0;
  private knownAddresses = new Map<NodeId, string>();
  /** The hard state last made durable (term and vote decide whether a new one must sync). */
  private durableHard: HardState | null = null;
  /** A commit-only hard state not yet persisted (see toBatch). */
  private deferredHard: HardState | null = null;
  /** The asynchronous persist in progress, if any (stop() waits for it before closing). */
  private persisting: Promise<void> | null = null;
  private readonly drainFn = () => {
    this.drainScheduled = false;
    void this.drain();
  };

  /** Validates options; throws InvalidConfigurationError. Call {@link start} to run. */
  constructor(options: ReplicatedLogOptions<Result, Query, QueryResult>) {
    if (options === null || typeof options !== 'object') throw new InvalidConfigurationError('options must be an object');
    if (!isValidNodeId(options.id)) throw new InvalidConfigurationError(`invalid node id ${JSON.stringify(options.id)}`);
    validateComponents(options);
    const pos = (v: number | undefined, name: string, dflt: number, allowZero = false, min = 0, max = Number.MAX_SAFE_INTEGER) => {
      const x: unknown = v ?? dflt;
      if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || (!allowZero && x === 0) || (x !== 0 && x < min) || x > max) {
        const range = min > 0 ? `in [${min}, ${max}]` : allowZero ? `non-negative, at most ${max}` : `positive, at most ${max}`;
        throw new InvalidConfigurationError(`${name} must be a number ${range}, got ${typeof x === 'string' ? JSON.stringify(x) : String(x)}`);
      }
      return x;
    };
    this.opts = options;
    this.id = options.id;
    this.scheduler = options.scheduler ?? realScheduler;
    this.sm = options.stateMachine;
    // Timers longer than 2^31-1 ms fire at once in Node and browsers: refuse them.
    this.tickMs = pos(options.tickMs, 'tickMs', 100, false, 1, MAX_TIMEOUT_MS);
    this.timeoutMs = pos(options.requestTimeoutMs, 'requestTimeoutMs', 5000, false, 0, MAX_TIMEOUT_MS);
    const st: unknown = options.snapshotThreshold;
    if (st !== undefined && (st === null || typeof st !== 'object')) throw new InvalidConfigurationError('snapshotThreshold must be an object { entries?, bytes? }');
    const int = (x: number, name: string) => {
      if (!Number.isInteger(x)) throw new InvalidConfigurationError(`${name} must be a whole number, got ${x}`);
      return x;
    };
    this.snapshotEntries = int(pos(options.snapshotThreshold?.entries, 'snapshotThreshold.entries', 10_000, true), 'snapshotThreshold.entries');
    this.snapshotBytes = int(pos(options.snapshotThreshold?.bytes, 'snapshotThreshold.bytes', 64 * 1024 * 1024), 'snapshotThreshold.bytes');
    this.sessionTimeoutMs = pos(options.sessionTimeoutMs, 'sessionTimeoutMs', 3_600_000);
    this.maxCommandBytes = int(pos(options.maxCommandBytes, 'maxCommandBytes', 8 * 1024 * 1024), 'maxCommandBytes');
    this.originBytes = encodeOrigin(this.id);
  }

  /**
   * Loads storage, builds the core, restores the state machine from the latest snapshot, starts
   * the transport and the tick timer. Rejects with the storage's or transport's error.
   */
  async start(): Promise<void> {
    if (this.started) throw new InvalidArgumentError('ReplicatedLog already started');
    this.started = true;
    let state: PersistedState;
    try {
      state = await this.opts.storage.load();
    } catch (err) {
      throw asStorageError('loading the stored state failed', err);
    }
    checkLoadedState(state);
    this.durableHard = state.hardState;
    this.originTag = this.opts.seed === undefined ? randomTag() : seededTag(this.opts.seed, this.id, this.scheduler.now(), state);
    if (state.snapshot) {
      try {
        this.restoreSnapshot(state.snapshot);
      } catch (err) {
        throw asStateMachineError('restoring the stored snapshot failed', err);
      }
    }
    const bootstrap = this.opts.bootstrap;
    const config: Configuration | undefined =
      bootstrap === undefined
        ? undefined
        : Array.isArray(bootstrap)
          ? { voters: [...(bootstrap as NodeId[])], learners: [] }
          : { ...(bootstrap as Configuration), learners: (bootstrap as Configuration).learners ?? [] };
    const seed = this.opts.seed ?? randomUint32();
    this.core = this.opts.protocol.create({
      id: this.id,
      state,
      ...(config ? { bootstrap: config } : {}),
      random: createRandom(seed),
    });
    this.syncAddresses();
    await this.opts.transport.start({
      codec: this.opts.protocol.codec,
      onMessage: (msg: Message) => this.onMessage(msg),
    });
    if (this.stopped) return;
    this.tickedUntil = this.scheduler.now();
    this.scheduleTick();
    this.scheduleDrain();
  }

  /** Whether `start()` completed and `stop()` was not called. */
  get running(): boolean {
    return this.started && this.core !== null && !this.stopped;
  }

  /**
   * Proposes a command and resolves with the state machine's result once it is committed and
   * applied on this replica.
   *
   * Rejects with NotLeaderError (with the leader hint) when this replica can neither lead nor
   * forward, TransferInProgressError, UncommittedLogFullError, TimeoutError (outcome unknown),
   * SessionExpiredError / StaleSequenceError (sessions), or StoppedError.
   */
  propose(command: Uint8Array, options?: ProposeOptions): Promise<Result> {
    return guard(() => {
      const core = this.requireCore();
      if (!(command instanceof Uint8Array)) throw new InvalidArgumentError('command must be a Uint8Array');
      if (command.length > this.maxCommandBytes) {
        throw new CommandTooLargeError(`command is ${command.length} bytes; the limit (maxCommandBytes) is ${this.maxCommandBytes}`);
      }
      const o = options ?? {};
      const session = o.session;
      if (session) {
        if (!Number.isSafeInteger(session.id) || session.id < 1) throw new InvalidArgumentError('session.id must be a positive integer');
        if (!Number.isSafeInteger(session.seq) || session.seq < 1) throw new InvalidArgumentError('session.seq must be a positive integer');
      }
      const kind = session ? CommandKind.Session : CommandKind.Plain;
      return this.submit(core, kind, command, session?.id ?? 0, session?.seq ?? 0, checkTimeout(o.timeoutMs)) as Promise<Result>;
    });
  }

  /**
   * Opens a client session through the log (Raft thesis §6.3) and resolves with its id. Use the
   * id with increasing `seq` numbers in {@link propose}; only the latest result per session is
   * cached, so keep one command in flight per session.
   */
  openSession(options?: { timeoutMs?: number }): Promise<number> {
    return guard(() => {
      const core = this.requireCore();
      if (typeof this.sm.encodeResult !== 'function' || typeof this.sm.decodeResult !== 'function') {
        throw new UnsupportedError('sessions need stateMachine.encodeResult and decodeResult (cached results travel in snapshots)');
      }
      return this.submit(core, CommandKind.OpenSession, new Uint8Array(0), 0, 0, checkTimeout(options?.timeoutMs)) as Promise<number>;
    });
  }

  /**
   * Closes a session through the log; later commands in it fail with SessionExpiredError.
   * Rejects with InvalidArgumentError for an id that is not a positive integer, and with
   * SessionExpiredError if the session is unknown or already expired.
   */
  closeSession(id: number, options?: { timeoutMs?: number }): Promise<void> {
    return guard(() => {
      const core = this.requireCore();
      if (!Number.isSafeInteger(id) || id < 1) throw new InvalidArgumentError('session id must be a positive integer');
      return this.submit(core, CommandKind.CloseSession, new Uint8Array(0), id, 0, checkTimeout(options?.timeoutMs)) as Promise<void>;
    });
  }

  private submit(core: ConsensusCore<Message>, kind: CommandKind, payload: Uint8Array, session: number, seq: number, timeoutMs?: number): Promise<unknown> {
    const request = this.nextRequest++;
    const now = this.scheduler.now();
    const data = encodeCommandWith(kind, this.originBytes, this.originTag, request, now, session, seq, payload);
    core.propose(data);
    return new Promise((resolve, reject) => {
      const ms = timeoutMs ?? this.timeoutMs;
      const p: PendingProposal = { resolve, reject, deadline: now + ms, timer: null };
      if (timeoutMs !== undefined) {
        p.timer = this.scheduler.setTimer(ms, () => {
          if (this.proposals.delete(request)) reject(new TimeoutError());
        });
      }
      this.proposals.set(request, p);
      this.scheduleDrain();
    });
  }

  /**
   * Answers `query` against the state machine at the requested consistency. Rejects with
   * NotLeaderError, LeaseExpiredError, TimeoutError or StoppedError.
   */
  read(query: Query, options?: ReadOptions): Promise<QueryResult> {
    return guard(() => {
      const core = this.requireCore();
      const consistency = options?.consistency ?? 'linearizable';
      const timeoutMs = checkTimeout(options?.timeoutMs) ?? this.timeoutMs;
      if (consistency === 'stale') return Promise.resolve(this.sm.query(query));
      if (consistency !== 'linearizable' && consistency !== 'lease') {
        throw new InvalidArgumentError(`unknown consistency ${String(consistency)}`);
      }
      // A lease is counted in ticks: account for ticks a stalled event loop (GC, SIGSTOP, a
      // blocked fsync) missed before the core judges the lease (Raft thesis §6.4.1).
      if (consistency === 'lease') this.catchUpTicks();
      const id = this.nextReadId++;
      core.read(id, consistency);
      return this.awaitRead(id, query, timeoutMs);
    });
  }

  private awaitRead(id: number, query: Query, timeoutMs: number): Promise<QueryResult> {
    return new Promise<QueryResult>((resolve, reject) => {
      const timer = this.scheduler.setTimer(timeoutMs, () => {
        const r = this.reads.get(id);
        if (!r) return;
        this.reads.delete(id);
        const i = this.readsAwaitingApply.indexOf(r);
        if (i >= 0) this.readsAwaitingApply.splice(i, 1);
        reject(new TimeoutError('read timed out'));
      });
      this.reads.set(id, { query, resolve: resolve as (v: unknown) => void, reject, timer, index: -1 });
      this.scheduleDrain();
    });
  }

  /**
   * Changes membership (Raft thesis §4.3 joint consensus, §4.2.1 learners) and resolves with the
   * resulting configuration once it is committed and applied here. Rejects with NotLeaderError,
   * ConfigChangeInProgressError, InvalidConfigurationError, TimeoutError or StoppedError.
   */
  changeMembership(change: MembershipChange, options?: { timeoutMs?: number }): Promise<Configuration> {
    return guard(() => this.changeMembershipNow(change, checkTimeout(options?.timeoutMs)));
  }

  private changeMembershipNow(change: MembershipChange, timeoutMs: number | undefined): Promise<Configuration> {
    const core = this.requireCore();
    if (!change || typeof change !== 'object' || !isValidNodeId((change as { id?: unknown }).id)) {
      throw new InvalidArgumentError('membership change needs a valid id');
    }
    if (change.type !== 'addLearner' && change.type !== 'addVoter' && change.type !== 'remove') {
      throw new InvalidArgumentError(`unknown membership change ${String((change as { type?: unknown }).type)}`);
    }
    if (change.type !== 'remove' && change.address !== undefined && (typeof change.address !== 'string' || change.address.length === 0)) {
      throw new InvalidArgumentError('address must be a non-empty string');
    }
    core.proposeMembershipChange(change);
    this.scheduleDrain();
    let lastApplied: Configuration | null = null;
    const done = (c: Configuration): boolean => {
      if (isJoint(c)) return false;
      switch (change.type) {
        case 'addLearner':
          return c.learners.includes(change.id);
        case 'addVoter':
          return c.voters.includes(change.id);
        case 'remove':
          return !allMembers(c).includes(change.id);
      }
    };
    return this.waitFor(
      () => {
        lastApplied = this.appliedConfig;
        return lastApplied !== null && done(lastApplied);
      },
      timeoutMs ?? this.timeoutMs * 2,
      'membership change not committed in time',
    ).then(() => lastApplied!);
  }

  /**
   * Transfers leadership to `to` (Raft thesis §3.10) and resolves once this replica sees `to`
   * as leader. Rejects with NotLeaderError, InvalidArgumentError, UnsupportedError,
   * TimeoutError or StoppedError.
   */
  transferLeadership(to: NodeId, options?: { timeoutMs?: number }): Promise<void> {
    return guard(() => {
      const core = this.requireCore();
      if (!isValidNodeId(to)) throw new InvalidArgumentError(`invalid node id ${JSON.stringify(to)}`);
      const timeoutMs = checkTimeout(options?.timeoutMs) ?? this.timeoutMs;
      core.transferLeadership(to);
      this.scheduleDrain();
      return this.waitFor(() => this.core?.status().leader === to, timeoutMs, 'leadership transfer did not complete in time');
    });
  }

  /** A summary of this replica. Throws StoppedError before `start()`. */
  status(): ReplicatedLogStatus {
    const core = this.core;
    if (!core) throw new StoppedError('ReplicatedLog not started');
    return {
      ...core.status(),
      appliedIndex: this.applied,
      protocol: this.opts.protocol.name,
      stopped: this.stopped,
      pendingProposals: this.proposals.size,
      pendingReads: this.reads.size,
      sessions: this.sessions.size,
      duplicateCommands: this.duplicateCommands,
    };
  }

  /** The fatal error that stopped this replica, if any. */
  get error(): SynodError | null {
    return this.fatal;
  }

  /**
   * Stops the replica: cancels timers, rejects pending requests with StoppedError, closes the
   * transport and the storage. Idempotent.
   */
  async stop(): Promise<void> {
    if (!this.stopped && this.deferredHard && !this.draining) {
      const hardState = this.deferredHard;
      this.deferredHard = null;
      await this.persist({ hardState });
    }
    if (!this.stopped) this.halt(new StoppedError());
    // Also after a fatal error or crash(): release what is still open (e.g. a file lock).
    if (this.closed) return;
    this.closed = true;
    try {
      await this.opts.transport.close();
    } finally {
      // An asynchronous persist still running must finish before the storage closes.
      while (this.persisting) await this.persisting.catch(() => {});
      await this.opts.storage.close();
    }
  }

  /**
   * Stops without closing storage or transport cleanly, as a crash would: pending requests are
   * rejected, nothing more is persisted or sent. For tests and simulations.
   */
  crash(): void {
    if (this.stopped) return;
    this.halt(new StoppedError('replica crashed'));
    void this.opts.transport.close();
  }

  // ---------------------------------------------------------------- internals

  private halt(err: SynodError): void {
    this.stopped = true;
    this.tickTimer?.cancel();
    this.tickTimer = null;
    for (const p of this.proposals.values()) {
      p.timer?.cancel();
      p.reject(err);
    }
    this.proposals.clear();
    for (const r of this.reads.values()) {
      r.timer.cancel();
      r.reject(err);
    }
    this.reads.clear();
    this.readsAwaitingApply = [];
    for (const w of this.waiters) w.check();
    this.waiters.clear();
  }

  private failFatal(err: SynodError): void {
    if (this.stopped) return;
    this.fatal = err;
    this.halt(err);
    void this.opts.transport.close();
    this.opts.onFatal?.(err);
  }

  private requireCore(): ConsensusCore<Message> {
    if (this.stopped) throw this.fatal ?? new StoppedError();
    if (!this.core) throw new StoppedError('ReplicatedLog not started; call start() first');
    return this.core;
  }

  private onMessage(msg: Message): void {
    const core = this.core;
    if (!core || this.stopped) return;
    try {
      core.step(msg);
    } catch {
      // A core must not throw on input; if one does, the message is dropped (never a crash).
    }
    this.scheduleDrain();
  }

  private scheduleTick(): void {
    this.tickTimer = this.scheduler.setTimer(this.tickMs, () => {
      if (this.stopped || !this.core) return;
      // One tick per period that actually elapsed: a timer that fires late (a stalled event
      // loop) delivers the missed ticks, so timeouts and leases count real time.
      if (this.catchUpTicks() === 0) {
        this.core.tick();
        this.tickedUntil += this.tickMs;
      }
      this.expireProposals();
      this.flushDeferredHard();
      this.scheduleTick();
      this.scheduleDrain();
    });
  }

  /**
   * Delivers the ticks of every whole tick period elapsed since the last one (at most one
   * election's worth is needed to expire any lease or timeout; the rest are skipped). Returns
   * how many ticks it delivered.
   */
  private catchUpTicks(): number {
    const core = this.core;
    if (!core || this.stopped) return 0;
    const now = this.scheduler.now();
    const due = Math.floor((now - this.tickedUntil) / this.tickMs);
    if (due <= 0) return 0;
    const n = Math.min(due, MAX_CATCH_UP_TICKS);
    for (let i = 0; i < n; i++) core.tick();
    this.tickedUntil = due > n ? now : this.tickedUntil + n * this.tickMs;
    this.scheduleDrain();
    return n;
  }

  private expireProposals(): void {
    const now = this.scheduler.now();
    for (const [req, p] of this.proposals) {
      if (p.timer) continue;
      if (p.deadline > now) break; // default-timeout proposals are in deadline order
      this.proposals.delete(req);
      p.reject(new TimeoutError());
    }
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || this.stopped) return;
    this.drainScheduled = true;
    this.scheduler.defer(this.drainFn);
  }

  private async drain(): Promise<void> {
    if (this.draining || this.stopped) return;
    const core = this.core;
    if (!core) return;
    this.draining = true;
    let stage = 'the protocol core';
    try {
      while (!this.stopped && core.hasReady()) {
        stage = 'the protocol core';
        const rd = core.ready();
        const batch = this.toBatch(rd);
        // A snapshot received from the leader is restored before it is persisted: one this
        // runtime or state machine cannot restore (e.g. a newer version's) stops the replica
        // without replacing its durable state, so it can still restart.
        stage = 'restoring a received snapshot';
        if (rd.snapshot && rd.snapshot.meta.index > this.applied) this.restoreSnapshot(rd.snapshot);
        stage = 'sending';
        const early = rd.sendBeforePersist === true && rd.messages.length > 0;
        if (early) this.opts.transport.send(rd.messages);
        if (batch) {
          if (!(await this.persist(batch))) return;
        }
        if (!early && rd.messages.length > 0) this.opts.transport.send(rd.messages);
        // A state machine must not throw (return an error result instead): replicas could
        // diverge, so any throw below stops this replica (fail-stop).
        stage = 'applying committed entries';
        for (const e of rd.committed) this.applyEntry(e);
        stage = 'the protocol core';
        for (const r of rd.reads) this.onReadState(r);
        if (rd.committed.length > 0) this.serveReads();
        core.advance(rd);
        if (rd.snapshot || rd.entries.some((e) => e.type === EntryType.Config) || rd.committed.some((e) => e.type === EntryType.Config)) {
          this.syncAddresses();
        }
        stage = 'taking a snapshot';
        this.maybeSnapshot(core);
        if (this.waiters.size > 0) for (const w of [...this.waiters]) if (w.check()) this.waiters.delete(w);
      }
    } catch (err) {
      // Nothing may escape as an unhandled rejection, and a half-processed Ready cannot be
      // retried: stop this replica (fail-stop), reported through onFatal.
      this.failFatal(stage === 'the protocol core' || stage === 'sending' ? asStorageError(`${stage} threw`, err) : asStateMachineError(`${stage} failed`, err));
    } finally {
      this.draining = false;
    }
  }

  /**
   * The batch to persist for `rd`, or null if nothing must be durable before its messages leave.
   * A hard state whose only change is `commit` is deferred (etcd's MustSync): commitIndex is
   * volatile in Raft (Figure 2) and recoverable in Paxos, so it rides along with the next batch
   * or is flushed on a tick, saving one fsync per commit advance.
   */
  private toBatch(rd: Ready<Message>): PersistBatch | null {
    const hs = rd.hardState;
    const nothingElse = rd.truncateFrom === null && rd.compactTo === null && !rd.snapshot && rd.entries.length === 0;
    if (nothingElse) {
      if (!hs) return null;
      const d = this.durableHard;
      if (d && hs.term === d.term && hs.vote === d.vote && hs.commit >= d.commit) {
        this.deferredHard = hs;
        return null;
      }
    }
    const hardState = hs ?? this.deferredHard;
    this.deferredHard = null;
    return { hardState, truncateFrom: rd.truncateFrom, compactTo: rd.compactTo, snapshot: rd.snapshot, entries: rd.entries };
  }

  /** Persists one batch; on failure stops the replica (fail-stop) and returns false. */
  private async persist(batch: PersistBatch): Promise<boolean> {
    try {
      const p = this.opts.storage.persist(batch);
      if (p) {
        this.persisting = Promise.resolve(p);
        try {
          await p;
        } finally {
          this.persisting = null;
        }
      }
    } catch (err) {
      this.failFatal(new StorageError(`persist failed: ${(err as Error)?.message ?? String(err)}`, { cause: err }));
      return false;
    }
    if (batch.hardState) this.durableHard = batch.hardState;
    return !this.stopped;
  }

  /** Makes a deferred commit-only hard state durable (on a tick, or before a clean stop). */
  private flushDeferredHard(): void {
    if (!this.deferredHard || this.draining || this.stopped) return;
    const hardState = this.deferredHard;
    this.deferredHard = null;
    this.draining = true;
    void this.persist({ hardState }).finally(() => {
      this.draining = false;
      this.scheduleDrain();
    });
  }

  /** Reused for every apply: state machines read it during the call (see ApplyContext). */
  private readonly applyContext: { index: number } = { index: 0 };

  private applyCommand(e: Entry, payloadOffset: number): Result {
    this.applyContext.index = e.index;
    return this.sm.apply(e.data.subarray(payloadOffset), this.applyContext);
  }

  /** Applies a command; if the state machine throws, its proposer learns why, then the replica stops. */
  private applyOrReject(e: Entry, payloadOffset: number, pending: PendingProposal | undefined): Result {
    try {
      return this.applyCommand(e, payloadOffset);
    } catch (err) {
      const error = asStateMachineError(`state machine apply threw at index ${e.index}`, err);
      pending?.reject(error);
      throw error;
    }
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.applied) return;
    this.applied = e.index;
    this.entriesSinceSnapshot++;
    this.bytesSinceSnapshot += e.data.length;
    if (e.type === EntryType.Config) {
      try {
        this.appliedConfig = decodeConfiguration(e.data);
      } catch {
        // A config entry we cannot decode came from a broken peer build; the core decided on it.
      }
      return;
    }
    if (e.type !== EntryType.Normal) return;
    const env = this.header;
    if (!parseCommandHeader(e.data, this.originBytes, env)) return; // not a runtime command: skipped on every replica alike
    if (env.time > this.logTime) this.logTime = env.time;
    // The same request twice in the log (a duplicated forwarded proposal): apply it once. Every
    // replica sees the same log, so every replica skips the same entries.
    let origin = this.origins.get(env.originTag);
    if (origin === undefined) {
      origin = newOrigin(env.time);
      this.origins.set(env.originTag, origin);
    }
    if (seenBefore(origin, env.request)) {
      this.duplicateCommands++;
      return;
    }
    if (env.time > origin.lastActive) origin.lastActive = env.time;
    const pending = env.mine && env.originTag === this.originTag ? this.proposals.get(env.request) : undefined;
    if (pending) {
      this.proposals.delete(env.request);
      pending.timer?.cancel();
    }
    switch (env.kind) {
      case CommandKind.Plain: {
        const result = this.applyOrReject(e, env.payloadOffset, pending);
        pending?.resolve(result);
        break;
      }
      case CommandKind.OpenSession: {
        this.sessions.set(e.index, { lastSeq: 0, lastActive: env.time, result: null, raw: undefined });
        pending?.resolve(e.index);
        break;
      }
      case CommandKind.CloseSession: {
        if (this.sessions.delete(env.session)) pending?.resolve(undefined);
        else pending?.reject(new SessionExpiredError(`session ${env.session} unknown or expired`));
        break;
      }
      case CommandKind.Session: {
        const s = this.sessions.get(env.session);
        if (!s) {
          pending?.reject(new SessionExpiredError(`session ${env.session} unknown or expired`));
          break;
        }
        s.lastActive = Math.max(s.lastActive, env.time);
        if (env.seq < s.lastSeq) {
          pending?.reject(new StaleSequenceError(`seq ${env.seq} < last applied ${s.lastSeq} in session ${env.session}`));
          break;
        }
        if (env.seq === s.lastSeq) {
          if (pending) pending.resolve(this.cachedResult(s));
          break;
        }
        const result = this.applyOrReject(e, env.payloadOffset, pending);
        s.lastSeq = env.seq;
        s.raw = result;
        s.result = null;
        pending?.resolve(result);
        break;
      }
    }
    if (this.logTime >= this.nextSessionSweep) this.sweepSessions();
  }

  /** Configuration most recently applied (committed), for membership waiters. */
  private appliedConfig: Configuration | null = null;

  private cachedResult(s: SessionRecord): unknown {
    if (s.raw !== undefined || s.result === null) return s.raw;
    if (!this.sm.decodeResult) throw new UnsupportedError('state machine has no decodeResult; sessions need it');
    s.raw = this.sm.decodeResult(s.result);
    return s.raw;
  }

  private sweepSessions(): void {
    const horizon = this.logTime - this.sessionTimeoutMs;
    for (const [id, s] of this.sessions) if (s.lastActive < horizon) this.sessions.delete(id);
    for (const [tag, o] of this.origins) if (o.lastActive < horizon) this.origins.delete(tag);
    this.nextSessionSweep = this.logTime + Math.max(1, Math.floor(this.sessionTimeoutMs / 8));
  }

  private onReadState(r: ReadState): void {
    const pending = this.reads.get(r.id);
    if (!pending) return;
    if (r.error) {
      this.reads.delete(r.id);
      pending.timer.cancel();
      pending.reject(r.error);
      return;
    }
    pending.index = r.index;
    if (this.applied >= r.index) this.finishRead(r.id, pending);
    else this.readsAwaitingApply.push(pending);
  }

  private serveReads(): void {
    if (this.readsAwaitingApply.length === 0) return;
    const still: PendingRead[] = [];
    for (const r of this.readsAwaitingApply) {
      if (this.applied >= r.index) {
        for (const [id, pr] of this.reads) {
          if (pr === r) {
            this.finishRead(id, r);
            break;
          }
        }
      } else {
        still.push(r);
      }
    }
    this.readsAwaitingApply = still;
  }

  private finishRead(id: number, r: PendingRead): void {
    this.reads.delete(id);
    r.timer.cancel();
    try {
      r.resolve(this.sm.query(r.query as Query));
    } catch (err) {
      r.reject(err);
    }
  }

  private maybeSnapshot(core: ConsensusCore<Message>): void {
    if (this.snapshotEntries === 0) return;
    if (this.entriesSinceSnapshot < this.snapshotEntries && this.bytesSinceSnapshot < this.snapshotBytes) return;
    if (this.applied === 0) return;
    const data = this.encodeSnapshot();
    try {
      core.compact(this.applied, data);
    } catch {
      return; // the core refused (e.g. index not yet known as applied there); try again later
    }
    this.entriesSinceSnapshot = 0;
    this.bytesSinceSnapshot = 0;
  }

  /** Snapshot layout: magic | logTime | sessions | recent requests per origin | state machine bytes. */
  private encodeSnapshot(): Uint8Array {
    const smData = this.sm.snapshot();
    const w = new BinaryWriter(64 + smData.length);
    w.uvarint(SNAPSHOT_MAGIC).uvarint(this.logTime).uvarint(this.sessions.size);
    const needsCodec = this.sessions.size > 0;
    if (needsCodec && !this.sm.encodeResult) throw new UnsupportedError('state machine has no encodeResult; sessions need it');
    for (const [id, s] of this.sessions) {
      w.uvarint(id).uvarint(s.lastSeq).uvarint(Math.max(0, Math.floor(s.lastActive)));
      if (s.result === null && s.raw !== undefined) s.result = this.sm.encodeResult!(s.raw as Result);
      if (s.result) {
        w.u8(1).bytes(s.result);
      } else {
        w.u8(0);
      }
    }
    w.uvarint(this.origins.size);
    for (const [tag, o] of this.origins) {
      w.uvarint(tag).uvarint(Math.max(0, Math.floor(o.lastActive))).uvarint(o.base).raw(o.bits);
    }
    w.raw(smData);
    return w.finish();
  }

  private restoreSnapshot(snap: Snapshot): void {
    const r = new BinaryReader(snap.data);
    const magic = r.uvarint();
    if (magic !== SNAPSHOT_MAGIC && magic !== SNAPSHOT_MAGIC_V1) throw new StateMachineError('snapshot was not written by this runtime (unknown format)');
    this.logTime = r.uvarint();
    const n = r.uvarint();
    this.sessions.clear();
    for (let i = 0; i < n; i++) {
      const id = r.uvarint();
      const lastSeq = r.uvarint();
      const lastActive = r.uvarint();
      const has = r.u8();
      const result = has ? r.bytes().slice() : null;
      this.sessions.set(id, { lastSeq, lastActive, result, raw: undefined });
    }
    this.origins.clear();
    if (magic === SNAPSHOT_MAGIC) {
      const no = r.uvarint();
      for (let i = 0; i < no; i++) {
        const tag = r.uvarint();
        const lastActive = r.uvarint();
        const o = newOrigin(lastActive);
        o.base = r.uvarint();
        o.bits.set(r.raw(DEDUPE_WINDOW >> 3));
        this.origins.set(tag, o);
      }
    }
    this.sm.restore(r.raw(r.remaining));
    this.applied = snap.meta.index;
    this.appliedConfig = snap.meta.config;
    this.nextSessionSweep = 0;
    this.entriesSinceSnapshot = 0;
    this.bytesSinceSnapshot = 0;
    // Reads waiting for an index the snapshot covers can be served now.
    this.serveReads();
  }

  private syncAddresses(): void {
    const t = this.opts.transport;
    if (!t.setPeerAddress || !this.core) return;
    const addrs = this.core.status().config.addresses;
    if (!addrs) return;
    for (const [id, addr] of Object.entries(addrs)) {
      if (id === this.id || this.knownAddresses.get(id) === addr) continue;
      this.knownAddresses.set(id, addr);
      t.setPeerAddress(id, addr);
    }
  }

  private waitFor(cond: () => boolean, ms: number, message: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (cond()) return resolve();
      let timer: TimerHandle | null = null;
      const w: Waiter = {
        check: () => {
          if (this.stopped) {
            timer?.cancel();
            reject(this.fatal ?? new StoppedError());
            return true;
          }
          if (!cond()) return false;
          timer?.cancel();
          resolve();
          return true;
        },
      };
      timer = this.scheduler.setTimer(ms, () => {
        if (this.waiters.delete(w)) reject(new TimeoutError(message));
      });
      this.waiters.add(w);
    });
  }
}


/** Wraps what a state machine (or snapshot decoding) threw; a StateMachineError passes through. */
function asStateMachineError(what: string, err: unknown): StateMachineError {
  if (err instanceof StateMachineError) return err;
  return new StateMachineError(`${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** Wraps what the core or transport threw in a StorageError-like fail-stop error; a SynodError passes through. */
function asStorageError(what: string, err: unknown): SynodError {
  if (err instanceof SynodError) return err;
  return new StorageError(`${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/**
 * Refuses a loaded state that cannot be right (etcd refuses a commit index outside its log the
 * same way): a commit beyond the last stored entry or snapshot, or entries not strictly
 * ascending. Throws {@link StorageError}.
 */
function checkLoadedState(state: PersistedState): void {
  const hs = state.hardState;
  if (!hs || !Number.isSafeInteger(hs.term) || hs.term < 0 || !Number.isSafeInteger(hs.commit) || hs.commit < 0) {
    throw new StorageError('stored hard state is invalid');
  }
  // Entries at or below the snapshot may remain (a storage need not drop them when a snapshot
  // is installed without compaction); the cores skip them.
  let prev = 0;
  for (const e of state.entries) {
    if (!Number.isSafeInteger(e.index) || e.index <= prev) throw new StorageError(`stored log is out of order: entry ${e.index} after ${prev}`);
    prev = e.index;
  }
  const last = Math.max(prev, state.snapshot?.meta.index ?? 0);
  if (hs.commit > last) {
    throw new StorageError(`stored commit index ${hs.commit} is beyond the stored log (last index ${last}): the storage lost entries`);
  }
}

/** Checks the pluggable parts' shapes so a wrong option fails at construction, not later. */
function validateComponents(o: ReplicatedLogOptions<unknown, unknown, unknown>): void {
  const fns = (what: string, v: unknown, names: readonly string[]) => {
    if (v === null || typeof v !== 'object') throw new InvalidConfigurationError(`${what} is required`);
    for (const n of names) {
      if (typeof (v as Record<string, unknown>)[n] !== 'function') throw new InvalidConfigurationError(`${what}.${n} must be a function`);
    }
  };
  fns('protocol', o.protocol, ['create']);
  if (o.protocol.codec === null || typeof o.protocol.codec !== 'object') throw new InvalidConfigurationError('protocol.codec is required');
  fns('storage', o.storage, ['load', 'persist', 'close']);
  fns('transport', o.transport, ['start', 'send', 'close']);
  fns('stateMachine', o.stateMachine, ['apply', 'query', 'snapshot', 'restore']);
  if (o.transport.id !== undefined && o.transport.id !== o.id) {
    throw new InvalidConfigurationError(`transport id ${JSON.stringify(o.transport.id)} differs from the replica id ${JSON.stringify(o.id)}`);
  }
  if (o.seed !== undefined && (typeof o.seed !== 'number' || !Number.isFinite(o.seed))) {
    throw new InvalidConfigurationError(`seed must be a finite number, got ${String(o.seed)}`);
  }
  if (o.onFatal !== undefined && typeof o.onFatal !== 'function') throw new InvalidConfigurationError('onFatal must be a function');
  const b: unknown = o.bootstrap;
  if (b === undefined) return;
  const ids = (what: string, v: unknown, required: boolean) => {
    if (v === undefined && !required) return;
    if (!Array.isArray(v) || !v.every(isValidNodeId)) throw new InvalidConfigurationError(`${what} must be an array of node ids`);
    if (new Set(v).size !== v.length) throw new InvalidConfigurationError(`${what} has a duplicate id`);
  };
  let members: readonly unknown[];
  if (Array.isArray(b)) {
    ids('bootstrap', b, true);
    members = b;
  } else if (b !== null && typeof b === 'object') {
    const c = b as Configuration;
    ids('bootstrap.voters', c.voters, true);
    ids('bootstrap.learners', c.learners, false);
    ids('bootstrap.outgoingVoters', c.outgoingVoters, false);
    members = [...c.voters, ...(c.learners ?? [])];
  } else throw new InvalidConfigurationError('bootstrap must be an array of node ids or a Configuration');
  if (!members.includes(o.id)) {
    throw new InvalidConfigurationError(`bootstrap must include this replica (${o.id}); a replica that joins later starts without bootstrap and is added with changeMembership`);
  }
}

/** Runs `fn`, turning a synchronous throw into a rejected promise (public methods never throw). */
function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Cap on ticks delivered at once after a stall (more than any election timeout or lease). */
const MAX_CATCH_UP_TICKS = 1000;

/** Largest timer delay every JavaScript runtime honours (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMEOUT_MS = 2_147_483_647;

/** Validates a per-call timeout; throws InvalidArgumentError. */
function checkTimeout(ms: number | undefined): number | undefined {
  if (ms === undefined) return undefined;
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms <= 0 || ms > MAX_TIMEOUT_MS) {
    throw new InvalidArgumentError(`timeoutMs must be a number in (0, ${MAX_TIMEOUT_MS}], got ${String(ms)}`);
  }
  return ms;
}

/** A random 48-bit origin tag (never 0). */
function randomTag(): number {
  return (randomUint32() % 0xffffffff) * 0x10000 + (randomUint32() & 0xffff) + 1;
}

/** A deterministic 48-bit origin tag from the seed, the id, the start time and the persisted state. */
function seededTag(seed: number, id: NodeId, now: number, state: PersistedState): number {
  const last = state.entries.length > 0 ? state.entries[state.entries.length - 1]!.index : 0;
  const parts = [seed, now, state.hardState.term, state.hardState.commit, last, state.snapshot?.meta.index ?? 0];
  let h = 0x811c9dc5;
  const mix = (x: number) => {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ Math.floor(x / 0x100000000), 0x01000193) >>> 0;
  };
  for (const p of parts) mix(p);
  for (let i = 0; i < id.length; i++) mix(id.charCodeAt(i));
  const rng = createRandom(h);
  return rng.int(0, 0xfffffffe) * 0x10000 + rng.int(0, 0xffff) + 1;
}

function randomUint32(): number {
  const c = web.crypto;
  if (c) return c.getRandomValues(new Uint32Array(1))[0]! || 1;
  return Math.floor(Math.random() * 0xffffffff) + 1;
}
