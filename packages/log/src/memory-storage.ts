/**
 * In-memory {@link Storage}: synchronous, atomic by construction (a batch is applied in one
 * synchronous call), durable only for the life of the object. Tests and the simulator model a
 * crash by dropping the replica and building a new one over the same `MemoryStorage`: what
 * was persisted stays, everything else is lost.
 */
import { InvalidArgumentError } from './errors.js';
import type { Storage } from './storage.js';
import { EMPTY_HARD_STATE, type Entry, type HardState, type PersistBatch, type PersistedState, type Snapshot } from './types.js';

/** Largest gap (in indexes) an upsert may open above the stored log: guards memory. */
const MAX_GAP = 1 << 24;

/** A {@link Storage} kept in memory. */
export class MemoryStorage implements Storage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snapshot: Snapshot | null = null;
  /** `log[i]` holds the entry at index `base + i`; holes (Paxos gaps) are `undefined`. */
  private log: (Entry | undefined)[] = [];
  private base = 1;
  private closed = false;
  /** Number of `persist` calls so far (one per Ready with something to write). */
  persistCount = 0;

  load(): PersistedState {
    this.assertOpen();
    const entries: Entry[] = [];
    for (const e of this.log) if (e) entries.push(e);
    return { hardState: this.hardState, snapshot: this.snapshot, entries };
  }

  persist(batch: PersistBatch): void {
    this.assertOpen();
    validateBatch(batch);
    const es = batch.entries;
    if (es && es.length > 0) {
      const top = Math.max(this.base + this.log.length, batch.truncateFrom ?? Number.POSITIVE_INFINITY);
      if (es[0]!.index > top + MAX_GAP) throw new InvalidArgumentError(`entry index ${es[0]!.index} opens a gap above ${MAX_GAP}`);
    }
    this.persistCount++;
    const t = batch.truncateFrom;
    if (t != null && t < this.base + this.log.length) {
      if (t <= this.base) this.log = [];
      else this.log.length = t - this.base;
    }
    const c = batch.compactTo;
    if (c != null && c >= this.base) {
      const drop = c - this.base + 1;
      this.log = drop >= this.log.length ? [] : this.log.slice(drop);
      this.base = c + 1;
    }
    if (batch.snapshot) this.snapshot = batch.snapshot;
    if (es) for (let i = 0; i < es.length; i++) this.put(es[i]!);
    if (batch.hardState) this.hardState = batch.hardState;
  }

  private put(e: Entry): void {
    const log = this.log;
    if (log.length === 0) {
      this.base = e.index;
      log.push(e);
      return;
    }
    let off = e.index - this.base;
    if (off < 0) {
      // Below the lowest stored index (rare: a Paxos slot filled under the log): re-base.
      const holes = new Array<Entry | undefined>(-off);
      this.log = holes.concat(log);
      this.base = e.index;
      off = 0;
    }
    if (off < this.log.length) this.log[off] = e;
    else {
      while (this.log.length < off) this.log.push(undefined);
      this.log.push(e);
    }
  }

  close(): void {
    this.closed = true;
  }

  /** Reopens a closed storage (a restarted process finding its data again). */
  reopen(): this {
    this.closed = false;
    return this;
  }

  private assertOpen(): void {
    if (this.closed) throw new InvalidArgumentError('MemoryStorage is closed');
  }
}

/**
 * Checks a batch for shapes no core should produce (non-positive or non-integer indexes,
 * unsorted entries) and throws {@link InvalidArgumentError} before anything is written, so a
 * bad batch leaves the storage unchanged. Storage implementations share it.
 */
export function validateBatch(batch: PersistBatch): void {
  const idx = (n: number, what: string) => {
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer, got ${n}`);
  };
  if (batch.truncateFrom != null) idx(batch.truncateFrom, 'truncateFrom');
  if (batch.compactTo != null) idx(batch.compactTo, 'compactTo');
  if (batch.hardState) {
    idx(batch.hardState.term, 'hardState.term');
    idx(batch.hardState.commit, 'hardState.commit');
  }
  if (batch.snapshot) {
    idx(batch.snapshot.meta.index, 'snapshot.meta.index');
    idx(batch.snapshot.meta.term, 'snapshot.meta.term');
  }
  if (batch.entries) {
    let prev = 0;
    for (const e of batch.entries) {
      idx(e.index, 'entry.index');
      idx(e.term, 'entry.term');
      if (e.index < 1) throw new InvalidArgumentError(`entry index must be >= 1, got ${e.index}`);
      if (e.index <= prev) throw new InvalidArgumentError('entries must be strictly ascending by index');
      if (!(e.data instanceof Uint8Array)) throw new InvalidArgumentError('entry.data must be a Uint8Array');
      prev = e.index;
    }
  }
}
