/**
 * The in-memory view of one server's Raft log (paper §5.3, §7): entries above a compaction
 * point, the latest snapshot, commitIndex, lastApplied, the newest configuration in the log,
 * and what still has to reach stable storage.
 *
 * Durability tracking is O(batch): `handedOut` is the highest index given to the runtime in a
 * `Ready`, `persisted` the highest index whose `Ready` was acknowledged by `advance`. A
 * truncation lowers both, and records `truncateFrom` for storage when stored entries are
 * affected.
 */
import {
  type Configuration,
  decodeConfiguration,
  EMPTY_CONFIGURATION,
  type Entry,
  EntryType,
  type Snapshot,
} from '@synod/log';

interface ConfigMark {
  readonly index: number;
  readonly config: Configuration;
}

/** Decodes a Config entry's data, or returns null if it is not a valid configuration. */
export function tryDecodeConfiguration(data: Uint8Array): Configuration | null {
  try {
    return decodeConfiguration(data);
  } catch {
    return null;
  }
}

/** One server's log. Indexes are 1-based; index 0 has term 0. */
export class RaftLog {
  /** `entries[i].index === offset + 1 + i`. */
  entries: Entry[] = [];
  /** Index just below `entries[0]` (the compaction point). */
  offset = 0;
  /** Term of the entry at `offset` (0 if none). */
  offsetTerm = 0;
  /** The latest snapshot (taken locally, installed, or loaded), or null. */
  snapshot: Snapshot | null = null;
  /** commitIndex. */
  commit = 0;
  /** lastApplied: the highest index whose Ready (committed entries or snapshot) was advanced. */
  applied = 0;
  /** Highest index handed to the runtime for persistence. */
  handedOut = 0;
  /** Highest index acknowledged durable (by `advance`). */
  persisted = 0;
  /** Storage must delete entries >= this before writing new ones (next Ready), or null. */
  pendingTruncateFrom: number | null = null;
  /** Storage must delete entries <= this (next Ready), or null. */
  pendingCompactTo: number | null = null;
  /** A snapshot to persist in the next Ready, or null. */
  pendingSnapshot: Snapshot | null = null;
  /** Configuration in effect at `offset` (from a snapshot, or the bootstrap). */
  private baseConfig: Configuration = EMPTY_CONFIGURATION;
  /** Config entries above `offset`, ascending. */
  private configs: ConfigMark[] = [];
  /** Incremented whenever the newest configuration changes. */
  configVersion = 0;

  /** Index of the last entry (or of the compaction point when no entry is held). */
  lastIndex(): number {
    return this.offset + this.entries.length;
  }

  /** Term of the last entry. */
  lastTerm(): number {
    const n = this.entries.length;
    return n === 0 ? this.offsetTerm : this.entries[n - 1]!.term;
  }

  /** Index of the first entry still held in memory. */
  firstIndex(): number {
    return this.offset + 1;
  }

  /** Index covered by the latest snapshot (0 if none). */
  snapshotIndex(): number {
    return this.snapshot?.meta.index ?? 0;
  }

  /** Term of entry `i`, or undefined if `i` is compacted away or beyond the last index. */
  term(i: number): number | undefined {
    if (i === this.offset) return this.offsetTerm;
    if (i < this.offset || i > this.offset + this.entries.length) {
      if (this.snapshot && i === this.snapshot.meta.index) return this.snapshot.meta.term;
      return undefined;
    }
    return this.entries[i - this.offset - 1]!.term;
  }

  /** Entry `i` if held in memory. */
  entry(i: number): Entry | undefined {
    if (i <= this.offset) return undefined;
    return this.entries[i - this.offset - 1];
  }

  /** Whether the log holds an entry at `i` with term `t` (index 0 / the compaction point count). */
  matchTerm(i: number, t: number): boolean {
    const x = this.term(i);
    return x !== undefined && x === t;
  }

  /** Raft §5.4.1: whether a log ending at (lastIndex, lastTerm) is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The entries from `lo` on, at most `maxBytes` payload bytes (always at least one entry),
   * as a new array of the log's own Entry objects (no payload copies).
   */
  slice(lo: number, maxBytes: number): Entry[] {
    const last = this.lastIndex();
    if (lo > last || lo <= this.offset) return [];
    const start = lo - this.offset - 1;
    let end = start + 1;
    let size = this.entries[start]!.data.length;
    const n = this.entries.length;
    while (end < n) {
      const s = this.entries[end]!.data.length;
      if (size + s > maxBytes) break;
      size += s;
      end++;
    }
    return this.entries.slice(start, end);
  }

  /** Entries in [lo, hi] (inclusive), which must be held in memory. */
  range(lo: number, hi: number): Entry[] {
    if (hi < lo) return [];
    return this.entries.slice(lo - this.offset - 1, hi - this.offset);
  }

  /**
   * The largest index <= `upTo` whose term is <= `term`, by binary search (terms are
   * non-decreasing along a log). Returns `offset` if none is held.
   */
  lastIndexWithTermAtMost(term: number, upTo: number): number {
    let lo = this.offset + 1;
    let hi = Math.min(upTo, this.lastIndex());
    let ans = this.offset;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid - this.offset - 1]!.term <= term) {
        ans = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return ans;
  }

  /** The first index in (offset, upTo] whose term is >= `term` (binary search), or upTo + 1. */
  firstIndexWithTermAtLeast(term: number, upTo: number): number {
    let lo = this.offset + 1;
    let hi = Math.min(upTo, this.lastIndex());
    let ans = hi + 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid - this.offset - 1]!.term >= term) {
        ans = mid;
        hi = mid - 1;
      } else {
        lo = mid + 1;
      }
    }
    return ans;
  }

  // ------------------------------------------------------------------ configuration

  /** The newest configuration in the log, committed or not (thesis §4.1). */
  get config(): Configuration {
    const n = this.configs.length;
    return n === 0 ? this.baseConfig : this.configs[n - 1]!.config;
  }

  /** Index of the entry holding {@link config} (`offset` if it comes from the base). */
  get configIndex(): number {
    const n = this.configs.length;
    return n === 0 ? this.offset : this.configs[n - 1]!.index;
  }

  /** The newest configuration at or below index `i` (i >= offset). */
  configAt(i: number): Configuration {
    for (let k = this.configs.length - 1; k >= 0; k--) {
      if (this.configs[k]!.index <= i) return this.configs[k]!.config;
    }
    return this.baseConfig;
  }

  /** Sets the configuration in effect at the compaction point (start-up only). */
  setBaseConfig(c: Configuration): void {
    this.baseConfig = c;
    this.configVersion++;
  }

  // ------------------------------------------------------------------ mutation

  /** Appends entries that continue the log exactly (`entries[0].index === lastIndex() + 1`). */
  append(ents: readonly Entry[], from = 0): void {
    for (let i = from; i < ents.length; i++) {
      const e = ents[i]!;
      this.entries.push(e);
      if (e.type === EntryType.Config) {
        const c = tryDecodeConfiguration(e.data);
        if (c) {
          this.configs.push({ index: e.index, config: c });
          this.configVersion++;
        }
      }
    }
  }

  /** Appends one entry at `lastIndex() + 1` (the leader's hot path: no array allocation). */
  appendOne(e: Entry): void {
    this.entries.push(e);
    if (e.type === EntryType.Config) {
      const c = tryDecodeConfiguration(e.data);
      if (c) {
        this.configs.push({ index: e.index, config: c });
        this.configVersion++;
      }
    }
  }

  /** Deletes entries >= `i` (a conflicting suffix, §5.3). Never called at or below commit. */
  truncateFrom(i: number): void {
    if (i > this.lastIndex()) return;
    this.entries.length = i - this.offset - 1;
    let popped = false;
    while (this.configs.length > 0 && this.configs[this.configs.length - 1]!.index >= i) {
      this.configs.pop();
      popped = true;
    }
    if (popped) this.configVersion++;
    if (this.persisted >= i) this.persisted = i - 1;
    if (this.handedOut >= i) {
      this.handedOut = i - 1;
      this.pendingTruncateFrom = this.pendingTruncateFrom === null ? i : Math.min(this.pendingTruncateFrom, i);
    }
  }

  /** Drops in-memory entries <= `i` (i in (offset, applied]) and asks storage to do the same. */
  compactTo(i: number): void {
    if (i <= this.offset) return;
    const t = this.term(i)!;
    this.baseConfig = this.configAt(i);
    this.configs = this.configs.filter((c) => c.index > i);
    this.entries = this.entries.slice(i - this.offset);
    this.offset = i;
    this.offsetTerm = t;
    this.pendingCompactTo = this.pendingCompactTo === null ? i : Math.max(this.pendingCompactTo, i);
  }

  /** Raises commitIndex to `i` (never lowers it). */
  commitTo(i: number): boolean {
    if (i <= this.commit) return false;
    this.commit = i;
    return true;
  }

  /**
   * Replaces the whole log by a snapshot received from the leader (§7): every entry is
   * discarded (the caller checked that the log does not already contain the snapshot's last
   * entry), commit moves to the snapshot's index, and storage is told to drop the old log.
   */
  restore(s: Snapshot): void {
    const idx = s.meta.index;
    this.entries = [];
    this.offset = idx;
    this.offsetTerm = s.meta.term;
    this.baseConfig = s.meta.config;
    this.configs = [];
    this.configVersion++;
    this.snapshot = s;
    this.pendingSnapshot = s;
    this.commit = Math.max(this.commit, idx);
    // The old log is gone: delete it everywhere in storage.
    this.pendingTruncateFrom = this.pendingTruncateFrom === null ? idx + 1 : Math.min(this.pendingTruncateFrom, idx + 1);
    this.pendingCompactTo = this.pendingCompactTo === null ? idx : Math.max(this.pendingCompactTo, idx);
    // Entries up to the snapshot index are covered by the snapshot itself, which is persisted
    // in the next Ready; commit is already at idx, so counting them as persisted cannot
    // advance any commit decision early.
    this.handedOut = idx;
    this.persisted = idx;
  }

  /** Records a snapshot taken locally (index <= applied) and compacts below it. */
  setLocalSnapshot(s: Snapshot, compactTo: number): void {
    this.snapshot = s;
    this.pendingSnapshot = s;
    if (compactTo > this.offset) this.compactTo(compactTo);
  }

  /** Entries not yet handed out for persistence; marks them handed out. */
  takeUnstable(): Entry[] {
    const last = this.lastIndex();
    if (this.handedOut >= last) return EMPTY;
    const out = this.entries.slice(this.handedOut - this.offset);
    this.handedOut = last;
    return out;
  }

  /** Whether some entries were not yet handed out for persistence. */
  hasUnstable(): boolean {
    return this.handedOut < this.lastIndex();
  }

  /** Acknowledges durability of entries up to `i` (from an advanced Ready). */
  persistedTo(i: number): void {
    const p = Math.min(i, this.handedOut);
    if (p > this.persisted) this.persisted = p;
  }

  /** First index to hand out as committed: after applied and after a pending snapshot. */
  nextApplyIndex(): number {
    const s = this.pendingSnapshot ? this.pendingSnapshot.meta.index : 0;
    return Math.max(this.applied, s) + 1;
  }

  /** Whether committed entries wait to be applied. */
  hasNextCommitted(): boolean {
    return this.commit >= this.nextApplyIndex();
  }

  /** Committed entries to apply next (ascending, contiguous). */
  nextCommitted(): Entry[] {
    const lo = this.nextApplyIndex();
    if (lo > this.commit) return EMPTY;
    return this.range(lo, this.commit);
  }
}

const EMPTY: Entry[] = [];
