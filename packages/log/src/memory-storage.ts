/**
 * In-memory {@link Storage}: synchronous, atomic by construction (a batch is applied in one
 * synchronous call), durable only for the life of the object. Tests and the simulator model a
 * crash by dropping the replica and building a new one over the same `MemoryStorage`: what
 * was persisted stays, everything else is lost.
 */
import { InvalidArgumentError } from './errors.js';
import type { Storage } from './storage.js';
import { EMPTY_HARD_STATE, type Entry, type HardState, type PersistBatch, type PersistedState, type Snapshot } from './types.js';

/** A {@link Storage} kept in memory. */
export class MemoryStorage implements Storage {
  private hardState: HardState = EMPTY_HARD_STATE;
  private snapshot: Snapshot | null = null;
  private readonly log = new Map<number, Entry>();
  private minIndex = Number.POSITIVE_INFINITY;
  private maxIndex = 0;
  private closed = false;
  /** Number of `persist` calls so far (one per Ready with something to write). */
  persistCount = 0;

  load(): PersistedState {
    this.assertOpen();
    const entries: Entry[] = [];
    if (this.log.size > 0) {
      for (let i = this.minIndex; i <= this.maxIndex; i++) {
        const e = this.log.get(i);
        if (e) entries.push(e);
      }
    }
    return { hardState: this.hardState, snapshot: this.snapshot, entries };
  }

  persist(batch: PersistBatch): void {
    this.assertOpen();
    validateBatch(batch);
    this.persistCount++;
    if (batch.truncateFrom != null && this.log.size > 0 && batch.truncateFrom <= this.maxIndex) {
      for (let i = Math.max(batch.truncateFrom, this.minIndex); i <= this.maxIndex; i++) this.log.delete(i);
      this.maxIndex = batch.truncateFrom - 1;
      this.normalizeBounds();
    }
    if (batch.compactTo != null && this.log.size > 0 && batch.compactTo >= this.minIndex) {
      for (let i = this.minIndex; i <= Math.min(batch.compactTo, this.maxIndex); i++) this.log.delete(i);
      this.minIndex = batch.compactTo + 1;
      this.normalizeBounds();
    }
    if (batch.snapshot) this.snapshot = batch.snapshot;
    if (batch.entries) {
      for (const e of batch.entries) {
        this.log.set(e.index, e);
        if (e.index < this.minIndex) this.minIndex = e.index;
        if (e.index > this.maxIndex) this.maxIndex = e.index;
      }
    }
    if (batch.hardState) this.hardState = batch.hardState;
  }

  close(): void {
    this.closed = true;
  }

  /** Reopens a closed storage (a restarted process finding its data again). */
  reopen(): this {
    this.closed = false;
    return this;
  }

  /**
   * Bounds are kept conservative (every stored index lies in [minIndex, maxIndex], though not
   * every index in it is stored: Paxos logs have gaps), so deletions cost O(deleted), never a
   * scan of the whole log.
   */
  private normalizeBounds(): void {
    if (this.log.size === 0) {
      this.minIndex = Number.POSITIVE_INFINITY;
      this.maxIndex = 0;
    }
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
