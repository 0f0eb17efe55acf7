/**
 * The acceptor's in-memory log: one accepted entry per slot above the snapshot, possibly with gaps
 * (slots nothing was accepted for yet), plus an index of the `Config` entries in it so the core
 * can tell which configuration governs a slot (stop-sign rule: a configuration at slot j governs
 * the slots above j).
 */
import { type Configuration, decodeConfiguration, type Entry, EntryType } from '@synod/log';

/** A `Config` entry of the log, decoded. */
export interface ConfigAt {
  /** Slot of the `Config` entry. */
  readonly index: number;
  /** Round the entry was accepted under. */
  readonly term: number;
  readonly config: Configuration;
}

/** Slot-indexed log of accepted entries above a snapshot. */
export class SlotLog {
  /** Slot covered by the snapshot (0 if none); `arr[0]` is slot `offset + 1`. */
  private offset: number;
  private offsetTerm: number;
  private arr: (Entry | undefined)[] = [];
  /** Config entries held in `arr`, ascending by slot. */
  private configs: ConfigAt[] = [];
  /** Configuration in effect right above the snapshot (or the initial one). */
  private base: Configuration;

  constructor(snapshotIndex: number, snapshotTerm: number, base: Configuration) {
    this.offset = snapshotIndex;
    this.offsetTerm = snapshotTerm;
    this.base = base;
  }

  /** Slot covered by the snapshot. */
  get snapshotIndex(): number {
    return this.offset;
  }

  /** Round of the snapshot's last slot. */
  get snapshotTerm(): number {
    return this.offsetTerm;
  }

  /** Highest slot holding an entry, or the snapshot index if none. */
  get lastIndex(): number {
    return this.offset + this.arr.length;
  }

  /** The entry at `slot`, if held (not compacted, not a gap). */
  get(slot: number): Entry | undefined {
    return slot > this.offset ? this.arr[slot - this.offset - 1] : undefined;
  }

  /** Round of the entry at `slot`: the snapshot's term at the snapshot index, undefined if unknown. */
  termAt(slot: number): number | undefined {
    if (slot === this.offset) return this.offsetTerm;
    return this.get(slot)?.term;
  }

  /**
   * Stores (or replaces) the entry at `e.index` (must be above the snapshot). `config` is the
   * decoded configuration when `e` is a `Config` entry.
   */
  set(e: Entry, config?: Configuration): void {
    const i = e.index - this.offset - 1;
    if (i < 0) throw new RangeError(`slot ${e.index} is compacted`);
    const old = this.arr[i];
    while (this.arr.length < i) this.arr.push(undefined);
    this.arr[i] = e;
    if (old?.type === EntryType.Config || e.type === EntryType.Config) {
      this.configs = this.configs.filter((c) => c.index !== e.index);
      if (e.type === EntryType.Config) {
        const cfg = config ?? decodeConfiguration(e.data);
        const at: ConfigAt = { index: e.index, term: e.term, config: cfg };
        let k = this.configs.length;
        while (k > 0 && this.configs[k - 1]!.index > e.index) k--;
        this.configs.splice(k, 0, at);
      }
    }
  }

  /** The configuration governing `slot`: the newest `Config` entry below it, else the base. */
  configAt(slot: number): Configuration {
    for (let k = this.configs.length - 1; k >= 0; k--) {
      const c = this.configs[k]!;
      if (c.index < slot) return c.config;
    }
    return this.base;
  }

  /** The newest configuration in the log, chosen or not (else the base). */
  newestConfig(): Configuration {
    return this.configs[this.configs.length - 1]?.config ?? this.base;
  }

  /** `Config` entries with a slot above `slot`, ascending. */
  configsAbove(slot: number): readonly ConfigAt[] {
    if (this.configs.length === 0 || this.configs[this.configs.length - 1]!.index <= slot) return [];
    return this.configs.filter((c) => c.index > slot);
  }

  /** The first `Config` slot at or above `slot`, or undefined. */
  nextConfigSlot(slot: number): number | undefined {
    for (const c of this.configs) if (c.index >= slot) return c.index;
    return undefined;
  }

  /** Entries with slots in [from, to], skipping gaps. */
  range(from: number, to: number): Entry[] {
    const out: Entry[] = [];
    const lo = Math.max(from, this.offset + 1);
    const hi = Math.min(to, this.lastIndex);
    for (let s = lo; s <= hi; s++) {
      const e = this.arr[s - this.offset - 1];
      if (e) out.push(e);
    }
    return out;
  }

  /**
   * Drops every entry at or below `index` (covered by a snapshot of that index and term). The
   * base becomes the configuration governing `index + 1`, or `config` when given (an installed
   * snapshot's). Entries above `index` are kept.
   */
  compact(index: number, term: number, config?: Configuration): void {
    if (index <= this.offset) return;
    const base = config ?? this.configAt(index + 1);
    // When the snapshot reaches past every entry held, the log restarts empty above it.
    this.arr.splice(0, Math.min(index - this.offset, this.arr.length));
    this.offset = index;
    this.offsetTerm = term;
    this.base = base;
    this.configs = this.configs.filter((c) => c.index > index);
  }
}
