/**
 * The deterministic cluster simulator (the FoundationDB / TigerBeetle approach): whole
 * `ReplicatedLog` replicas of Raft or Multi-Paxos over `@synod/transport-memory` on one
 * `VirtualScheduler`, each with a `SimStorage` that survives crashes, a skewable clock and a
 * recording key-value state machine; a nemesis injecting faults; concurrent clients recording a
 * history; invariant checks after every event; a linearizability check at the end. ONE seeded
 * PRNG makes every choice, so a seed replays a run exactly.
 */
import { createRandom, type NodeId, NotLeaderError, SynodError, TimeoutError } from '@synod/log';
import { decodeKvCommand, encodeKvCommand, type KvCommand, type KvQueryResult, type KvResult, toBytes, toText } from '@synod/kv';
import { type PaxosOptions, type ResolvedPaxosOptions, resolveOptions as resolvePaxosOptions } from '@synod/paxos';
import { type RaftOptions, type ResolvedRaftOptions, resolveRaftOptions } from '@synod/raft';
import { type ProtocolName, SimCluster, type SimReplica } from './cluster.js';
import { HistoryRecorder } from './history.js';
import type { InvariantViolation } from './invariants.js';
import { type KvInput, type KvOperation, type KvOutput, kvModel } from './kv-model.js';
import { checkLinearizability, type LinearizabilityFailure } from './linearizability.js';

/** Which faults the nemesis injects. Every field defaults to `true` (all on). */
export interface NemesisOptions {
  /** Network partitions: random majority/minority splits, isolating the leader, a bridge. */
  readonly partitions?: boolean;
  /** One-way link cuts (a node that can send but not receive, or the reverse). */
  readonly oneWay?: boolean;
  /** Crash a replica (losing everything not persisted) and restart it later. */
  readonly crashes?: boolean;
  /** Bursts of message drop, reordering and long delays (duplication: see `duplicates`). */
  readonly messageFaults?: boolean;
  /**
   * Let message-fault bursts also duplicate messages (default true). A duplicated forwarded
   * proposal is appended twice by the leader; the runtime must apply it once (checked as
   * `command-applied-twice`).
   */
  readonly duplicates?: boolean;
  /** Clock skew: a replica's clock runs fast or slow (see `clockRate`) or jumps forward. */
  readonly clockSkew?: boolean;
  /**
   * Range of clock rates the skew draws from. Default `[0.5, 2]`, or `[0.96, 1.04]` when the
   * workload uses lease reads (which are linearizable only within the cores' drift bound, 10%
   * by default).
   */
  readonly clockRate?: readonly [number, number];
  /** Leadership transfers to a random voter (Raft thesis §3.10). */
  readonly transfers?: boolean;
  /** Membership churn: remove a voter, add a fresh one (never reusing an id). */
  readonly membership?: boolean;
  /**
   * Election storms (default **false**): with slow links (1–40 ms), bounce the leader (crash,
   * restart 5–60 ms later) and, while all voters elect a new one, bounce random voters (restart
   * 1–15 ms later) — the interleavings where a replica that forgets its vote or promise votes
   * twice.
   */
  readonly electionStorms?: boolean;
  /** Virtual ms between nemesis actions, drawn uniformly in [min, max]. Default [50, 300]. */
  readonly intervalMs?: readonly [number, number];
  /** How long a network fault lasts, ms, drawn in [min, max]. Default [50, 600]. */
  readonly faultMs?: readonly [number, number];
}

/**
 * Deliberate bugs for negative controls, reachable only from the testkit: the simulator must
 * catch each of them. Never enable them in a real test of a protocol.
 * - `forgetVote`: storage forgets the Raft vote / the Paxos promise on crash.
 * - `staleReads`: clients read from any replica's local state (`stale`) but record the read as
 *   linearizable.
 */
export interface SimulationBugs {
  readonly forgetVote?: boolean;
  readonly staleReads?: boolean;
}

/** Options of {@link simulate}. Times are virtual milliseconds. */
export interface SimulationOptions {
  /** 32-bit seed; the same seed and options replay the same run. */
  readonly seed: number;
  /** `raft` (default) or `paxos`. */
  readonly protocol?: ProtocolName;
  /** Initial voters (default 5, at least 1). */
  readonly nodes?: number;
  /** Client operations to invoke (default 200). */
  readonly ops?: number;
  /** Concurrent clients (default 5). */
  readonly clients?: number;
  /** Keys the clients use (default 3). */
  readonly keys?: number;
  /** Fault injection; `false` turns the nemesis off. Default: everything on. */
  readonly nemesis?: NemesisOptions | false;
  /** Milliseconds per core tick (default 10). */
  readonly tickMs?: number;
  /**
   * Read consistency of the clients' reads: `linearizable` (default, ReadIndex), `lease`
   * (leader lease, Raft thesis §6.4.1; turns on Raft's `leaseRead`) or `mixed` (each read
   * draws one). Lease reads also narrow the default clock-rate range of the nemesis to the
   * cores' drift bound.
   */
  readonly reads?: 'linearizable' | 'lease' | 'mixed';
  /** Client request timeout (default 400 ms); a write that times out has an unknown outcome. */
  readonly requestTimeoutMs?: number;
  /** Snapshot every this many applied entries (default 40; 0 disables). */
  readonly snapshotEntries?: number;
  /** Protocol options (defaults: electionTicks 10, heartbeatTicks 1, small snapshot trailing). */
  readonly raftOptions?: RaftOptions;
  /** Paxos options (defaults: electionTicks 10, heartbeatTicks 1). */
  readonly paxosOptions?: PaxosOptions;
  /** Round-trip every message through the protocol's codec (default false). */
  readonly serialize?: boolean;
  /** Check invariants after every event (default true); otherwise every 10 ms of virtual time. */
  readonly checkEveryEvent?: boolean;
  /** Give up the load phase after this much virtual time (default 120,000 ms). */
  readonly maxLoadMs?: number;
  /** Virtual time the cluster gets to converge after the faults stop (default 30,000 ms). */
  readonly convergeMs?: number;
  /**
   * Use what the simulator saw applied to settle unknown outcomes: a write applied somewhere
   * took effect by then; one never applied anywhere once the cluster converged never took
   * effect. Default true (it keeps the linearizability search small).
   */
  readonly resolveUnknown?: boolean;
  /**
   * Check that persisted hard state (term, vote, promise) never goes back across crashes
   * (default true). Turn off to measure how soon a durability bug shows in its consequences.
   */
  readonly durableStateChecks?: boolean;
  /** Negative controls (see {@link SimulationBugs}). */
  readonly bugs?: SimulationBugs;
  /** Receives a trace line for every nemesis action and client outcome (for debugging). */
  readonly trace?: (line: string) => void;
}

/**
 * The options a run used, every default filled in (see {@link SimulationOptions} for the
 * meaning and units of each field). Plain data: JSON-serializable (`trace` is left out), and
 * `simulate(result.options)` replays the same run.
 */
export interface ResolvedSimulationOptions {
  readonly seed: number;
  readonly protocol: ProtocolName;
  readonly nodes: number;
  readonly ops: number;
  readonly clients: number;
  readonly keys: number;
  /** ms per core tick. */
  readonly tickMs: number;
  readonly reads: 'linearizable' | 'lease' | 'mixed';
  /** ms. */
  readonly requestTimeoutMs: number;
  readonly snapshotEntries: number;
  readonly serialize: boolean;
  readonly checkEveryEvent: boolean;
  /** ms. */
  readonly maxLoadMs: number;
  /** ms. */
  readonly convergeMs: number;
  readonly resolveUnknown: boolean;
  readonly durableStateChecks: boolean;
  /** `false` when the nemesis is off, otherwise every nemesis option. */
  readonly nemesis: Required<NemesisOptions> | false;
  readonly bugs: Required<SimulationBugs>;
  /** Raft runs only: the core's options in effect (`resolveRaftOptions` of `@synod/raft`). */
  readonly raftOptions?: ResolvedRaftOptions;
  /**
   * Paxos runs only: the core's options in effect (`resolveOptions` of `@synod/paxos`; unset
   * quorum sizes are left out).
   */
  readonly paxosOptions?: Partial<ResolvedPaxosOptions>;
}

/** Counters of one run. */
export interface SimulationStats {
  /** Virtual time at the end, ms. */
  readonly virtualMs: number;
  /** Scheduler events run. */
  readonly events: number;
  /** Invariant checks run. */
  readonly invariantChecks: number;
  readonly opsOk: number;
  readonly opsFailed: number;
  readonly opsUnknown: number;
  /** Unknown outcomes settled by what was applied (see `resolveUnknown`). */
  readonly unknownResolved: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly messageFaultBursts: number;
  readonly skews: number;
  readonly transfers: number;
  readonly membershipChanges: number;
  /** Distinct (term, leader) pairs seen. */
  readonly leaderships: number;
  /** Highest commit index reached. */
  readonly commitIndex: number;
  /** Snapshots restored by state machines (local restarts and installs from a leader). */
  readonly snapshotRestores: number;
}

/** The outcome of one simulated run. */
export interface SimulationResult {
  readonly seed: number;
  readonly protocol: ProtocolName;
  /** The options of the run with every default filled in (JSON-serializable, replayable). */
  readonly options: ResolvedSimulationOptions;
  /** True when no invariant broke, the cluster converged and the history is linearizable. */
  readonly ok: boolean;
  /** The first broken invariant (including `convergence` when the cluster did not converge). */
  readonly violation?: InvariantViolation;
  /** Verdict of the linearizability check (`skipped` after an invariant violation). */
  readonly linearizability: 'ok' | 'illegal' | 'unknown' | 'skipped';
  /** Set when `linearizability` is `illegal`. */
  readonly linearizabilityFailure?: LinearizabilityFailure<KvInput, KvOutput>;
  /** The client history (after settling unknown outcomes). */
  readonly history: KvOperation[];
  /** Nemesis actions, in order: `[virtual ms, description]`. */
  readonly nemesisLog: ReadonlyArray<readonly [number, string]>;
  readonly stats: SimulationStats;
}

interface Client {
  readonly id: number;
  node: NodeId;
  n: number;
  readonly lastSeen: Map<string, string | null>;
  done: boolean;
}

/** Errors with which a core refuses a proposal before appending it: the write did not happen. */
const DEFINITE_REFUSALS = new Set(['NOT_LEADER', 'TRANSFER_IN_PROGRESS', 'UNCOMMITTED_LOG_FULL', 'CONFIG_CHANGE_IN_PROGRESS', 'INVALID_ARGUMENT']);


/**
 * Runs one simulated cluster to the end and checks it. Never rejects for a protocol bug (that is
 * a result with `ok: false`); rejects with InvalidArgumentError / InvalidConfigurationError for
 * bad options.
 */
export async function simulate(options: SimulationOptions): Promise<SimulationResult> {
  return new Simulation(options).run();
}

class Simulation {
  private readonly o: Required<Omit<SimulationOptions, 'nemesis' | 'bugs' | 'trace' | 'raftOptions' | 'paxosOptions' | 'durableStateChecks' | 'serialize'>>;
  private readonly nemesis: Required<NemesisOptions> | null;
  private readonly bugs: SimulationBugs;
  private readonly resolved: ResolvedSimulationOptions;
  private readonly trace: ((line: string) => void) | undefined;
  private readonly cluster: SimCluster;
  private readonly recorder = new HistoryRecorder<KvInput, KvOutput>();
  private readonly clients: Client[] = [];
  private readonly keys: string[];
  private issued = 0;
  private loadPhase = true;
  private membershipBusy = false;
  private readonly nemesisLog: Array<[number, string]> = [];
  /** value → op id of the write that carries it (values are unique). */
  private readonly writeOfValue = new Map<string, number>();
  /** op id → first time (logical event, virtual ms, index) any replica applied it. */
  private readonly firstApplied = new Map<number, { event: number; time: number; index: number }>();
  private readonly counters = { partitions: 0, messageFaultBursts: 0, skews: 0, transfers: 0, membershipChanges: 0 };

  constructor(options: SimulationOptions) {
    this.o = {
      seed: options.seed >>> 0,
      protocol: options.protocol ?? 'raft',
      nodes: options.nodes ?? 5,
      ops: options.ops ?? 200,
      clients: options.clients ?? 5,
      keys: options.keys ?? 3,
      tickMs: options.tickMs ?? 10,
      requestTimeoutMs: options.requestTimeoutMs ?? 400,
      snapshotEntries: options.snapshotEntries ?? 40,
      checkEveryEvent: options.checkEveryEvent ?? true,
      maxLoadMs: options.maxLoadMs ?? 120_000,
      convergeMs: options.convergeMs ?? 30_000,
      resolveUnknown: options.resolveUnknown ?? true,
      reads: options.reads ?? 'linearizable',
    };
    const n = options.nemesis;
    this.nemesis =
      n === false
        ? null
        : {
            partitions: n?.partitions ?? true,
            oneWay: n?.oneWay ?? true,
            crashes: n?.crashes ?? true,
            messageFaults: n?.messageFaults ?? true,
            duplicates: n?.duplicates ?? true,
            clockSkew: n?.clockSkew ?? true,
            clockRate: n?.clockRate ?? ((options.reads ?? 'linearizable') === 'linearizable' ? [0.5, 2] : [0.96, 1.04]),
            transfers: n?.transfers ?? true,
            membership: n?.membership ?? true,
            electionStorms: n?.electionStorms ?? false,
            intervalMs: n?.intervalMs ?? [50, 300],
            faultMs: n?.faultMs ?? [50, 600],
          };
    this.bugs = options.bugs ?? {};
    this.trace = options.trace;
    const raftOptions =
      this.o.protocol === 'raft'
        ? resolveRaftOptions({ electionTicks: 10, heartbeatTicks: 1, trailingEntries: 8, ...(this.o.reads !== 'linearizable' ? { leaseRead: true } : {}), ...options.raftOptions })
        : undefined;
    const paxosOptions = this.o.protocol === 'paxos' ? resolvePaxosOptions({ electionTicks: 10, heartbeatTicks: 1, ...options.paxosOptions }) : undefined;
    this.resolved = {
      ...this.o,
      serialize: options.serialize ?? false,
      durableStateChecks: options.durableStateChecks ?? true,
      nemesis: this.nemesis ?? false,
      bugs: { forgetVote: this.bugs.forgetVote ?? false, staleReads: this.bugs.staleReads ?? false },
      ...(raftOptions ? { raftOptions } : {}),
      ...(paxosOptions ? { paxosOptions: withoutUndefined(paxosOptions) } : {}),
    };
    this.cluster = new SimCluster({
      protocol: this.o.protocol,
      nodes: this.o.nodes,
      seed: createRandom(this.o.seed),
      tickMs: this.o.tickMs,
      requestTimeoutMs: this.o.requestTimeoutMs,
      snapshotEntries: this.o.snapshotEntries,
      checkEveryEvent: this.o.checkEveryEvent,
      serialize: this.resolved.serialize,
      durableStateChecks: this.resolved.durableStateChecks,
      forgetVoteOnCrash: this.resolved.bugs.forgetVote,
      onApply: (_node, index, command) => this.onApply(index, command),
      ...(raftOptions ? { raftOptions } : {}),
      ...(paxosOptions ? { paxosOptions } : {}),
    });
    this.keys = Array.from({ length: this.o.keys }, (_, i) => `k${i}`);
  }

  private get sched() {
    return this.cluster.sched;
  }
  private get net() {
    return this.cluster.net;
  }
  private get rng() {
    return this.cluster.rng;
  }
  private get replicas() {
    return this.cluster.replicas;
  }
  private get violation() {
    return this.cluster.violation;
  }

  private log(line: string): void {
    this.trace?.(`${this.sched.now()} ${line}`);
  }

  private nemesisAction(line: string): void {
    this.cluster.markAll();
    this.nemesisLog.push([this.sched.now(), line]);
    this.log(`nemesis: ${line}`);
  }

  private fail(v: InvariantViolation): void {
    if (!this.violation) this.log(`VIOLATION ${v.invariant}: ${v.message}`);
    this.cluster.fail(v);
  }

  // ------------------------------------------------------------------ replicas

  private onApply(index: number, command: Uint8Array): void {
    let cmd: KvCommand;
    try {
      cmd = decodeKvCommand(command);
    } catch {
      return;
    }
    const value = cmd.type === 'put' ? cmd.value : cmd.type === 'cas' ? cmd.value : null;
    if (!value) return;
    const op = this.writeOfValue.get(toText(value) ?? '');
    if (op === undefined) return;
    const first = this.firstApplied.get(op);
    if (!first) {
      this.firstApplied.set(op, { event: this.recorder.mark(), time: this.sched.now(), index });
    } else if (first.index !== index) {
      // One client request, two log entries: the command takes effect twice (at-least-once).
      this.fail({
        invariant: 'command-applied-twice',
        message: `client write ${op} (${cmd.type} ${cmd.key}) was applied at index ${first.index} and again at index ${index}`,
        time: this.sched.now(),
      });
    }
  }

  private leader(): SimReplica | undefined {
    return this.cluster.leader();
  }

  private members(): NodeId[] {
    return this.cluster.members();
  }

  private voters(): NodeId[] {
    return this.cluster.voters();
  }

  private pick<T>(xs: readonly T[]): T | undefined {
    if (xs.length === 0) return undefined;
    return xs[this.rng.int(0, xs.length - 1)];
  }

  private shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.rng.int(0, i);
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
    }
    return xs;
  }

  // ------------------------------------------------------------------ clients

  private startClients(): void {
    const ids = [...this.replicas.keys()];
    for (let c = 0; c < this.o.clients; c++) {
      const client: Client = { id: c, node: this.pick(ids)!, n: 0, lastSeen: new Map(), done: false };
      this.clients.push(client);
      this.sched.setTimer(this.rng.int(0, 20), () => this.nextOp(client));
    }
  }

  private nextOp(c: Client): void {
    if (this.issued >= this.o.ops || !this.loadPhase) {
      c.done = true;
      return;
    }
    this.issued++;
    const key = this.pick(this.keys)!;
    const roll = this.rng.next();
    const value = `c${c.id}.${c.n++}`;
    let input: KvInput;
    if (roll < 0.4) input = { f: 'get', key };
    else if (roll < 0.7) input = { f: 'put', key, value };
    else {
      const expected = c.lastSeen.has(key) && this.rng.next() < 0.85 ? c.lastSeen.get(key)! : null;
      input = { f: 'cas', key, expected, value };
    }
    const id = this.recorder.invoke(c.id, input, this.sched.now(), c.node);
    if (input.f !== 'get') this.writeOfValue.set(value, id);
    this.attempt(c, id, input, 0);
  }

  private think(c: Client): void {
    this.sched.setTimer(this.rng.int(0, 30), () => this.nextOp(c));
  }

  private switchNode(c: Client, hint: NodeId | null): void {
    const candidates = [...this.replicas.values()].filter((r) => !r.retired).map((r) => r.id);
    c.node = hint && this.replicas.has(hint) && !this.replicas.get(hint)!.retired ? hint : this.pick(candidates)!;
  }

  private attempt(c: Client, id: number, input: KvInput, attempt: number): void {
    const r = this.replicas.get(c.node);
    const retry = (hint: NodeId | null, reason: string) => {
      this.switchNode(c, hint);
      if (attempt + 1 >= 4) {
        this.recorder.fail(id, this.sched.now(), reason);
        this.think(c);
        return;
      }
      this.sched.setTimer(this.rng.int(5, 30), () => this.attempt(c, id, input, attempt + 1));
    };
    if (!r || !r.up) {
      retry(null, 'replica down');
      return;
    }
    this.cluster.mark(r.id);
    if (input.f === 'get') {
      const consistency = this.bugs.staleReads
        ? 'stale'
        : this.o.reads === 'linearizable'
          ? 'linearizable'
          : this.o.reads === 'lease'
            ? 'lease'
            : this.rng.next() < 0.5
              ? 'lease'
              : 'linearizable';
      let reading: Promise<KvQueryResult>;
      try {
        reading = r.log.read({ type: 'get', key: input.key }, { consistency, timeoutMs: this.o.requestTimeoutMs });
      } catch (err) {
        retry(null, errorName(err));
        return;
      }
      reading.then(
        (res) => {
          const value = res.type === 'get' && res.value ? toText(res.value) : null;
          this.recorder.ok(id, { value }, this.sched.now());
          c.lastSeen.set(input.key, value);
          this.think(c);
        },
        (err: unknown) => {
          // A read has no effect: any failure is definite; retry elsewhere.
          retry(err instanceof NotLeaderError ? err.leaderHint : null, errorName(err));
        },
      );
      return;
    }
    const cmd: KvCommand =
      input.f === 'put'
        ? { type: 'put', key: input.key, value: toBytes(input.value) }
        : { type: 'cas', key: input.key, expected: input.f === 'cas' && input.expected !== null ? toBytes(input.expected) : null, value: toBytes(input.f === 'cas' ? input.value : '') };
    let pending: Promise<KvResult>;
    try {
      pending = r.log.propose(encodeKvCommand(cmd), { timeoutMs: this.o.requestTimeoutMs });
    } catch (err) {
      retry(null, errorName(err)); // stopped before proposing: it did not happen
      return;
    }
    pending.then(
      (res) => {
        if (res.type === 'put') this.recorder.ok(id, {}, this.sched.now());
        else if (res.type === 'cas') this.recorder.ok(id, { ok: res.ok }, this.sched.now());
        else {
          this.recorder.fail(id, this.sched.now(), `error result ${res.type}`);
          this.fail({ invariant: 'kv-result', message: `unexpected result ${JSON.stringify(res)}`, time: this.sched.now(), node: r.id });
        }
        if (input.f === 'put') c.lastSeen.set(input.key, input.value);
        else if (input.f === 'cas' && res.type === 'cas') c.lastSeen.set(input.key, res.current ? toText(res.current) : null);
        this.think(c);
      },
      (err: unknown) => {
        // Refusals (thrown by the core before anything was appended) did not happen; a
        // timeout or a crash while pending may have.
        if (err instanceof SynodError && DEFINITE_REFUSALS.has(err.code)) {
          retry(err instanceof NotLeaderError ? err.leaderHint : null, errorName(err));
          return;
        }
        this.recorder.unknown(id, errorName(err));
        this.switchNode(c, null);
        this.think(c);
      },
    );
  }

  // ------------------------------------------------------------------ nemesis

  private scheduleNemesis(): void {
    const n = this.nemesis;
    if (!n) return;
    this.sched.setTimer(this.rng.int(n.intervalMs[0], n.intervalMs[1]), () => {
      if (!this.loadPhase) return;
      this.nemesisStep(n);
      this.scheduleNemesis();
    });
  }

  private nemesisStep(n: Required<NemesisOptions>): void {
    const actions: Array<() => void> = [];
    if (n.partitions) actions.push(() => this.partitionRandom(n), () => this.isolateLeader(n), () => this.bridge(n));
    if (n.oneWay) actions.push(() => this.oneWay(n));
    if (n.crashes) actions.push(() => this.crashOne(), () => this.crashOne());
    if (n.messageFaults) actions.push(() => this.messageFaults(n));
    if (n.clockSkew) actions.push(() => this.skew());
    if (n.transfers) actions.push(() => this.transfer());
    if (n.membership) actions.push(() => this.churn());
    if (n.electionStorms) actions.push(() => this.electionStorm(n), () => this.electionStorm(n));
    const a = this.pick(actions);
    a?.();
  }

  private faultFor(n: Required<NemesisOptions>, undo: () => void): void {
    this.sched.setTimer(this.rng.int(n.faultMs[0], n.faultMs[1]), () => {
      undo();
    });
  }

  private allIds(): NodeId[] {
    return [...this.replicas.values()].filter((r) => !r.retired).map((r) => r.id);
  }

  private partitionRandom(n: Required<NemesisOptions>): void {
    const ids = this.shuffle(this.allIds());
    const k = this.rng.int(1, Math.max(1, Math.floor(ids.length / 2)));
    const minority = ids.slice(0, k);
    const majority = ids.slice(k);
    this.net.partition([minority, majority]);
    this.counters.partitions++;
    this.nemesisAction(`partition ${minority.join(',')} | ${majority.join(',')}`);
    this.faultFor(n, () => this.heal());
  }

  private isolateLeader(n: Required<NemesisOptions>): void {
    const l = this.leader();
    if (!l) return this.partitionRandom(n);
    this.net.isolate(l.id);
    this.counters.partitions++;
    this.nemesisAction(`isolate leader ${l.id}`);
    this.faultFor(n, () => this.heal());
  }

  private bridge(n: Required<NemesisOptions>): void {
    const ids = this.shuffle(this.allIds());
    if (ids.length < 3) return this.partitionRandom(n);
    const half = Math.floor((ids.length - 1) / 2);
    const a = ids.slice(0, half);
    const bridge = ids[half]!;
    const b = ids.slice(half + 1);
    for (const x of a) for (const y of b) {
      this.net.cutLink(x, y);
      this.net.cutLink(y, x);
    }
    this.counters.partitions++;
    this.nemesisAction(`bridge ${a.join(',')} <-${bridge}-> ${b.join(',')}`);
    this.faultFor(n, () => this.heal());
  }

  private oneWay(n: Required<NemesisOptions>): void {
    const l = this.leader();
    const ids = this.allIds();
    const from = l && this.rng.next() < 0.5 ? l.id : this.pick(ids)!;
    const outbound = this.rng.next() < 0.5;
    const others = this.shuffle(ids.filter((x) => x !== from)).slice(0, Math.max(1, Math.ceil((ids.length - 1) / 2)));
    for (const y of others) {
      if (outbound) this.net.cutLink(from, y);
      else this.net.cutLink(y, from);
    }
    this.counters.partitions++;
    this.nemesisAction(`one-way cut ${outbound ? `${from} -> ${others.join(',')}` : `${others.join(',')} -> ${from}`}`);
    this.faultFor(n, () => this.heal());
  }

  private heal(): void {
    this.net.heal();
    this.nemesisAction('heal network');
  }

  private crashOne(): void {
    const members = this.members();
    const voters = this.voters();
    const down = voters.filter((id) => !this.replicas.get(id)?.up).length;
    const candidates = members.filter((id) => this.replicas.get(id)?.up);
    // Keep a quorum of voters up most of the time, so the load makes progress.
    if (down + 1 > Math.floor((voters.length - 1) / 2) && this.rng.next() < 0.8) return;
    const id = this.pick(candidates);
    if (!id) return;
    const r = this.replicas.get(id)!;
    this.cluster.crash(id);
    this.nemesisAction(`crash ${id}`);
    this.sched.setTimer(this.rng.int(0, 1500), () => {
      if (!r.up && !r.starting && !r.retired) {
        this.cluster.restart(id);
        this.nemesisAction(`restart ${id}`);
      }
    });
  }

  private electionStorm(n: Required<NemesisOptions>): void {
    const l = this.leader();
    if (!l) return;
    // Every voter takes part in the next election: the leader only bounces.
    this.net.setFaults({ minDelayMs: 1, maxDelayMs: 40 });
    this.bounce(l.id, this.rng.int(5, 60));
    this.nemesisAction(`election storm: bounce leader ${l.id}, delays 1-40 ms`);
    for (let i = 0; i < 4; i++) {
      this.sched.setTimer(this.rng.int(60, 400), () => {
        if (!this.loadPhase) return;
        const id = this.pick(this.voters().filter((v) => this.replicas.get(v)?.up));
        if (id) this.bounce(id, this.rng.int(1, 15));
      });
    }
    this.faultFor(n, () => {
      this.net.setFaults({ minDelayMs: 1, maxDelayMs: 3 });
      this.nemesisAction('storm over');
    });
  }

  /** Crash `id` and restart it `ms` later (a process supervisor restarting it). */
  private bounce(id: NodeId, ms: number): void {
    this.cluster.crash(id);
    this.nemesisAction(`bounce ${id} (${ms} ms)`);
    this.sched.setTimer(ms, () => {
      this.cluster.restart(id);
      this.nemesisAction(`restart ${id}`);
    });
  }

  private messageFaults(n: Required<NemesisOptions>): void {
    const f = {
      dropRate: this.rng.next() * 0.3,
      duplicateRate: n.duplicates ? this.rng.next() * 0.2 : 0,
      reorderRate: this.rng.next() * 0.3,
      reorderMaxMs: this.rng.int(1, 40),
      minDelayMs: 1,
      maxDelayMs: this.rng.int(1, 50),
    };
    this.net.setFaults(f);
    this.counters.messageFaultBursts++;
    this.nemesisAction(`message faults drop ${f.dropRate.toFixed(2)} dup ${f.duplicateRate.toFixed(2)} reorder ${f.reorderRate.toFixed(2)} delay 1-${f.maxDelayMs}`);
    this.faultFor(n, () => {
      this.net.setFaults({ dropRate: 0, duplicateRate: 0, reorderRate: 0, minDelayMs: 1, maxDelayMs: 3 });
      this.nemesisAction('message faults off');
    });
  }

  private skew(): void {
    const r = this.pick([...this.replicas.values()].filter((x) => !x.retired));
    if (!r) return;
    if (this.rng.next() < 0.3) {
      const ms = this.rng.int(1, 500);
      r.clock.jump(ms);
      this.nemesisAction(`clock of ${r.id} jumps ${ms} ms`);
    } else {
      const [lo, hi] = this.nemesis!.clockRate;
      const rate = lo + this.rng.next() * (hi - lo);
      r.clock.setRate(rate);
      this.nemesisAction(`clock of ${r.id} runs at ${rate.toFixed(2)}x`);
    }
    this.counters.skews++;
  }

  private transfer(): void {
    const l = this.leader();
    if (!l) return;
    const to = this.pick(this.voters().filter((id) => id !== l.id && this.replicas.get(id)?.up));
    if (!to) return;
    this.counters.transfers++;
    this.nemesisAction(`transfer leadership ${l.id} -> ${to}`);
    l.log.transferLeadership(to, { timeoutMs: 1000 }).catch(() => {});
  }

  private churn(): void {
    if (this.membershipBusy) return;
    const l = this.leader();
    if (!l) return;
    const voters = this.voters();
    const cfg = l.log.status().config;
    if (cfg.outgoingVoters) return;
    this.membershipBusy = true;
    const done = () => {
      this.membershipBusy = false;
    };
    if (voters.length >= this.o.nodes && voters.length > 1) {
      // Remove a voter (sometimes the leader itself, thesis §4.2.2).
      const victim = this.rng.next() < 0.2 ? l.id : this.pick(voters.filter((v) => v !== l.id))!;
      this.nemesisAction(`remove ${victim}`);
      this.counters.membershipChanges++;
      l.log.changeMembership({ type: 'remove', id: victim }, { timeoutMs: 3000 }).then(
        () => {
          const r = this.replicas.get(victim);
          if (r) {
            // Retire it a little later (it may still have messages to send as a leaving leader).
            this.sched.setTimer(200, () => {
              if (this.members().includes(victim)) return;
              this.cluster.retire(victim);
              this.nemesisAction(`retire ${victim}`);
            });
          }
          done();
        },
        () => done(),
      );
    } else {
      const id = this.cluster.addNode();
      this.nemesisAction(`add ${id}`);
      this.counters.membershipChanges++;
      l.log.changeMembership({ type: 'addVoter', id }, { timeoutMs: 5000 }).then(done, () => done());
    }
  }

  // ------------------------------------------------------------------ run

  async run(): Promise<SimulationResult> {
    await this.cluster.start();
    this.startClients();
    this.scheduleNemesis();
    const c = this.cluster;

    // Load phase: clients and nemesis until every operation completed.
    const loadDeadline = this.o.maxLoadMs;
    while (!this.violation) {
      if (this.clients.every((cl) => cl.done) && this.recorder.pending === 0) break;
      if (this.sched.now() > loadDeadline) {
        this.fail({ invariant: 'liveness', message: `load phase did not finish within ${loadDeadline} ms (${this.issued} ops issued, ${this.recorder.pending} pending)`, time: this.sched.now() });
        break;
      }
      if (!(await c.step())) break;
    }
    this.loadPhase = false;

    // Quiesce: heal everything, restart crashed members, wait for convergence.
    let converged = false;
    if (!this.violation) {
      this.nemesisAction('final heal');
      converged = await c.converge(this.o.convergeMs);
      if (!converged && !this.violation) {
        this.fail({ invariant: 'convergence', message: `cluster did not converge within ${this.o.convergeMs} ms after the faults stopped: ${c.describe()}`, time: this.sched.now() });
      }
    }

    // Final reads of every key through the leader, recorded like any client's.
    if (converged && !this.violation) {
      const l = this.leader();
      if (l) {
        for (const key of this.keys) {
          const id = this.recorder.invoke(this.o.clients, { f: 'get', key }, this.sched.now(), l.id);
          l.log.read({ type: 'get', key }, { timeoutMs: 2000 }).then(
            (res) => this.recorder.ok(id, { value: res.type === 'get' && res.value ? toText(res.value) : null }, this.sched.now()),
            (err: unknown) => this.recorder.fail(id, this.sched.now(), errorName(err)),
          );
        }
        await c.runUntil(() => this.recorder.pending === 0, 3000);
      }
      const acked: number[] = [];
      for (const op of this.recorder.history()) {
        if (op.status === 'ok' && op.input.f !== 'get') {
          const a = this.firstApplied.get(op.id);
          if (!a) this.fail({ invariant: 'acknowledged-write-lost', message: `write ${op.id} (${op.input.f} ${op.input.key}) was acknowledged but never applied`, time: this.sched.now() });
          else acked.push(a.index);
        }
      }
      c.finalCheck(acked);
    }

    // Settle unknown outcomes with what was applied.
    let resolved = 0;
    if (this.o.resolveUnknown) {
      for (const op of this.recorder.history()) {
        if (op.status !== 'unknown' || op.input.f === 'get') continue;
        const a = this.firstApplied.get(op.id);
        if (a) {
          this.recorder.resolve(op.id, a.event, a.time);
          resolved++;
        } else if (converged) {
          this.recorder.discard(op.id, 'never applied');
          resolved++;
        }
      }
    }
    const history = this.recorder.history();
    let linearizability: SimulationResult['linearizability'] = 'skipped';
    let linearizabilityFailure: LinearizabilityFailure<KvInput, KvOutput> | undefined;
    if (!this.violation) {
      const r = checkLinearizability(kvModel, history);
      linearizability = r.outcome;
      linearizabilityFailure = r.failure;
    }
    const count = (s: string) => history.filter((o) => o.status === s).length;
    const stats: SimulationStats = {
      virtualMs: this.sched.now(),
      events: c.events,
      invariantChecks: c.checker.checks,
      opsOk: count('ok'),
      opsFailed: count('fail'),
      opsUnknown: count('unknown'),
      unknownResolved: resolved,
      crashes: c.crashes,
      partitions: this.counters.partitions,
      messageFaultBursts: this.counters.messageFaultBursts,
      skews: this.counters.skews,
      transfers: this.counters.transfers,
      membershipChanges: this.counters.membershipChanges,
      leaderships: c.checker.leaderships,
      commitIndex: c.checker.maxCommitted,
      snapshotRestores: c.snapshotRestores,
    };
    // Stop everything still running (timers die with the scheduler).
    c.stopAll();
    return {
      seed: this.o.seed,
      protocol: this.o.protocol,
      options: this.resolved,
      ok: !this.violation && linearizability === 'ok',
      ...(this.violation ? { violation: this.violation } : {}),
      linearizability,
      ...(linearizabilityFailure ? { linearizabilityFailure } : {}),
      history,
      nemesisLog: this.nemesisLog,
      stats,
    };
  }

}

/** A copy of `o` without its `undefined` fields (so it survives a JSON round trip unchanged). */
function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function errorName(err: unknown): string {
  if (err instanceof TimeoutError) return 'TimeoutError';
  if (err instanceof SynodError) return err.name;
  return String(err);
}
