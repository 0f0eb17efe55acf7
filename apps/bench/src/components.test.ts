import { EntryType, MemoryStorage } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { batchingOf, CounterStateMachine, CountingStorage, loadProtocol, makePayload, sumIo, UnavailableError } from './components.js';

describe('CountingStorage', () => {
  it('counts persists and entries and passes everything through', async () => {
    const inner = new MemoryStorage();
    const s = new CountingStorage(inner);
    const e = (index: number) => ({ index, term: 1, type: EntryType.Normal, data: makePayload(4) });
    await s.persist({ entries: [e(1), e(2)], hardState: { term: 1, vote: 'n1', commit: 0 } });
    await s.persist({ hardState: { term: 1, vote: 'n1', commit: 2 } });
    expect([s.persists, s.entries]).toEqual([2, 2]);
    const st = await s.load();
    expect(st.entries.map((x) => x.index)).toEqual([1, 2]);
    expect(st.hardState.commit).toBe(2);
    await s.close();
    expect(() => inner.load()).toThrow();
  });
});

describe('batching figures', () => {
  it('derives persists/s, entries per persist and messages per op from two samples', () => {
    const a = sumIo([{ persists: 10, entries: 100, messages: 50 }, { persists: 5, entries: 100, messages: 0 }]);
    expect(a).toEqual({ persists: 15, entries: 200, messages: 50 });
    const b = { persists: 25, entries: 1200, messages: 80 };
    expect(batchingOf(a, b, 300, 2000)).toEqual({ persistsPerSec: 5, entriesPerPersist: 100, messagesPerOp: 0.1 });
    expect(batchingOf(a, a, 0, 1000)).toEqual({ persistsPerSec: 0, entriesPerPersist: 0, messagesPerOp: 0 });
  });
});

describe('CounterStateMachine', () => {
  it('returns the index, counts commands and bytes, and survives a snapshot', () => {
    const sm = new CounterStateMachine();
    expect(sm.apply(makePayload(16), { index: 7 })).toBe(7);
    sm.apply(makePayload(3), { index: 8 });
    const copy = new CounterStateMachine();
    copy.restore(sm.snapshot());
    expect([copy.query('count'), copy.query('bytes')]).toEqual([2, 19]);
    expect(sm.decodeResult(sm.encodeResult(123456))).toBe(123456);
  });

  it('payloads have the requested size and are not all zero', () => {
    const p = makePayload(1024);
    expect(p.length).toBe(1024);
    expect(p.some((b) => b !== 0)).toBe(true);
  });
});

describe('loadProtocol', () => {
  it('loads both protocol packages by name', async () => {
    expect((await loadProtocol('raft')).name).toBe('raft');
    expect((await loadProtocol('paxos')).name).toBe('paxos');
  });

  it('passes options through (invalid ones are the package’s error)', async () => {
    await expect(loadProtocol('raft', { electionTicks: -1 })).rejects.toThrow();
    expect(new UnavailableError('x').name).toBe('UnavailableError');
  });
});
