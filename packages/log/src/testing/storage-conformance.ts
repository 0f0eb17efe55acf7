/**
 * The storage conformance suite: every {@link Storage} implementation runs it in its own tests.
 * It checks what the runtime relies on: atomic batches, the order of a batch's parts, upserts
 * with gaps (Paxos), truncation and compaction (Raft), snapshots, and durability across reopen.
 */
import { describe, expect, it } from 'vitest';
import { encodeConfiguration } from '../config.js';
import type { Storage } from '../storage.js';
import { web } from '../web.js';
import { EMPTY_HARD_STATE, type Entry, EntryType, type Snapshot } from '../types.js';

/** How the suite opens, reopens and disposes of one storage location. */
export interface StorageHarness {
  /** Opens the storage at this harness's location (again after `close()`, to test durability). */
  open(): Storage | Promise<Storage>;
  /** Deletes the location. Called once after each test. */
  cleanup?(): void | Promise<void>;
}

const enc = new web.TextEncoder();

function entry(index: number, term: number, text = `e${index}`, type: EntryType = EntryType.Normal): Entry {
  return { index, term, type, data: enc.encode(text) };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function plain(es: readonly Entry[]) {
  return es.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Array.from(e.data) }));
}

/**
 * Registers the conformance tests for a storage.
 * @param name shown in test names.
 * @param makeHarness called once per test with a fresh, empty location.
 */
export function storageConformance(name: string, makeHarness: () => StorageHarness | Promise<StorageHarness>): void {
  const withStorage = (fn: (s: Storage, h: StorageHarness) => Promise<void>) => async () => {
    const h = await makeHarness();
    const s = await h.open();
    try {
      await fn(s, h);
    } finally {
      try {
        await s.close();
      } catch {
        // already closed by the test
      }
      await h.cleanup?.();
    }
  };

  const reopen = async (s: Storage, h: StorageHarness) => {
    await s.close();
    return h.open();
  };

  describe(`storage conformance: ${name}`, () => {
    it('a new storage loads the empty state', withStorage(async (s) => {
      const st = await s.load();
      expect(st.hardState).toEqual(EMPTY_HARD_STATE);
      expect(st.snapshot).toBeNull();
      expect(st.entries).toEqual([]);
    }));

    it('persists entries and hard state in one batch and loads them back', withStorage(async (s) => {
      await s.persist({ hardState: { term: 3, vote: 'n2', commit: 1 }, entries: [entry(1, 1), entry(2, 3)] });
      const st = await s.load();
      expect(st.hardState).toEqual({ term: 3, vote: 'n2', commit: 1 });
      expect(plain(st.entries)).toEqual(plain([entry(1, 1), entry(2, 3)]));
    }));

    it('keeps everything across close and reopen (durability)', withStorage(async (s, h) => {
      const snap: Snapshot = {
        meta: { index: 2, term: 1, config: { voters: ['a', 'b', 'c'], learners: ['d'], addresses: { a: 'ws://127.0.0.1:1' } } },
        data: new Uint8Array([9, 8, 7, 0, 255]),
      };
      await s.persist({ snapshot: snap, entries: [entry(3, 1), entry(4, 2)], hardState: { term: 2, vote: null, commit: 3 } });
      const s2 = await reopen(s, h);
      try {
        const st = await s2.load();
        expect(st.hardState).toEqual({ term: 2, vote: null, commit: 3 });
        expect(st.snapshot?.meta).toEqual(snap.meta);
        expect(Array.from(st.snapshot!.data)).toEqual([9, 8, 7, 0, 255]);
        expect(plain(st.entries)).toEqual(plain([entry(3, 1), entry(4, 2)]));
      } finally {
        await s2.close();
      }
    }));

    it('truncateFrom removes the conflicting suffix before the batch entries are written (Raft §5.3)', withStorage(async (s) => {
      await s.persist({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, 1)) });
      await s.persist({ truncateFrom: 3, entries: [entry(3, 2, 'new3')] });
      const st = await s.load();
      expect(plain(st.entries)).toEqual(plain([entry(1, 1), entry(2, 1), entry(3, 2, 'new3')]));
    }));

    it('truncateFrom alone deletes the suffix', withStorage(async (s) => {
      await s.persist({ entries: [1, 2, 3].map((i) => entry(i, 1)) });
      await s.persist({ truncateFrom: 2 });
      expect(plain((await s.load()).entries)).toEqual(plain([entry(1, 1)]));
    }));

    it('entries are upserted by index, keeping gaps (Paxos slots)', withStorage(async (s) => {
      await s.persist({ entries: [entry(1, 5), entry(3, 5), entry(7, 5)] });
      await s.persist({ entries: [entry(3, 9, 'reaccepted')] });
      const st = await s.load();
      expect(plain(st.entries)).toEqual(plain([entry(1, 5), entry(3, 9, 'reaccepted'), entry(7, 5)]));
    }));

    it('compactTo drops the prefix covered by a snapshot stored in the same batch', withStorage(async (s) => {
      await s.persist({ entries: [1, 2, 3, 4].map((i) => entry(i, 1)) });
      const cfg = { voters: ['a'], learners: [] };
      await s.persist({ snapshot: { meta: { index: 3, term: 1, config: cfg }, data: new Uint8Array([1]) }, compactTo: 3 });
      const st = await s.load();
      expect(st.snapshot?.meta.index).toBe(3);
      expect(plain(st.entries)).toEqual(plain([entry(4, 1)]));
    }));

    it('a newer snapshot replaces the older one; installing one can drop the whole log', withStorage(async (s) => {
      const cfg = { voters: ['a', 'b', 'c'], learners: [], outgoingVoters: ['a', 'b'] };
      await s.persist({ snapshot: { meta: { index: 2, term: 1, config: cfg }, data: new Uint8Array([1]) }, entries: [entry(3, 1)] });
      await s.persist({ truncateFrom: 0, compactTo: 10, snapshot: { meta: { index: 10, term: 4, config: cfg }, data: new Uint8Array([2, 2]) } });
      const st = await s.load();
      expect(st.snapshot?.meta).toEqual({ index: 10, term: 4, config: cfg });
      expect(Array.from(st.snapshot!.data)).toEqual([2, 2]);
      expect(st.entries).toEqual([]);
    }));

    it('a batch with only hard state leaves the log alone', withStorage(async (s) => {
      await s.persist({ entries: [entry(1, 1)] });
      await s.persist({ hardState: { term: 7, vote: 'x', commit: 1 } });
      const st = await s.load();
      expect(st.hardState).toEqual({ term: 7, vote: 'x', commit: 1 });
      expect(st.entries.length).toBe(1);
    }));

    it('an invalid batch throws and writes nothing of it (atomicity)', withStorage(async (s) => {
      await s.persist({ entries: [entry(1, 1)], hardState: { term: 1, vote: null, commit: 0 } });
      let threw = false;
      try {
        await s.persist({ hardState: { term: 9, vote: null, commit: 0 }, entries: [entry(3, 1), entry(2, 1)] });
      } catch {
        threw = true;
      }
      expect(threw).toBe(true);
      const st = await s.load();
      expect(st.hardState.term).toBe(1);
      expect(plain(st.entries)).toEqual(plain([entry(1, 1)]));
    }));

    it('keeps binary payloads byte for byte, empty and large', withStorage(async (s, h) => {
      const big = new Uint8Array(1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      const cfg = encodeConfiguration({ voters: ['a'], learners: [] });
      await s.persist({
        entries: [
          { index: 1, term: 1, type: EntryType.NoOp, data: new Uint8Array(0) },
          { index: 2, term: 1, type: EntryType.Normal, data: big },
          { index: 3, term: 1, type: EntryType.Config, data: cfg },
        ],
      });
      const s2 = await reopen(s, h);
      try {
        const st = await s2.load();
        expect(st.entries.map((e) => e.type)).toEqual([EntryType.NoOp, EntryType.Normal, EntryType.Config]);
        expect(st.entries[0]!.data.length).toBe(0);
        expect(sameBytes(st.entries[1]!.data, big)).toBe(true);
        expect(Array.from(st.entries[2]!.data)).toEqual(Array.from(cfg));
      } finally {
        await s2.close();
      }
    }));

    it('keeps large terms and indexes exactly (up to 2^53-1)', withStorage(async (s) => {
      const big = 2 ** 40 + 7;
      await s.persist({ hardState: { term: Number.MAX_SAFE_INTEGER, vote: 'n-π', commit: big }, entries: [entry(big, big)] });
      const st = await s.load();
      expect(st.hardState).toEqual({ term: Number.MAX_SAFE_INTEGER, vote: 'n-π', commit: big });
      expect(st.entries[0]!.index).toBe(big);
      expect(st.entries[0]!.term).toBe(big);
    }));

    it('persists ten thousand entries in one batch and loads them in order', withStorage(async (s) => {
      const es = Array.from({ length: 10_000 }, (_, i) => entry(i + 1, 1 + Math.floor(i / 1000)));
      await s.persist({ entries: es });
      const st = await s.load();
      expect(st.entries.length).toBe(10_000);
      expect(st.entries.every((e, i) => e.index === i + 1)).toBe(true);
      expect(st.entries[9_999]!.term).toBe(10);
    }));
  });
}
