/**
 * A deterministic test network for Raft cores (no runtime): each node is a `RaftCore` over a
 * `MemoryStorage`, driven exactly as `ReplicatedLog` drives it (persist, send, restore, apply,
 * reads, advance). Messages wait in one FIFO queue; tests deliver, drop, hold and release,
 * reorder, isolate and partition, and crash/restart nodes from what they persisted.
 */
import {
  BinaryReader,
  BinaryWriter,
  type Configuration,
  createRandom,
  encodeConfiguration,
  type Entry,
  EntryType,
  MemoryStorage,
  type PersistBatch,
  type Random,
  type Ready,
  type ReadState,
  utf8Decode,
  utf8Encode,
} from '@synod/log';
import { raftCodec } from '../codec.js';
import { type RaftMessage, RaftMessageType } from '../messages.js';
import type { RaftOptions } from '../options.js';
import { RaftCore } from '../raft.js';
import type { RaftLog } from '../raft-log.js';
import type { Progress } from '../progress.js';
import { raft } from '../index.js';

const enc = { encode: utf8Encode };
const dec = { decode: utf8Decode };

/** Encodes a test command. */
export function cmd(s: string): Uint8Array {
  return enc.encode(s);
}

/** The leader's progress record of `peer`, for white-box assertions in tests. */
export function progressOf(core: RaftCore, peer: string): Progress | undefined {
  return (core as unknown as { progress: Map<string, Progress> }).progress.get(peer);
}

/** The log of a core, for white-box assertions in tests. */
export function logOf(core: RaftCore): RaftLog {
  return (core as unknown as { log: RaftLog }).log;
}

/** One simulated server. */
export interface TestNode {
  readonly id: string;
  core: RaftCore;
  storage: MemoryStorage;
  alive: boolean;
  /** The state machine: applied Normal commands as strings, by index. */
  applied: { index: number; term: number; data: string }[];
  /** Every applied index (Normal, NoOp, Config), to check contiguity. */
  appliedIndex: number;
  /** Read answers received. */
  reads: ReadState[];
  /** Number of Ready batches that persisted something. */
  persists: number;
  /** Hook run on every persisted batch (for durability assertions). */
  onPersist?: (b: PersistBatch, messages: readonly RaftMessage[]) => void;
}

/** Options of {@link TestNetwork}. */
export interface TestNetworkOptions {
  readonly options?: RaftOptions;
  readonly seed?: number;
  /** Round-trip every message through {@link raftCodec} (default true). */
  readonly codec?: boolean;
  /** Voters of the bootstrap configuration (default: all ids). */
  readonly voters?: readonly string[];
  /** Ids that start without bootstrap (to be added later). */
  readonly joiners?: readonly string[];
  /**
   * Model asynchronous storage: a node's Ready stays in flight (not persisted, nothing sent)
   * until the test calls `completeIo`; steps and ticks keep arriving meanwhile; a crash loses it.
   */
  readonly asyncStorage?: boolean;
  /** Per-node option overrides. */
  readonly perNode?: Readonly<Record<string, RaftOptions>>;
}

type Predicate = (m: RaftMessage) => boolean;

/** The simulated cluster. */
export class TestNetwork {
  readonly nodes = new Map<string, TestNode>();
  queue: RaftMessage[] = [];
  held: RaftMessage[] = [];
  readonly random: Random;
  private readonly rules: Predicate[] = [];
  private readonly cut = new Set<string>();
  private readonly useCodec: boolean;
  private readonly opts: TestNetworkOptions;
  private readonly bootstrap: Configuration;
  private readonly joiners: Set<string>;
  /** Messages delivered so far, by type. */
  readonly delivered = new Map<number, number>();
  private readonly asyncStorage: boolean;
  private readonly inFlight = new Map<string, Ready<RaftMessage>>();
  private seedCounter = 0;
  private readonly seed: number;

  constructor(ids: readonly string[], opts: TestNetworkOptions = {}) {
    this.opts = opts;
    this.seed = opts.seed ?? 1;
    this.random = createRandom(this.seed * 7919 + 17);
    this.useCodec = opts.codec ?? true;
    this.asyncStorage = opts.asyncStorage ?? false;
    this.joiners = new Set(opts.joiners ?? []);
    this.bootstrap = { voters: [...(opts.voters ?? ids.filter((i) => !this.joiners.has(i)))], learners: [] };
    for (const id of ids) this.addNode(id);
  }

  /** Adds a node with fresh storage (bootstrapped unless it is a joiner). */
  addNode(id: string, joiner = this.joiners.has(id)): TestNode {
    const storage = new MemoryStorage();
    const node: TestNode = { id, core: null as unknown as RaftCore, storage, alive: true, applied: [], appliedIndex: 0, reads: [], persists: 0 };
    this.nodes.set(id, node);
    node.core = this.build(node, joiner ? undefined : this.bootstrap);
    return node;
  }

  private build(node: TestNode, bootstrap?: Configuration): RaftCore {
    const options = { ...(this.opts.options ?? {}), ...(this.opts.perNode?.[node.id] ?? {}) };
    const proto = raft(options);
    const state = node.storage.load();
    // Restore the state machine from the persisted snapshot, as the runtime does.
    node.applied = [];
    node.appliedIndex = 0;
    if (state.snapshot) this.restore(node, state.snapshot.data, state.snapshot.meta.index);
    return proto.create({
      id: node.id,
      state,
      ...(bootstrap ? { bootstrap } : {}),
      random: createRandom(this.seed * 1000 + this.seedCounter++),
    }) as RaftCore;
  }

  /**
   * Replaces a node's persisted state by a log with the given entry terms (index 1 is the
   * bootstrap configuration and must have term 1; the rest are Normal entries named
   * `"<index>@<term>"`), current term `term` and commit `commit`, then restarts it.
   */
  setLog(id: string, terms: readonly number[], term = terms[terms.length - 1] ?? 1, commit = 1): void {
    const node = this.node(id);
    if (terms[0] !== 1) throw new Error('index 1 must be the bootstrap configuration (term 1)');
    const storage = new MemoryStorage();
    const entries: Entry[] = terms.map((t, i) =>
      i === 0
        ? { index: 1, term: 1, type: EntryType.Config, data: encodeConfiguration({ voters: [...this.bootstrap.voters].sort(), learners: [] }) }
        : { index: i + 1, term: t, type: EntryType.Normal, data: cmd(`${i + 1}@${t}`) },
    );
    storage.persist({ entries, hardState: { term, vote: null, commit } });
    (node as { storage: MemoryStorage }).storage = storage;
    node.core = this.build(node, this.bootstrap);
    node.alive = true;
  }

  /** Terms of a node's in-memory log entries, from its first held index. */
  terms(id: string): number[] {
    return logOf(this.core(id)).entries.map((e) => e.term);
  }

  node(id: string): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  core(id: string): RaftCore {
    return this.node(id).core;
  }

  /** The state machine image used as snapshot data. */
  snapshotData(node: TestNode): Uint8Array {
    const w = new BinaryWriter();
    w.uvarint(node.appliedIndex).uvarint(node.applied.length);
    for (const a of node.applied) w.uvarint(a.index).uvarint(a.term).string(a.data);
    return w.toBytes();
  }

  private restore(node: TestNode, data: Uint8Array, index: number): void {
    const r = new BinaryReader(data);
    const ai = r.uvarint();
    const n = r.uvarint();
    const applied: TestNode['applied'] = [];
    for (let i = 0; i < n; i++) applied.push({ index: r.uvarint(), term: r.uvarint(), data: r.string() });
    node.applied = applied;
    node.appliedIndex = Math.max(ai, index);
  }

  /**
   * Carries out every pending Ready of one node, like ReplicatedLog.drain. In `asyncStorage`
   * mode it only takes the next Ready and leaves it in flight until {@link completeIo}.
   */
  drain(id: string): void {
    const node = this.node(id);
    if (!node.alive) return;
    if (this.asyncStorage) {
      if (!this.inFlight.has(id) && node.core.hasReady()) {
        const rd = node.core.ready();
        // Like the runtime: a leader's messages may leave before its write completes (§10.2.1),
        // so a crash before completeIo() loses the leader's copy but not the followers'.
        if (rd.sendBeforePersist) {
          for (const m of rd.messages) this.queue.push(this.useCodec ? roundTrip(m) : m);
          this.sentEarly.add(rd);
        }
        this.inFlight.set(id, rd);
      }
      return;
    }
    let guard = 0;
    while (node.core.hasReady()) {
      if (++guard > 10_000) throw new Error(`node ${id}: hasReady() never settles`);
      this.carryOut(node, node.core.ready());
    }
  }

  /** asyncStorage mode: finishes the Ready in flight on `id` (persist, send, apply, advance). */
  completeIo(id: string): boolean {
    const rd = this.inFlight.get(id);
    const node = this.node(id);
    if (!rd || !node.alive) return false;
    this.inFlight.delete(id);
    this.carryOut(node, rd);
    this.drain(id);
    return true;
  }

  /** Whether a Ready is in flight on `id` (asyncStorage mode). */
  ioPending(id: string): boolean {
    return this.inFlight.has(id);
  }

  /** Readies whose messages already left before their persist (asyncStorage mode). */
  private readonly sentEarly = new WeakSet<Ready<RaftMessage>>();

  private carryOut(node: TestNode, rd: Ready<RaftMessage>): void {
    const batch: PersistBatch = { hardState: rd.hardState, truncateFrom: rd.truncateFrom, compactTo: rd.compactTo, snapshot: rd.snapshot, entries: rd.entries };
    if (rd.hardState || rd.truncateFrom !== null || rd.compactTo !== null || rd.snapshot || rd.entries.length > 0) {
      node.storage.persist(batch);
      node.persists++;
      node.onPersist?.(batch, rd.messages);
    }
    if (!this.sentEarly.delete(rd)) for (const m of rd.messages) this.queue.push(this.useCodec ? roundTrip(m) : m);
    if (rd.snapshot && rd.snapshot.meta.index > node.appliedIndex) this.restore(node, rd.snapshot.data, rd.snapshot.meta.index);
    for (const e of rd.committed) this.apply(node, e);
    for (const r of rd.reads) node.reads.push(r);
    node.core.advance(rd);
  }

  private apply(node: TestNode, e: Entry): void {
    if (e.index !== node.appliedIndex + 1) {
      throw new Error(`node ${node.id}: applied ${e.index} after ${node.appliedIndex} (not contiguous)`);
    }
    node.appliedIndex = e.index;
    if (e.type === EntryType.Normal) node.applied.push({ index: e.index, term: e.term, data: dec.decode(e.data) });
  }

  /** Drains every live node. */
  drainAll(): void {
    for (const id of this.nodes.keys()) this.drain(id);
  }

  /** Whether a message may travel right now (not cut, not dropped by a rule). */
  private passes(m: RaftMessage): boolean {
    if (this.cut.has(`${m.from}>${m.to}`)) return false;
    for (const r of this.rules) if (r(m)) return false;
    return true;
  }

  /** Delivers one message to its addressee (if alive), then drains the addressee. */
  deliver(m: RaftMessage): void {
    const to = this.nodes.get(m.to);
    if (!to || !to.alive) return;
    this.delivered.set(m.type, (this.delivered.get(m.type) ?? 0) + 1);
    to.core.step(m);
    this.drain(m.to);
  }

  /**
   * Delivers queued messages until none is left (messages produced along the way too).
   * Returns the number delivered. `limit` bounds the work (to catch livelocks).
   */
  stabilize(limit = 100_000): number {
    this.drainAll();
    let n = 0;
    for (;;) {
      if (this.asyncStorage) {
        for (let guard = 0; this.inFlight.size > 0; guard++) {
          if (guard > 10_000) throw new Error('stabilize: I/O never settles');
          for (const id of [...this.inFlight.keys()]) this.completeIo(id);
        }
      }
      if (this.queue.length === 0) break;
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        if (!this.passes(m)) continue;
        this.deliver(m);
        if (++n > limit) throw new Error('stabilize: message limit exceeded');
      }
      this.drainAll();
    }
    return n;
  }

  /** Delivers only the messages currently queued (one hop), in order. */
  deliverQueued(filter?: Predicate): void {
    this.drainAll();
    const batch = this.queue;
    this.queue = [];
    for (const m of batch) {
      if (filter && !filter(m)) {
        this.queue.push(m);
        continue;
      }
      if (this.passes(m)) this.deliver(m);
    }
  }

  /** Takes queued messages matching `pred` out of the queue and keeps them aside. */
  hold(pred: Predicate): RaftMessage[] {
    this.drainAll();
    const taken = this.queue.filter(pred);
    this.queue = this.queue.filter((m) => !pred(m));
    this.held.push(...taken);
    return taken;
  }

  /** Delivers held messages matching `pred` (default all) now. */
  release(pred: Predicate = () => true): void {
    const go = this.held.filter(pred);
    this.held = this.held.filter((m) => !pred(m));
    for (const m of go) if (this.passes(m)) this.deliver(m);
  }

  /** Drops queued messages matching `pred`. */
  dropQueued(pred: Predicate = () => true): number {
    this.drainAll();
    const before = this.queue.length;
    this.queue = this.queue.filter((m) => !pred(m));
    return before - this.queue.length;
  }

  /** Shuffles the queue (reordering) with the network's seeded PRNG. */
  shuffle(): void {
    this.drainAll();
    const q = this.queue;
    for (let i = q.length - 1; i > 0; i--) {
      const j = this.random.int(0, i);
      [q[i], q[j]] = [q[j]!, q[i]!];
    }
  }

  /** Adds a drop rule; returns a function removing it. */
  addRule(pred: Predicate): () => void {
    this.rules.push(pred);
    return () => {
      const i = this.rules.indexOf(pred);
      if (i >= 0) this.rules.splice(i, 1);
    };
  }

  /** Cuts every link to and from `id`. */
  isolate(id: string): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  /** Cuts links between the groups (each group stays connected inside). */
  partition(...groups: string[][]): void {
    for (const g of groups) {
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) for (const b of h) this.cut.add(`${a}>${b}`);
      }
    }
  }

  /** Cuts one direction only. */
  cutLink(from: string, to: string): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Restores every link and removes every rule. */
  heal(): void {
    this.cut.clear();
    this.rules.length = 0;
  }

  /** Crashes a node: its volatile state is lost; messages to it are dropped while down. */
  crash(id: string): void {
    const n = this.node(id);
    n.alive = false;
    this.inFlight.delete(id); // a Ready not yet persisted is lost
  }

  /** Restarts a crashed node from what its storage holds. */
  restart(id: string): void {
    const n = this.node(id);
    n.core = this.build(n, this.joiners.has(id) ? undefined : this.bootstrap);
    n.alive = true;
    this.drain(id);
  }

  /** Ticks the given nodes (default all live ones) `n` times, stabilizing after each tick. */
  tick(n = 1, ids?: readonly string[], stabilize = true): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids ?? [...this.nodes.keys()]) {
        const node = this.node(id);
        if (node.alive) node.core.tick();
      }
      if (stabilize) this.stabilize();
      else this.drainAll();
    }
  }

  /** Ticks until `cond()` holds (stabilizing in between); throws after `max` ticks. */
  tickUntil(cond: () => boolean, max = 500): number {
    for (let i = 0; i < max; i++) {
      if (cond()) return i;
      this.tick(1);
    }
    if (cond()) return max;
    throw new Error('tickUntil: condition not reached');
  }

  /** Live leaders (role leader), by id. */
  leaders(): string[] {
    const out: string[] = [];
    for (const n of this.nodes.values()) if (n.alive && n.core.status().role === 'leader') out.push(n.id);
    return out;
  }

  /** The leader with the highest term among live nodes, or null. */
  leader(): string | null {
    let best: string | null = null;
    let bt = -1;
    for (const id of this.leaders()) {
      const t = this.core(id).status().term;
      if (t > bt) {
        bt = t;
        best = id;
      }
    }
    return best;
  }

  /** Ticks until some node leads; returns it. */
  elect(max = 500): string {
    this.tickUntil(() => this.leader() !== null, max);
    return this.leader()!;
  }

  /** Status of a node's core. */
  status(id: string) {
    return this.core(id).status();
  }

  /** Makes `id` campaign now (as if its election timeout fired), then stabilizes. */
  campaign(id: string): void {
    const core = this.core(id);
    const before = core.status().term;
    let guard = 0;
    while (core.status().role === 'follower' || core.status().role === 'learner') {
      core.tick();
      if (++guard > 1000) throw new Error(`${id} never campaigned`);
      if (core.status().term !== before || core.status().role !== 'follower') break;
    }
    this.stabilize();
  }

  /** Proposes on `id` and stabilizes. */
  propose(id: string, data: string): void {
    this.core(id).propose(cmd(data));
    this.stabilize();
  }

  /** Applied commands (strings) of a node. */
  appliedData(id: string): string[] {
    return this.node(id).applied.map((a) => a.data);
  }
}

/** Encodes and decodes a message (what a byte transport does). */
export function roundTrip(m: RaftMessage): RaftMessage {
  const w = new BinaryWriter();
  raftCodec.write(w, m);
  return raftCodec.read(new BinaryReader(w.finish().slice()));
}

export { RaftMessageType };
