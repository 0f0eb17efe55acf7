/**
 * `SimCluster`: a whole cluster of `ReplicatedLog` replicas (Raft or Multi-Paxos) running a
 * key-value state machine over `@synod/transport-memory`, on one `VirtualScheduler`, with
 * crash-surviving storage, per-node skewable clocks and invariant checks after every event. The
 * simulator drives one with a workload and a nemesis; scenario tests drive one by hand.
 */
import {
  type ConsensusProtocol,
  createRandom,
  type Message,
  type NodeId,
  type Random,
  ReplicatedLog,
  type ReplicatedLogStatus,
  type Transport,
  VirtualScheduler,
} from '@synod/log';
import { KvClient, type KvQuery, type KvQueryResult, type KvResult, KvStateMachine } from '@synod/kv';
import { paxos, type PaxosOptions } from '@synod/paxos';
import { raft, type RaftOptions } from '@synod/raft';
import { MemoryNetwork } from '@synod/transport-memory';
import { InvariantChecker, type InvariantProfile, type InvariantViolation, type ReplicaView } from './invariants.js';
import { RecordingStateMachine, SimStorage } from './sim-storage.js';
import { SkewedScheduler } from './skewed-scheduler.js';

/** The protocols the simulator knows by name. */
export type ProtocolName = 'raft' | 'paxos';

/** Options of {@link SimCluster}. Times are virtual milliseconds. */
export interface SimClusterOptions {
  /** `raft` (default) or `paxos`. */
  readonly protocol?: ProtocolName;
  /** Initial voters `n1..nN` (default 5). */
  readonly nodes?: number;
  /** Seed of the cluster's PRNG, or the PRNG itself (shared with a workload and a nemesis). */
  readonly seed?: number | Random;
  /** Milliseconds per core tick (default 10). */
  readonly tickMs?: number;
  /** Default request timeout of the replicas (default 400 ms). */
  readonly requestTimeoutMs?: number;
  /** Snapshot every this many applied entries (default 40; 0 disables). */
  readonly snapshotEntries?: number;
  /** Raft options (defaults: electionTicks 10, heartbeatTicks 1, trailingEntries 8). */
  readonly raftOptions?: RaftOptions;
  /** Paxos options (defaults: electionTicks 10, heartbeatTicks 1). */
  readonly paxosOptions?: PaxosOptions;
  /**
   * Encode every message with the protocol's codec at send and decode it at delivery (the
   * network's `serialize` mode), so the codecs are part of the run. Default false (messages
   * pass by reference; faster).
   */
  readonly serialize?: boolean;
  /** One-way network delay range in ms (default [1, 3]). */
  readonly delayMs?: readonly [number, number];
  /** Check invariants after every event (default true); otherwise every 10 ms of virtual time. */
  readonly checkEveryEvent?: boolean;
  /** Check that persisted term/vote/promise never go back (default true). */
  readonly durableStateChecks?: boolean;
  /** Negative control: storage forgets the vote (Raft) or promise (Paxos) on crash. */
  readonly forgetVoteOnCrash?: boolean;
  /** Called for every command a replica applies (after the invariant check). */
  readonly onApply?: (node: NodeId, index: number, command: Uint8Array) => void;
}

/** One replica of a {@link SimCluster}. */
export interface SimReplica {
  readonly id: NodeId;
  /** Storage kept across crashes. */
  readonly storage: SimStorage;
  /** This node's clock (skew it with `setRate` / `jump`). */
  readonly clock: SkewedScheduler;
  /** The current incarnation's runtime (replaced on restart). */
  log: ReplicatedLog<KvResult, KvQuery, KvQueryResult>;
  /** The current incarnation's state machine. */
  sm: KvStateMachine;
  /** Running now. */
  up: boolean;
  /** `start()` in progress. */
  starting: boolean;
  /** Removed from the configuration and stopped for good. */
  retired: boolean;
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 6; i++) await undefined;
};

/**
 * A simulated cluster. Nothing runs until {@link SimCluster.step} / {@link SimCluster.runFor} /
 * {@link SimCluster.runUntil} advance virtual time; the first broken invariant is kept in
 * {@link SimCluster.violation}.
 */
export class SimCluster {
  /** Shared virtual time. */
  readonly sched = new VirtualScheduler(0);
  /** The network (fault hooks: partition, isolate, cutLink, setFaults, setFilter...). */
  readonly net: MemoryNetwork<Message>;
  /** The one PRNG behind every choice. */
  readonly rng: Random;
  /** The invariant checkers. */
  readonly checker: InvariantChecker;
  /** Protocol name. */
  readonly protocolName: ProtocolName;
  /** Replicas by id (retired ones included). */
  readonly replicas = new Map<NodeId, SimReplica>();
  /** First broken invariant, if any. */
  violation: InvariantViolation | null = null;
  /** Events run. */
  events = 0;
  /** Crashes so far. */
  crashes = 0;
  /** State machine restores from a snapshot (restarts and installs). */
  snapshotRestores = 0;
  private readonly protocol: ConsensusProtocol<Message>;
  private readonly o: SimClusterOptions;
  private readonly dirty = new Set<NodeId>();
  private viewCache: ReplicaView[] | null = null;
  private nextCheck = 0;
  private nextNodeId: number;

  constructor(options: SimClusterOptions = {}) {
    this.o = options;
    this.rng = typeof options.seed === 'object' ? options.seed : createRandom(options.seed ?? 1);
    this.protocolName = options.protocol ?? 'raft';
    const [minDelayMs, maxDelayMs] = options.delayMs ?? [1, 3];
    this.net = new MemoryNetwork<Message>({ scheduler: this.sched, seed: this.rng.int(1, 0x7fffffff), minDelayMs, maxDelayMs, serialize: options.serialize ?? false });
    this.protocol =
      this.protocolName === 'paxos'
        ? (paxos({ electionTicks: 10, heartbeatTicks: 1, ...options.paxosOptions }) as ConsensusProtocol<Message>)
        : (raft({ electionTicks: 10, heartbeatTicks: 1, trailingEntries: 8, ...options.raftOptions }) as ConsensusProtocol<Message>);
    const profile: InvariantProfile = this.protocolName;
    this.checker = new InvariantChecker(profile, options.durableStateChecks ?? true);
    this.nextNodeId = (options.nodes ?? 5) + 1;
  }

  /** Creates and starts the initial voters `n1..nN` (bootstrapped together). */
  async start(): Promise<void> {
    const n = this.o.nodes ?? 5;
    const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    for (const id of ids) this.create(id, ids);
    for (const r of this.replicas.values()) this.startReplica(r);
    await flush();
  }

  /** Records a violation (the first one is kept). */
  fail(v: InvariantViolation): void {
    if (!this.violation) this.violation = v;
  }

  /** Replica `id`; throws RangeError if unknown. */
  replica(id: NodeId): SimReplica {
    const r = this.replicas.get(id);
    if (!r) throw new RangeError(`no replica ${id}`);
    return r;
  }

  /** A key-value client talking to replica `id` (its current incarnation). */
  client(id: NodeId): KvClient {
    return new KvClient(this.replica(id).log);
  }

  /** Ids of replicas that are not retired. */
  ids(): NodeId[] {
    return [...this.replicas.values()].filter((r) => !r.retired).map((r) => r.id);
  }

  /** Replicas running now. */
  upReplicas(): SimReplica[] {
    return [...this.replicas.values()].filter((r) => r.up);
  }

  /** Status of `id`, or null if it is down. */
  status(id: NodeId): ReplicatedLogStatus | null {
    const r = this.replica(id);
    return r.up ? r.log.status() : null;
  }

  /** The running leader with the highest term, if any. */
  leader(): SimReplica | undefined {
    let best: SimReplica | undefined;
    let bestTerm = -1;
    for (const r of this.upReplicas()) {
      const s = r.log.status();
      if (s.role === 'leader' && s.term > bestTerm) {
        best = r;
        bestTerm = s.term;
      }
    }
    return best;
  }

  /** Voters and learners of the newest configuration the leader (or any live replica) knows. */
  members(): NodeId[] {
    const l = this.leader() ?? this.upReplicas()[0];
    if (!l) return this.ids();
    const c = l.log.status().config;
    const set = new Set<NodeId>([...c.voters, ...c.learners, ...(c.outgoingVoters ?? [])]);
    return [...set].filter((id) => this.replicas.has(id) && !this.replicas.get(id)!.retired);
  }

  /** Voters (both halves of a joint configuration) as the leader sees them. */
  voters(): NodeId[] {
    const l = this.leader() ?? this.upReplicas()[0];
    if (!l) return [];
    const c = l.log.status().config;
    return [...new Set<NodeId>([...c.voters, ...(c.outgoingVoters ?? [])])];
  }

  /** Crashes `id`: the runtime stops at once, only what it persisted survives. */
  crash(id: NodeId): void {
    const r = this.replica(id);
    if (!r.up) return;
    r.up = false;
    r.log.crash();
    r.storage.crash();
    this.checker.onRestart(r.id);
    this.crashes++;
    this.markAll();
  }

  /** Restarts a crashed `id` from its storage (a new runtime and an empty state machine). */
  restart(id: NodeId): void {
    const r = this.replica(id);
    if (r.up || r.starting || r.retired) return;
    const built = this.buildLog(r.id, r.storage, r.clock, undefined);
    r.log = built.log;
    r.sm = built.sm;
    this.checker.onRestart(r.id);
    this.startReplica(r);
  }

  /** Starts a brand-new, empty replica with a fresh id (to be added with `changeMembership`). */
  addNode(): NodeId {
    const id = `n${this.nextNodeId++}`;
    this.startReplica(this.create(id, undefined));
    return id;
  }

  /** Stops `id` for good (after it was removed from the configuration). */
  retire(id: NodeId): void {
    const r = this.replica(id);
    r.retired = true;
    if (r.up) {
      r.up = false;
      r.log.crash();
    }
    this.markAll();
  }

  /** Marks replica `id` for the next invariant check (after an outside call into it). */
  mark(id: NodeId): void {
    this.dirty.add(id);
  }

  /** Marks every replica for the next invariant check (after an outside action). */
  markAll(): void {
    for (const id of this.replicas.keys()) this.dirty.add(id);
  }

  /**
   * Runs one event, lets promise callbacks run, and checks invariants on every replica the event
   * may have changed. Returns false when nothing is scheduled. An event that throws is recorded
   * as an `exception` violation.
   */
  async step(): Promise<boolean> {
    try {
      if (!this.sched.step()) return false;
    } catch (err) {
      this.fail({ invariant: 'exception', message: `an event threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, time: this.sched.now() });
      return false;
    }
    this.events++;
    await flush();
    this.check();
    return true;
  }

  /** Checks invariants now (on changed replicas, or all of them every 10 ms when not checking every event). */
  check(): void {
    const every = this.o.checkEveryEvent ?? true;
    if (!every && this.sched.now() < this.nextCheck) return;
    this.nextCheck = this.sched.now() + 10;
    const views = every ? this.views().filter((v) => this.dirty.has(v.id)) : this.views();
    this.dirty.clear();
    const v = this.checker.afterEvent(views, this.sched.now());
    if (v) this.fail(v);
  }

  /** Runs events for `ms` of virtual time (stops early on a violation). */
  async runFor(ms: number): Promise<void> {
    await flush(); // let replicas being started schedule their timers
    const until = this.sched.now() + ms;
    while (!this.violation) {
      const next = this.sched.nextAt();
      if (next === undefined || next > until) break;
      await this.step();
    }
    if (this.sched.now() < until && !this.violation) this.sched.runUntil(until);
  }

  /** Runs events until `cond()` holds or `limitMs` passed; returns whether it held. */
  async runUntil(cond: () => boolean, limitMs = 10_000): Promise<boolean> {
    await flush();
    const until = this.sched.now() + limitMs;
    while (!cond()) {
      if (this.violation) return false;
      const next = this.sched.nextAt();
      if (next === undefined || next > until) return cond();
      await this.step();
    }
    return true;
  }

  /** Runs until `p` settles (or `limitMs` passes) and returns its outcome. */
  async settle<T>(p: Promise<T>, limitMs = 10_000): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    let out: { ok: true; value: T } | { ok: false; error: unknown } | null = null;
    p.then(
      (value) => (out = { ok: true, value }),
      (error: unknown) => (out = { ok: false, error }),
    );
    await flush();
    await this.runUntil(() => out !== null, limitMs);
    return out ?? { ok: false, error: new Error(`not settled within ${limitMs} ms`) };
  }

  /** Runs until a leader is up; returns its id or undefined. */
  async waitForLeader(limitMs = 5_000): Promise<NodeId | undefined> {
    await this.runUntil(() => this.leader() !== undefined, limitMs);
    return this.leader()?.id;
  }

  /**
   * Whether every member is up, has applied everything it committed, and all applied the same
   * index to identical state machines (compared by their canonical snapshots).
   */
  isConverged(): boolean {
    const members = this.members();
    if (members.length === 0) return false;
    let applied = -1;
    let snap: Uint8Array | null = null;
    for (const id of members) {
      const r = this.replicas.get(id);
      if (!r || !r.up) return false;
      const s = r.log.status();
      if (s.appliedIndex !== s.commitIndex) return false;
      if (applied < 0) applied = s.appliedIndex;
      else if (applied !== s.appliedIndex) return false;
      const bytes = r.sm.snapshot();
      if (snap && !equalBytes(snap, bytes)) return false;
      snap = bytes;
    }
    return true;
  }

  /**
   * Heals the network, restarts crashed members, pushes a write through the leader (which
   * commits everything before it) and runs until converged. Returns whether it converged.
   */
  async converge(limitMs = 30_000): Promise<boolean> {
    this.net.heal();
    this.net.setFaults({ dropRate: 0, duplicateRate: 0, reorderRate: 0, minDelayMs: 1, maxDelayMs: 3 });
    for (const r of this.replicas.values()) r.clock.setRate(1);
    this.markAll();
    const deadline = this.sched.now() + limitMs;
    let nextProbe = this.sched.now();
    let barrier: Promise<unknown> | null = null;
    let barrierDone = false;
    while (!this.violation && this.sched.now() < deadline) {
      if (this.sched.now() >= nextProbe) {
        nextProbe = this.sched.now() + 50;
        for (const id of this.members()) this.restart(id);
        const l = this.leader();
        if (l && !barrier) {
          barrier = new KvClient(l.log).put('__barrier', 'x', { timeoutMs: 2000 }).then(
            () => (barrierDone = true),
            () => (barrier = null),
          );
        }
        if (barrierDone && this.isConverged()) return true;
      }
      if (!(await this.step())) break;
    }
    return false;
  }

  /**
   * End-of-run checks on the members: identical committed logs, and every index in
   * `acknowledged` committed (see {@link InvariantChecker.finalCheck}).
   */
  finalCheck(acknowledged: Iterable<number> = []): InvariantViolation | null {
    const members = new Set(this.members());
    const v = this.checker.finalCheck(
      this.views().filter((r) => members.has(r.id)),
      acknowledged,
      this.sched.now(),
    );
    if (v) this.fail(v);
    return v;
  }

  /** Crashes every running replica (end of a run). */
  stopAll(): void {
    for (const r of this.replicas.values()) if (r.up) r.log.crash();
  }

  /** A one-line summary of every replica, for messages. */
  describe(): string {
    return [...this.replicas.values()]
      .filter((r) => !r.retired)
      .map((r) => {
        if (!r.up) return `${r.id}: down`;
        const s = r.log.status();
        return `${r.id}: ${s.role} term ${s.term} commit ${s.commitIndex} applied ${s.appliedIndex} last ${s.lastIndex} voters [${s.config.voters.join(',')}]`;
      })
      .join('; ');
  }

  // ---------------------------------------------------------------- internals

  private views(): ReplicaView[] {
    if (!this.viewCache || this.viewCache.length !== this.replicas.size) {
      this.viewCache = [...this.replicas.values()].map((r) => ({
        id: r.id,
        get up() {
          return r.up;
        },
        status: () => (r.up ? r.log.status() : null),
        log: r.storage.shadow,
        get snapshotIndex() {
          return r.storage.snapshotIndex;
        },
      }));
    }
    return this.viewCache;
  }

  private create(id: NodeId, bootstrap: NodeId[] | undefined): SimReplica {
    const clock = new SkewedScheduler(this.sched, 0, () => this.dirty.add(id));
    let replica: SimReplica | undefined;
    const storage = new SimStorage(
      (batch) => {
        if (!replica) return;
        const r = replica;
        const status = () => {
          try {
            return r.log.status();
          } catch {
            return null;
          }
        };
        const v = this.checker.onPersist(id, batch, status, r.storage.shadow, this.sched.now());
        if (v) this.fail(v);
      },
      () => {
        if (!replica) return;
        const st = replica.storage;
        const v = this.checker.onPersisted(id, st.shadow, st.snapshotIndex, st.hardState.commit, this.sched.now());
        if (v) this.fail(v);
      },
      this.o.forgetVoteOnCrash ? 'forget-vote' : null,
    );
    storage.forgetPromise = this.protocolName === 'paxos';
    const built = this.buildLog(id, storage, clock, bootstrap);
    replica = { id, storage, clock, log: built.log, sm: built.sm, up: false, starting: false, retired: false };
    this.replicas.set(id, replica);
    this.viewCache = null;
    return replica;
  }

  private buildLog(id: NodeId, storage: SimStorage, clock: SkewedScheduler, bootstrap: NodeId[] | undefined) {
    const sm = new KvStateMachine();
    const recording = new RecordingStateMachine<KvResult, KvQuery, KvQueryResult>(
      sm,
      (c) => {
        const v = this.checker.onApply(id, c.index, c.command, this.sched.now());
        if (v) this.fail(v);
        this.o.onApply?.(id, c.index, c.command);
      },
      () => this.snapshotRestores++,
    );
    const log = new ReplicatedLog<KvResult, KvQuery, KvQueryResult>({
      id,
      protocol: this.protocol,
      storage,
      transport: this.transportFor(id),
      stateMachine: recording,
      scheduler: clock,
      tickMs: this.o.tickMs ?? 10,
      requestTimeoutMs: this.o.requestTimeoutMs ?? 400,
      snapshotThreshold: { entries: this.o.snapshotEntries ?? 40 },
      seed: this.rng.int(1, 0x7fffffff),
      ...(bootstrap ? { bootstrap } : {}),
    });
    return { log, sm };
  }

  /** The node's network endpoint, wrapped to mark the node as changed on every delivery. */
  private transportFor(id: NodeId): Transport<Message> {
    const ep = this.net.connect(id);
    return {
      id,
      start: (h) =>
        ep.start({
          codec: h.codec,
          onMessage: (m) => {
            this.dirty.add(id);
            h.onMessage(m);
          },
        }),
      send: (ms) => ep.send(ms),
      stats: () => ep.stats(),
      close: () => ep.close(),
    };
  }

  private startReplica(r: SimReplica): void {
    r.starting = true;
    r.log.start().then(
      () => {
        r.starting = false;
        r.up = !r.retired;
        this.dirty.add(r.id);
      },
      (err: unknown) => {
        r.starting = false;
        this.fail({ invariant: 'start', message: `${r.id} failed to start: ${String(err)}`, time: this.sched.now(), node: r.id });
      },
    );
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
