/**
 * A deterministic test network for Paxos cores (no runtime, no timers): the test decides which
 * message is delivered, dropped, held and delivered later, reordered, or cut off by an isolation,
 * and when a node ticks or crashes (a crash rebuilds the core from what its storage persisted).
 *
 * Every `Ready` is carried out as `ReplicatedLog` would (persist in one call, send, restore,
 * apply, advance), and after each one the cluster checks the Multi-Paxos invariants against a
 * global oracle: at most one value chosen per slot, acceptors never accept below their promise,
 * promises and watermarks never go back, applied <= committed <= last, every applied slot holds
 * the value the oracle saw chosen, and all replicas apply identical prefixes.
 */
import {
  allMembers,
  BinaryReader,
  BinaryWriter,
  type Configuration,
  createRandom,
  decodeConfiguration,
  type Entry,
  EntryType,
  type HardState,
  MemoryStorage,
  type NodeId,
  type Random,
  type Ready,
  type ReadState,
  utf8Decode,
  utf8Encode,
} from '@synod/log';
import { paxosCodec } from '../codec.js';
import type { PaxosCore } from '../core.js';
import { paxos } from '../index.js';
import type { PaxosMessage } from '../messages.js';
import { type PaxosOptions, quorumSizes } from '../options.js';

const enc = { encode: utf8Encode };
const dec = { decode: utf8Decode };

/** A value's identity for the oracle: type and bytes. */
export function valueKey(type: number, data: Uint8Array): string {
  if (type === EntryType.NoOp) return 'noop';
  if (type === EntryType.Config) return `config:${Array.from(data).join(',')}`;
  return `v:${dec.decode(data)}`;
}

/** Bytes of a test command. */
export function cmd(text: string): Uint8Array {
  return enc.encode(text);
}

export class InvariantViolation extends Error {}

export interface TestNode {
  readonly id: NodeId;
  storage: MemoryStorage;
  core: PaxosCore | null;
  readonly bootstrap: Configuration | undefined;
  /** The state machine: value keys of applied slots, index i = slot i + 1. */
  sm: string[];
  /** Read answers seen. */
  reads: ReadState[];
  /** Next persist fails (then the node crashes, as the runtime's fail-stop). */
  failNextPersist: boolean;
  /** Counters. */
  persists: number;
  incarnation: number;
  lastHard: HardState;
}

export interface ClusterOptions {
  /** Node ids created with the bootstrap configuration (default n1..n3). */
  readonly ids?: readonly NodeId[];
  /** Bootstrap configuration (default: `ids` as voters). */
  readonly bootstrap?: Configuration;
  /** Nodes created empty, without bootstrap (waiting to be added). */
  readonly joiners?: readonly NodeId[];
  readonly options?: PaxosOptions;
  readonly seed?: number;
  /** Encode and decode every delivered message with the codec (default true). */
  readonly codec?: boolean;
  /** Check the oracle (default true). */
  readonly oracle?: boolean;
}

type Pred = (m: PaxosMessage) => boolean;

export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages in flight, delivered in order unless reordered. */
  queue: PaxosMessage[] = [];
  /** Messages held back by the test. */
  held: PaxosMessage[] = [];
  readonly random: Random;
  readonly options: PaxosOptions;
  private readonly useCodec: boolean;
  private readonly useOracle: boolean;
  private readonly isolated = new Set<NodeId>();
  private readonly blocked = new Set<string>();
  private seedCounter: number;
  readonly initial: Configuration;
  /** Messages delivered / dropped, by type. */
  delivered = 0;
  droppedInFlight = 0;
  /** Every message ever sent. */
  readonly sent: PaxosMessage[] = [];
  recordSent = false;

  // --- oracle
  /** (node:round) -> owner of that node's promise at that round. */
  private readonly roundOwner = new Map<string, NodeId | null>();
  /** slot -> "round|owner|value" -> acceptors that durably accepted it. */
  private readonly acceptances = new Map<number, Map<string, Set<NodeId>>>();
  /** slot -> value key chosen. */
  readonly chosen = new Map<number, string>();
  /** slot -> value key applied anywhere. */
  readonly appliedValues = new Map<number, string>();

  constructor(o: ClusterOptions = {}) {
    const ids = o.ids ?? ['n1', 'n2', 'n3'];
    this.options = o.options ?? {};
    this.random = createRandom(o.seed ?? 1);
    this.seedCounter = (o.seed ?? 1) * 1000;
    this.useCodec = o.codec ?? true;
    this.useOracle = o.oracle ?? true;
    this.initial = o.bootstrap ?? { voters: [...ids], learners: [] };
    for (const id of ids) this.addNode(id, this.initial);
    for (const id of o.joiners ?? []) this.addNode(id, undefined);
    for (const id of ids) this.process(id);
  }

  /** Adds a node (with `bootstrap` or empty) and starts it. */
  addNode(id: NodeId, bootstrap: Configuration | undefined): TestNode {
    const n: TestNode = {
      id,
      storage: new MemoryStorage(),
      core: null,
      bootstrap,
      sm: [],
      reads: [],
      failNextPersist: false,
      persists: 0,
      incarnation: 0,
      lastHard: { term: 0, vote: null, commit: 0 },
    };
    this.nodes.set(id, n);
    this.start(n);
    return n;
  }

  private start(n: TestNode): void {
    const state = n.storage.load();
    n.core = paxos(this.options).create({
      id: n.id,
      state,
      ...(n.bootstrap ? { bootstrap: n.bootstrap } : {}),
      random: createRandom(this.seedCounter++),
    }) as PaxosCore;
    n.incarnation++;
    n.lastHard = state.hardState;
    // The runtime restored the state machine from the snapshot before building the core.
    n.sm = state.snapshot ? this.decodeSm(state.snapshot.data) : [];
    this.noteOwner(n);
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  core(id: NodeId): PaxosCore {
    const c = this.node(id).core;
    if (!c) throw new Error(`node ${id} is down`);
    return c;
  }

  isUp(id: NodeId): boolean {
    return this.node(id).core !== null;
  }

  get ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  upIds(): NodeId[] {
    return this.ids.filter((id) => this.isUp(id));
  }

  // ------------------------------------------------------------ faults

  /** Crashes a node: everything not persisted is lost; messages to it are dropped while down. */
  crash(id: NodeId): void {
    this.node(id).core = null;
  }

  /** Restarts a crashed node from its storage. */
  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.core) throw new Error(`${id} is up`);
    this.start(n);
    this.process(id);
  }

  /** Crash then restart. */
  reboot(id: NodeId): void {
    this.crash(id);
    this.restart(id);
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  heal(): void {
    this.isolated.clear();
    this.blocked.clear();
  }

  /** Drops messages from `from` to `to` (one way) until healed. */
  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  private cut(m: PaxosMessage): boolean {
    return this.isolated.has(m.from) || this.isolated.has(m.to) || this.blocked.has(`${m.from}>${m.to}`);
  }

  /** Removes matching in-flight messages. Returns how many. */
  drop(pred: Pred): number {
    const before = this.queue.length;
    this.queue = this.queue.filter((m) => !pred(m));
    return before - this.queue.length;
  }

  /** Moves matching in-flight messages aside until `release`. */
  hold(pred: Pred): PaxosMessage[] {
    const h = this.queue.filter(pred);
    this.queue = this.queue.filter((m) => !pred(m));
    this.held.push(...h);
    return h;
  }

  /** Puts held messages matching `pred` back in flight (at the end). */
  release(pred: Pred = () => true): void {
    const r = this.held.filter(pred);
    this.held = this.held.filter((m) => !pred(m));
    this.queue.push(...r);
  }

  /** Shuffles the in-flight messages (seeded). */
  reorder(): void {
    const q = this.queue;
    for (let i = q.length - 1; i > 0; i--) {
      const j = this.random.int(0, i);
      [q[i], q[j]] = [q[j]!, q[i]!];
    }
  }

  /** Duplicates every in-flight message matching `pred`. */
  duplicate(pred: Pred): void {
    this.queue.push(...this.queue.filter(pred));
  }

  // ------------------------------------------------------------ driving

  /** Carries out every pending Ready of `id`. */
  process(id: NodeId): void {
    const n = this.node(id);
    for (let guard = 0; n.core && n.core.hasReady(); guard++) {
      if (guard > 10_000) throw new Error(`${id}: hasReady() never settles`);
      const core = n.core;
      const rd = core.ready();
      const hasBatch = rd.hardState !== null || rd.compactTo !== null || rd.snapshot !== null || rd.entries.length > 0;
      if (hasBatch) {
        if (n.failNextPersist) {
          // The runtime's fail-stop: nothing persisted, nothing sent, the replica stops.
          n.failNextPersist = false;
          n.core = null;
          return;
        }
        this.checkBatch(n, rd);
        n.storage.persist({
          hardState: rd.hardState,
          truncateFrom: rd.truncateFrom,
          compactTo: rd.compactTo,
          snapshot: rd.snapshot,
          entries: rd.entries,
        });
        n.persists++;
        if (rd.hardState) n.lastHard = rd.hardState;
      }
      for (const m of rd.messages) {
        if (this.recordSent) this.sent.push(m);
        this.queue.push(m);
      }
      if (rd.snapshot && rd.snapshot.meta.index > n.sm.length) {
        n.sm = this.decodeSm(rd.snapshot.data);
        this.checkSm(n);
      }
      for (const e of rd.committed) this.apply(n, e);
      n.reads.push(...rd.reads);
      core.advance(rd);
      this.noteOwner(n);
      this.checkStatus(n);
    }
  }

  processAll(): void {
    for (const id of this.ids) this.process(id);
  }

  /** Delivers one message (through the codec) to its addressee, then carries out its Ready. */
  deliverMessage(m: PaxosMessage): void {
    const target = this.nodes.get(m.to);
    if (!target?.core || this.cut(m)) {
      this.droppedInFlight++;
      return;
    }
    let msg = m;
    if (this.useCodec) {
      const w = new BinaryWriter();
      paxosCodec.write(w, m);
      const r = new BinaryReader(w.toBytes());
      msg = paxosCodec.read(r);
      r.expectEnd();
    }
    this.delivered++;
    target.core.step(msg);
    this.noteOwner(target);
    this.process(m.to);
  }

  /** Delivers the first in-flight message matching `pred` (default: the first). Returns it. */
  deliverOne(pred: Pred = () => true): PaxosMessage | undefined {
    const i = this.queue.findIndex(pred);
    if (i < 0) return undefined;
    const [m] = this.queue.splice(i, 1);
    this.deliverMessage(m!);
    return m;
  }

  /** Delivers in-flight messages (and those they cause) until none are left or `max` delivered. */
  deliverAll(max = 100_000): number {
    let n = 0;
    while (this.queue.length > 0 && n < max) {
      this.deliverMessage(this.queue.shift()!);
      n++;
    }
    return n;
  }

  /** Delivers only messages matching `pred` until none match. */
  deliverWhere(pred: Pred, max = 100_000): number {
    let n = 0;
    while (n < max && this.deliverOne(pred)) n++;
    return n;
  }

  /** Ticks the given nodes (default every live node) once, carrying out their Readies. */
  tick(ids: readonly NodeId[] = this.upIds()): void {
    for (const id of ids) {
      const c = this.node(id).core;
      if (!c) continue;
      c.tick();
      this.process(id);
    }
  }

  /** `ticks` rounds of: tick every live node, then deliver everything in flight. */
  run(ticks: number): void {
    for (let t = 0; t < ticks; t++) {
      this.tick();
      this.deliverAll();
    }
  }

  /** Runs rounds until `cond` holds (or throws after `maxTicks`). */
  runUntil(cond: () => boolean, maxTicks = 500, what = 'condition'): void {
    for (let t = 0; t < maxTicks; t++) {
      if (cond()) return;
      this.tick();
      this.deliverAll();
    }
    if (!cond()) throw new Error(`${what} not reached in ${maxTicks} ticks`);
  }

  /** The live leader with the highest ballot, if any. */
  leader(): NodeId | null {
    let best: NodeId | null = null;
    let round = -1;
    for (const id of this.upIds()) {
      const st = this.core(id).status();
      if (st.role === 'leader' && st.term > round) {
        best = id;
        round = st.term;
      }
    }
    return best;
  }

  /** Runs until a leader exists that every live, connected member of its configuration follows. */
  waitLeader(maxTicks = 500): NodeId {
    this.runUntil(() => {
      const l = this.leader();
      if (!l) return false;
      const members = allMembers(this.core(l).status().config);
      return this.upIds().every(
        (id) => !members.includes(id) || this.isolated.has(id) || this.isolated.has(l) || id === l || this.core(id).status().leader === l,
      );
    }, maxTicks, 'a stable leader');
    return this.leader()!;
  }

  /**
   * Lets the leader-contact window of the given nodes (default all) pass, as if they had not
   * heard from a leader for `electionTicks`: they answer foreign prepares again.
   */
  expireStickiness(ids: readonly NodeId[] = this.upIds()): void {
    for (const id of ids) (this.core(id) as unknown as { leaderContactElapsed: number }).leaderContactElapsed = 1e9;
  }

  /** Makes `id` start phase 1 now (as if its election timer fired) and carries out its Ready. */
  campaign(id: NodeId): void {
    (this.core(id) as unknown as { campaign(force: null): void }).campaign(null);
    this.process(id);
  }

  /** Proposes `text` on `id` (throws what `propose` throws) and carries out the Ready. */
  propose(id: NodeId, text: string): void {
    this.core(id).propose(cmd(text));
    this.process(id);
  }

  /** Runs until every live node applied `text` (or throws). */
  waitApplied(text: string, ids: readonly NodeId[] = this.upIds(), maxTicks = 500): void {
    const key = `v:${text}`;
    this.runUntil(() => ids.every((id) => this.node(id).sm.includes(key)), maxTicks, `${text} applied on ${ids.join(',')}`);
  }

  /** Takes a snapshot on `id` at its applied index (as the runtime does at its threshold). */
  compact(id: NodeId, index?: number): void {
    const n = this.node(id);
    const at = index ?? n.sm.length;
    this.core(id).compact(at, enc.encode(JSON.stringify(n.sm.slice(0, at))));
    this.process(id);
  }

  /** Value keys applied by `id`, slot order. */
  applied(id: NodeId): string[] {
    return this.node(id).sm;
  }

  /** Applied values that are client commands (not no-ops or configurations), in order. */
  commands(id: NodeId): string[] {
    return this.node(id).sm.filter((k) => k.startsWith('v:')).map((k) => k.slice(2));
  }

  // ------------------------------------------------------------ invariants

  private decodeSm(data: Uint8Array): string[] {
    return JSON.parse(dec.decode(data)) as string[];
  }

  private apply(n: TestNode, e: Entry): void {
    if (e.index !== n.sm.length + 1) {
      throw new InvariantViolation(`${n.id}: committed slot ${e.index} not contiguous after applied ${n.sm.length}`);
    }
    const key = valueKey(e.type, e.data);
    n.sm.push(key);
    const prev = this.appliedValues.get(e.index);
    if (prev !== undefined && prev !== key) {
      throw new InvariantViolation(`slot ${e.index}: ${n.id} applied ${key} but another replica applied ${prev}`);
    }
    this.appliedValues.set(e.index, key);
    if (this.useOracle && e.index > 1) {
      const c = this.chosen.get(e.index);
      if (c === undefined) throw new InvariantViolation(`${n.id} applied slot ${e.index} (${key}) that no phase-2 quorum accepted`);
      if (c !== key) throw new InvariantViolation(`${n.id} applied ${key} at slot ${e.index}, chosen was ${c}`);
    }
  }

  private checkSm(n: TestNode): void {
    n.sm.forEach((key, i) => {
      const prev = this.appliedValues.get(i + 1);
      if (prev !== undefined && prev !== key) throw new InvariantViolation(`${n.id}: snapshot slot ${i + 1} = ${key}, applied elsewhere ${prev}`);
      this.appliedValues.set(i + 1, key);
    });
  }

  private noteOwner(n: TestNode): void {
    if (!n.core) return;
    const p = n.core.promise;
    this.roundOwner.set(`${n.id}:${p.round}`, p.owner);
  }

  private checkBatch(n: TestNode, rd: Ready<PaxosMessage>): void {
    const before = n.lastHard;
    if (rd.hardState) {
      if (rd.hardState.term < before.term) throw new InvariantViolation(`${n.id}: promise went back ${before.term} -> ${rd.hardState.term}`);
      if (rd.hardState.commit < before.commit) throw new InvariantViolation(`${n.id}: commit went back ${before.commit} -> ${rd.hardState.commit}`);
    }
    for (const e of rd.entries) {
      // An acceptor never accepts below its (durable) promise.
      if (e.index > 1 && e.term < before.term) {
        throw new InvariantViolation(`${n.id}: accepted slot ${e.index} at round ${e.term} below its promise ${before.term}`);
      }
      if (!this.useOracle || e.index === 1) continue;
      const owner = this.roundOwner.get(`${n.id}:${e.term}`) ?? '?';
      const k = `${e.term}|${owner}|${valueKey(e.type, e.data)}`;
      let bySlot = this.acceptances.get(e.index);
      if (!bySlot) this.acceptances.set(e.index, (bySlot = new Map()));
      let set = bySlot.get(k);
      if (!set) bySlot.set(k, (set = new Set()));
      set.add(n.id);
      const cfg = this.chosenConfigAt(e.index);
      const voters = cfg.voters;
      const q2 = quorumSizes(voters.length, this.options.phase1Quorum, this.options.phase2Quorum).q2;
      let count = 0;
      for (const v of set) if (voters.includes(v)) count++;
      if (count >= q2) {
        const value = valueKey(e.type, e.data);
        const prev = this.chosen.get(e.index);
        if (prev !== undefined && prev !== value) {
          throw new InvariantViolation(`slot ${e.index}: two values chosen, ${prev} and ${value}`);
        }
        this.chosen.set(e.index, value);
      }
    }
  }

  /** The configuration governing `slot` according to the values chosen so far (stop-sign rule). */
  chosenConfigAt(slot: number): Configuration {
    let cfg = this.initial;
    let at = 0;
    for (const [s, key] of this.chosen) {
      if (s < slot && s > at && key.startsWith('config:')) {
        cfg = decodeConfiguration(new Uint8Array(key.slice(7).split(',').map(Number)));
        at = s;
      }
    }
    return cfg;
  }

  private checkStatus(n: TestNode): void {
    const st = n.core!.status();
    if (!(st.appliedIndex <= st.commitIndex && st.commitIndex <= Math.max(st.lastIndex, st.snapshotIndex))) {
      throw new InvariantViolation(`${n.id}: applied ${st.appliedIndex} <= commit ${st.commitIndex} <= last ${st.lastIndex} broken`);
    }
    if (st.snapshotIndex > st.appliedIndex) throw new InvariantViolation(`${n.id}: snapshot ${st.snapshotIndex} above applied ${st.appliedIndex}`);
    if (st.appliedIndex !== n.sm.length) throw new InvariantViolation(`${n.id}: core applied ${st.appliedIndex}, state machine ${n.sm.length}`);
  }

  /** Checks that every pair of replicas applied identical prefixes (also checked on the fly). */
  checkPrefixes(): void {
    const ids = this.ids;
    for (const a of ids) {
      for (const b of ids) {
        const x = this.node(a).sm;
        const y = this.node(b).sm;
        const n = Math.min(x.length, y.length);
        for (let i = 0; i < n; i++) {
          if (x[i] !== y[i]) throw new InvariantViolation(`${a} and ${b} differ at slot ${i + 1}: ${x[i]} vs ${y[i]}`);
        }
      }
    }
  }
}

/** Messages of type `type` (optionally from/to). */
export function isType(type: number, from?: NodeId, to?: NodeId): Pred {
  return (m) => m.type === type && (from === undefined || m.from === from) && (to === undefined || m.to === to);
}
