import { describe, expect, it } from 'vitest';
import { storageConformance } from './testing/storage-conformance.js';
import { MemoryStorage } from './memory-storage.js';

storageConformance('MemoryStorage', () => {
  const s = new MemoryStorage();
  return { open: () => s.reopen() };
});

import { EntryType } from './types.js';

describe('MemoryStorage bounds', () => {
  const e = (index: number, term = 1) => ({ index, term, type: EntryType.Normal, data: new Uint8Array([index & 0xff]) });

  it('keeps every stored entry visible after truncations, compactions and gapped upserts', () => {
    const s = new MemoryStorage();
    s.persist({ entries: [e(1), e(2), e(3), e(5), e(8)] });
    s.persist({ truncateFrom: 6 });
    expect(s.load().entries.map((x) => x.index)).toEqual([1, 2, 3, 5]);
    s.persist({ compactTo: 2, entries: [e(9), e(12)] });
    expect(s.load().entries.map((x) => x.index)).toEqual([3, 5, 9, 12]);
    s.persist({ truncateFrom: 100 });
    s.persist({ compactTo: 0 });
    expect(s.load().entries.map((x) => x.index)).toEqual([3, 5, 9, 12]);
    s.persist({ compactTo: 20 });
    expect(s.load().entries).toEqual([]);
    s.persist({ entries: [e(21), e(23)] });
    expect(s.load().entries.map((x) => x.index)).toEqual([21, 23]);
  });
});
