import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { committedIndex, hasQuorum, majorityCommitted, majoritySize, majorityVoteResult, voteResult } from './quorum.js';

describe('majority quorums', () => {
  it('majority sizes', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(majoritySize)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });

  it('the committed index is the highest index held by a majority', () => {
    const match: Record<string, number> = { a: 5, b: 3, c: 9 };
    expect(majorityCommitted(['a', 'b', 'c'], (id) => match[id]!)).toBe(5);
    expect(majorityCommitted(['a', 'b', 'c', 'd'], (id) => match[id] ?? 0)).toBe(3);
    expect(majorityCommitted(['a'], (id) => match[id]!)).toBe(5);
  });

  it('property: the committed index is held by at least a majority and no higher index is', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(100), { minLength: 1, maxLength: 9 }), (acks) => {
        const ids = acks.map((_, i) => `n${i}`);
        const c = majorityCommitted(ids, (id) => acks[Number(id.slice(1))]!);
        const q = majoritySize(ids.length);
        expect(acks.filter((a) => a >= c).length).toBeGreaterThanOrEqual(q);
        expect(acks.filter((a) => a >= c + 1).length).toBeLessThan(q);
      }),
    );
  });

  it('vote tallies: won, lost, pending', () => {
    const v = (m: Record<string, boolean>) => (id: string) => m[id];
    expect(majorityVoteResult(['a', 'b', 'c'], v({ a: true, b: true }))).toBe('won');
    expect(majorityVoteResult(['a', 'b', 'c'], v({ a: true }))).toBe('pending');
    expect(majorityVoteResult(['a', 'b', 'c'], v({ a: false, b: false }))).toBe('lost');
    expect(majorityVoteResult(['a', 'b', 'c', 'd'], v({ a: true, b: true, c: false, d: false }))).toBe('lost');
  });
});

describe('joint quorums (Raft thesis §4.3)', () => {
  const joint = { voters: ['a', 'b', 'c'], learners: [], outgoingVoters: ['c', 'd', 'e'] };

  it('commit needs a majority of both halves', () => {
    const match: Record<string, number> = { a: 10, b: 10, c: 4, d: 2, e: 1 };
    expect(committedIndex(joint, (id) => match[id] ?? 0)).toBe(2);
    expect(committedIndex({ voters: ['a', 'b', 'c'], learners: [] }, (id) => match[id] ?? 0)).toBe(10);
  });

  it('an election needs both halves; a loss in either loses', () => {
    const v = (m: Record<string, boolean>) => (id: string) => m[id];
    expect(voteResult(joint, v({ a: true, b: true }))).toBe('pending');
    expect(voteResult(joint, v({ a: true, b: true, d: true, e: true }))).toBe('won');
    expect(voteResult(joint, v({ a: true, b: true, d: false, e: false }))).toBe('lost');
  });

  it('hasQuorum checks the active set against both halves', () => {
    expect(hasQuorum(joint, new Set(['a', 'b', 'c']))).toBe(false);
    expect(hasQuorum(joint, new Set(['a', 'b', 'c', 'd']))).toBe(true);
  });
});
