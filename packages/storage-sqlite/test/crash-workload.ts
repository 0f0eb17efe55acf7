/**
 * The deterministic workload of the crash test, shared by the child process that writes it and
 * the parent test that checks the database afterwards: the same seed yields the same sequence
 * of persist batches, so the parent can rebuild the exact state after any acknowledged batch.
 *
 * The workload looks like a Raft replica under load: batches of appended entries with commit
 * updates, term bumps with a vote, conflicting-suffix truncations, and snapshots with
 * compaction.
 */
import { createRandom, EMPTY_HARD_STATE, type Entry, EntryType, type HardState, type PersistBatch, type PersistedState, type Random, type Snapshot } from '@synod/log';

/** The parent's model of what the storage must hold. */
export interface ModelState {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** index -> entry */
  log: Map<number, Entry>;
}

/** Deterministic payload bytes for (index, term): lets the parent check content byte for byte. */
export function payload(index: number, term: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (index * 31 + term * 17 + i * 7) & 0xff;
  return b;
}

const NODES = ['n1', 'n2', 'n3', 'n-ü'];

/** Generates batch after batch and applies each to the model it keeps. */
export class Workload {
  readonly model: ModelState = { hardState: EMPTY_HARD_STATE, snapshot: null, log: new Map() };
  private readonly rng: Random;
  private lastIndex = 0;
  /** Batches generated so far. */
  count = 0;

  constructor(seed: number) {
    this.rng = createRandom(seed);
  }

  /** The next batch; also applies it to {@link model}. */
  next(): PersistBatch {
    const rng = this.rng;
    const m = this.model;
    const hs = m.hardState;
    const snapIndex = m.snapshot?.meta.index ?? 0;
    this.count++;
    const roll = rng.next();
    let batch: PersistBatch;
    if (this.count === 1) {
      this.lastIndex = 1;
      batch = { hardState: { term: 1, vote: 'n1', commit: 0 }, entries: [{ index: 1, term: 1, type: EntryType.NoOp, data: new Uint8Array(0) }] };
    } else if (roll < 0.06) {
      // A new term: vote for someone (or nobody), sometimes with the new leader's first entries.
      const term = hs.term + rng.int(1, 3);
      const vote = rng.next() < 0.2 ? null : NODES[rng.int(0, NODES.length - 1)]!;
      batch = { hardState: { term, vote, commit: hs.commit }, entries: rng.next() < 0.5 ? this.append(term, rng.int(1, 8)) : [] };
    } else if (roll < 0.14 && this.lastIndex > hs.commit + 1) {
      // A conflicting suffix above commit is replaced by entries of the current term (Raft §5.3).
      const from = rng.int(Math.max(hs.commit + 1, snapIndex + 1), this.lastIndex);
      this.lastIndex = from - 1;
      batch = { truncateFrom: from, entries: this.append(hs.term, rng.int(1, 40)), hardState: hs };
    } else if (roll < 0.19 && hs.commit > snapIndex) {
      // Snapshot at commit, compact the prefix.
      const index = rng.int(snapIndex + 1, hs.commit);
      const at = m.log.get(index);
      const snapshot: Snapshot = {
        meta: { index, term: at ? at.term : 1, config: { voters: ['n1', 'n2', 'n3'], learners: [], addresses: { n1: 'ws://127.0.0.1:1' } } },
        data: payload(index, 0xabc, rng.int(0, 4096)),
      };
      batch = { compactTo: index, snapshot };
    } else {
      // The common case: a batch of appended entries, with the commit index moving up.
      const n = rng.next() < 0.3 ? 1 : rng.int(1, 256);
      const entries = this.append(hs.term, n);
      const commit = Math.max(hs.commit, rng.int(hs.commit, this.lastIndex));
      batch = { entries, hardState: { term: hs.term, vote: hs.vote, commit } };
    }
    this.apply(batch);
    return batch;
  }

  private append(term: number, n: number): Entry[] {
    const out: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const index = ++this.lastIndex;
      const r = this.rng.next();
      const len = r < 0.05 ? 0 : r < 0.95 ? this.rng.int(1, 300) : this.rng.int(1000, 20_000);
      out.push({ index, term, type: len === 0 ? EntryType.NoOp : EntryType.Normal, data: payload(index, term, len) });
    }
    return out;
  }

  private apply(b: PersistBatch): void {
    const m = this.model;
    if (b.truncateFrom != null) for (const k of [...m.log.keys()]) if (k >= b.truncateFrom) m.log.delete(k);
    if (b.compactTo != null) for (const k of [...m.log.keys()]) if (k <= b.compactTo) m.log.delete(k);
    if (b.snapshot) m.snapshot = b.snapshot;
    for (const e of b.entries ?? []) m.log.set(e.index, e);
    if (b.hardState) m.hardState = b.hardState;
  }
}

/**
 * Compares what a storage loaded with the model; returns the first difference, or `null` if
 * they are equal (hard state, snapshot meta and bytes, every entry above the snapshot).
 */
export function compareState(actual: PersistedState, m: ModelState): string | null {
  const hs = actual.hardState;
  const ms = m.hardState;
  if (hs.term !== ms.term || hs.vote !== ms.vote || hs.commit !== ms.commit) {
    return `hardState ${JSON.stringify(hs)} != ${JSON.stringify(ms)}`;
  }
  if ((actual.snapshot === null) !== (m.snapshot === null)) return `snapshot presence ${actual.snapshot !== null} != ${m.snapshot !== null}`;
  if (actual.snapshot && m.snapshot) {
    if (JSON.stringify(actual.snapshot.meta) !== JSON.stringify(m.snapshot.meta)) return `snapshot meta ${JSON.stringify(actual.snapshot.meta)}`;
    if (!sameBytes(actual.snapshot.data, m.snapshot.data)) return 'snapshot data differs';
  }
  const snapIndex = m.snapshot?.meta.index ?? 0;
  const want = [...m.log.values()].filter((e) => e.index > snapIndex).sort((a, b) => a.index - b.index);
  if (actual.entries.length !== want.length) return `entry count ${actual.entries.length} != ${want.length}`;
  for (let i = 0; i < want.length; i++) {
    const a = actual.entries[i]!;
    const w = want[i]!;
    if (a.index !== w.index || a.term !== w.term || a.type !== w.type || !sameBytes(a.data, w.data)) {
      return `entry #${i}: got (${a.index}, ${a.term}, ${a.type}, ${a.data.length}B), want (${w.index}, ${w.term}, ${w.type}, ${w.data.length}B)`;
    }
  }
  return null;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Clones the model (the parent keeps the state after batch k and after batch k+1). */
export function cloneModel(m: ModelState): ModelState {
  return { hardState: m.hardState, snapshot: m.snapshot, log: new Map(m.log) };
}
