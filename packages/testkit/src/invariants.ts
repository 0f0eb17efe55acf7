/**
 * Protocol invariants checked by the simulator after every simulated event, from what replicas
 * expose publicly: `status()`, the persisted storage (every batch is observed) and the applied
 * commands (through a recording state machine).
 *
 * Raft (Raft paper §5.2–§5.4, Figure 3): Election Safety (≤ 1 leader per term), Leader
 * Append-Only, Log Matching, Leader Completeness, State Machine Safety, commit only advances.
 * Paxos: at most one value chosen per slot, identical applied prefixes. Both: applied ≤
 * committed ≤ last, snapshot ≤ applied, term never decreases, nothing acknowledged lost.
 */
import type { CoreStatus, Entry, NodeId, PersistBatch } from '@synod/log';

/** A broken invariant. */
export interface InvariantViolation {
  /** Short name, e.g. `election-safety`, `state-machine-safety`. */
  readonly invariant: string;
  /** What was seen. */
  readonly message: string;
  /** Virtual time (ms) at which it was detected. */
  readonly time: number;
  /** The replica involved, if one. */
  readonly node?: NodeId;
}

/** Which protocol's invariants to check. `generic` checks only the protocol-independent ones. */
export type InvariantProfile = 'raft' | 'paxos' | 'generic';

/** What the checker needs to see of one replica. */
export interface ReplicaView {
  readonly id: NodeId;
  /** Whether the replica is running now. */
  readonly up: boolean;
  /** Its status (from `ReplicatedLog.status()`), or null if it never started. */
  status(): CoreStatus | null;
  /** Persisted log, index → entry. */
  readonly log: ReadonlyMap<number, Entry>;
  /** Index of its persisted snapshot (0 if none). */
  readonly snapshotIndex: number;
}

/** FNV-1a of bytes (32-bit), to compare entries cheaply. */
export function hashBytes(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

interface EntryId {
  readonly term: number;
  readonly type: number;
  readonly hash: number;
  readonly length: number;
}

const idOf = (e: Entry): EntryId => ({ term: e.term, type: e.type, hash: hashBytes(e.data), length: e.data.length });
const sameContent = (a: EntryId, b: EntryId) => a.type === b.type && a.hash === b.hash && a.length === b.length;

interface NodeTrack {
  commit: number;
  term: number;
  applied: number;
  role: string;
  roleTerm: number;
}

/** Collects violations; the simulator stops a run at the first one. */
export class InvariantChecker {
  /** term → leader seen in that term (Election Safety). */
  private readonly leaders = new Map<number, NodeId>();
  /** index → committed entry (State Machine Safety / one value chosen per slot). */
  private readonly committed = new Map<number, EntryId>();
  /** `${index}:${term}` → entry content (Log Matching, Raft). */
  private readonly byIndexTerm = new Map<string, EntryId>();
  /** index → hash of the command applied there (identical applied prefixes). */
  private readonly appliedAt = new Map<number, number>();
  private readonly track = new Map<NodeId, NodeTrack>();
  private readonly recordedUpTo = new Map<NodeId, number>();
  /** Number of (term, leader) pairs seen. */
  get leaderships(): number {
    return this.leaders.size;
  }

  /** Highest commit index any replica reported. */
  maxCommitted = 0;
  /** Number of checks run (events checked). */
  checks = 0;

  /** node → the newest hard state it persisted (kept across its crashes). */
  private readonly durable = new Map<NodeId, { term: number; vote: NodeId | null }>();

  /**
   * @param profile which protocol's invariants to check.
   * @param durableState also check that persisted term/vote never go back across crashes
   *   (default true).
   */
  constructor(
    readonly profile: InvariantProfile,
    readonly durableState = true,
  ) {}

  /**
   * Called with every persisted batch of `node`, with a getter of its status at that moment
   * (before the runtime sends the messages of that Ready) and its log before the batch. Checks Leader Append-Only and Log Matching's
   * "one entry per (index, term)" (Raft).
   */
  onPersist(node: NodeId, batch: PersistBatch, statusOf: () => CoreStatus | null, before: ReadonlyMap<number, Entry>, time: number): InvariantViolation | null {
    const hs = batch.hardState;
    if (this.profile === 'paxos') {
      // An acceptor never accepts below its promise: entries it persists carry a ballot no lower
      // than the promise it had made durable before this batch.
      const promised = this.durable.get(node)?.term ?? 0;
      for (const e of batch.entries ?? []) {
        if (e.term < promised) {
          return { invariant: 'accept-below-promise', message: `${node} persisted slot ${e.index} at ballot ${e.term} after promising ${promised}`, time, node };
        }
      }
    }
    if (hs && this.durableState) {
      // Raft Figure 2: currentTerm and votedFor are persistent; a Paxos promise never goes back.
      const prev = this.durable.get(node);
      if (prev && hs.term < prev.term) {
        return { invariant: 'term-durability', message: `${node} persisted term ${hs.term} after having persisted term ${prev.term}`, time, node };
      }
      if (this.profile === 'raft' && prev && hs.term === prev.term && prev.vote !== null && hs.vote !== prev.vote) {
        return { invariant: 'vote-durability', message: `${node} persisted vote ${hs.vote} in term ${hs.term} after having voted for ${prev.vote}`, time, node };
      }
      this.durable.set(node, { term: hs.term, vote: hs.vote });
    }
    if (this.profile !== 'raft') return null;
    const status = batch.truncateFrom != null || (batch.entries?.length ?? 0) > 0 ? statusOf() : null;
    if (status?.role === 'leader') {
      if (batch.truncateFrom != null) {
        for (const k of before.keys()) {
          if (k >= batch.truncateFrom) {
            return { invariant: 'leader-append-only', message: `leader ${node} (term ${status.term}) truncated its log from ${batch.truncateFrom}`, time, node };
          }
        }
      }
      for (const e of batch.entries ?? []) {
        const old = before.get(e.index);
        if (old && !(old.term === e.term && sameContent(idOf(old), idOf(e)))) {
          return { invariant: 'leader-append-only', message: `leader ${node} (term ${status.term}) overwrote entry ${e.index} (term ${old.term} → ${e.term})`, time, node };
        }
      }
    }
    for (const e of batch.entries ?? []) {
      const key = `${e.index}:${e.term}`;
      const id = idOf(e);
      const seen = this.byIndexTerm.get(key);
      if (!seen) this.byIndexTerm.set(key, id);
      else if (!sameContent(seen, id)) {
        return { invariant: 'log-matching', message: `two different entries at index ${e.index} with term ${e.term} (persisted by ${node})`, time, node };
      }
    }
    return null;
  }

  /**
   * Called after every persisted batch of `node` with its persisted log, snapshot index and
   * commit index: entries at or below the persisted commit are committed, and no index may ever
   * hold two different committed entries (Raft State Machine Safety; Paxos: one value chosen
   * per slot). Entries compacted away or never stored (Paxos gaps) are skipped.
   */
  onPersisted(node: NodeId, log: ReadonlyMap<number, Entry>, snapshotIndex: number, commit: number, time: number): InvariantViolation | null {
    const from = Math.max(this.recordedUpTo.get(node) ?? 0, snapshotIndex);
    if (commit <= from) return null;
    for (let i = from + 1; i <= commit; i++) {
      const e = log.get(i);
      if (!e) continue;
      const id = idOf(e);
      const seen = this.committed.get(i);
      if (!seen) this.committed.set(i, id);
      else if (!sameContent(seen, id) || (this.profile === 'raft' && seen.term !== id.term)) {
        return {
          invariant: this.profile === 'paxos' ? 'one-value-per-slot' : 'state-machine-safety',
          message: `${node} committed a different entry at index ${i} (term ${id.term}) than was committed before (term ${seen.term})`,
          time,
          node,
        };
      }
    }
    this.recordedUpTo.set(node, commit);
    return null;
  }

  /** Called for every command a replica's state machine applies. Checks identical applied prefixes. */
  onApply(node: NodeId, index: number, command: Uint8Array, time: number): InvariantViolation | null {
    const h = hashBytes(command);
    const seen = this.appliedAt.get(index);
    if (seen === undefined) this.appliedAt.set(index, h);
    else if (seen !== h) {
      return { invariant: 'state-machine-safety', message: `${node} applied a different command at index ${index} than another replica`, time, node };
    }
    return null;
  }

  /** Called when a replica restarts: its in-memory trackers start over (its commit from storage). */
  onRestart(node: NodeId): void {
    this.track.delete(node);
  }

  /** Checks every replica after one simulated event. */
  afterEvent(replicas: readonly ReplicaView[], time: number): InvariantViolation | null {
    this.checks++;
    for (const r of replicas) {
      if (!r.up) continue;
      const s = r.status();
      if (!s) continue;
      const v = this.checkReplica(r, s, time);
      if (v) return v;
    }
    return null;
  }

  private checkReplica(r: ReplicaView, s: CoreStatus, time: number): InvariantViolation | null {
    const node = r.id;
    if (!(s.appliedIndex <= s.commitIndex && s.commitIndex <= s.lastIndex)) {
      return { invariant: 'applied<=committed<=last', message: `${node}: applied ${s.appliedIndex}, committed ${s.commitIndex}, last ${s.lastIndex}`, time, node };
    }
    // The persisted snapshot (a core may report an incoming one before the runtime persisted
    // and restored it, between two events; the runtime restores it right after persisting).
    if (r.snapshotIndex > s.appliedIndex) {
      return { invariant: 'snapshot<=applied', message: `${node}: persisted snapshot ${r.snapshotIndex} > applied ${s.appliedIndex}`, time, node };
    }
    let t = this.track.get(node);
    if (!t) {
      t = { commit: s.commitIndex, term: s.term, applied: s.appliedIndex, role: '', roleTerm: -1 };
      this.track.set(node, t);
    }
    if (s.commitIndex < t.commit) {
      return { invariant: 'commit-only-advances', message: `${node}: commitIndex went back from ${t.commit} to ${s.commitIndex}`, time, node };
    }
    const d = this.durableState ? this.durable.get(node) : undefined;
    if (d && s.term < d.term) {
      return { invariant: 'term-durability', message: `${node}: term ${s.term} is below the term ${d.term} it persisted before`, time, node };
    }
    if (s.term < t.term) {
      return { invariant: 'term-only-advances', message: `${node}: term went back from ${t.term} to ${s.term}`, time, node };
    }
    if (s.appliedIndex < t.applied) {
      return { invariant: 'applied-only-advances', message: `${node}: applied went back from ${t.applied} to ${s.appliedIndex}`, time, node };
    }
    if (s.role === 'leader' && this.profile !== 'generic') {
      const other = this.leaders.get(s.term);
      if (other === undefined) this.leaders.set(s.term, node);
      else if (other !== node) {
        return { invariant: 'election-safety', message: `two leaders in term ${s.term}: ${other} and ${node}`, time, node };
      }
      if (this.profile === 'raft' && (t.role !== 'leader' || t.roleTerm !== s.term)) {
        const v = this.leaderCompleteness(r, s, time);
        if (v) return v;
      }
    }
    if (s.commitIndex > this.maxCommitted) this.maxCommitted = s.commitIndex;
    t.commit = s.commitIndex;
    t.term = s.term;
    t.applied = s.appliedIndex;
    t.role = s.role;
    t.roleTerm = s.term;
    return null;
  }

  /** Raft §5.4.1: a leader's log holds every entry committed in earlier terms. */
  private leaderCompleteness(r: ReplicaView, s: CoreStatus, time: number): InvariantViolation | null {
    for (const [i, id] of this.committed) {
      if (i <= r.snapshotIndex || id.term >= s.term) continue;
      const e = r.log.get(i);
      if (!e || e.term !== id.term || !sameContent(idOf(e), id)) {
        return { invariant: 'leader-completeness', message: `leader ${r.id} of term ${s.term} lacks committed entry ${i} (term ${id.term})`, time, node: r.id };
      }
    }
    return null;
  }

  /**
   * End-of-run check over converged replicas: identical logs up to the smallest commit index
   * (Raft compares terms too; Paxos ballots of a slot may differ between replicas), and every
   * index in `acknowledged` (indexes of writes acknowledged to clients) at or below that commit.
   */
  finalCheck(replicas: readonly ReplicaView[], acknowledged: Iterable<number>, time: number): InvariantViolation | null {
    const up = replicas.filter((r) => r.up && r.status());
    if (up.length === 0) return null;
    const commit = Math.min(...up.map((r) => r.status()!.commitIndex));
    for (const a of up) {
      for (const b of up) {
        if (a.id >= b.id) continue;
        for (let i = 1; i <= commit; i++) {
          const x = a.log.get(i);
          const y = b.log.get(i);
          if (!x || !y) continue;
          if (!sameContent(idOf(x), idOf(y)) || (this.profile === 'raft' && x.term !== y.term)) {
            return { invariant: 'log-matching', message: `${a.id} and ${b.id} differ at committed index ${i}`, time };
          }
        }
      }
    }
    for (const i of acknowledged) {
      if (i > commit) return { invariant: 'acknowledged-write-lost', message: `write acknowledged at index ${i} is above the final commit index ${commit}`, time };
    }
    return null;
  }
}
