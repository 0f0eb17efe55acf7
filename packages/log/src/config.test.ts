import { describe, expect, it } from 'vitest';
import { BinaryReader } from './binary.js';
import {
  allMembers,
  allVoters,
  decodeConfiguration,
  encodeConfiguration,
  isJoint,
  isValidNodeId,
  isVoter,
  sameConfiguration,
  validateConfiguration,
} from './config.js';
import { InvalidConfigurationError, MalformedMessageError } from './errors.js';

describe('configurations (Raft thesis ch. 4)', () => {
  it('round-trips simple, joint and addressed configurations', () => {
    const cs = [
      { voters: ['a'], learners: [] },
      { voters: ['a', 'b', 'c'], learners: ['d'], outgoingVoters: ['a', 'b'] },
      { voters: ['n1'], learners: [], addresses: { n1: 'ws://127.0.0.1:9001' } },
    ];
    for (const c of cs) expect(decodeConfiguration(encodeConfiguration(c))).toEqual(c);
  });

  it('joint helpers see both halves', () => {
    const c = { voters: ['a', 'b', 'c'], learners: ['e'], outgoingVoters: ['a', 'd'] };
    expect(isJoint(c)).toBe(true);
    expect(allVoters(c).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(allMembers(c).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(isVoter(c, 'd')).toBe(true);
    expect(isVoter(c, 'e')).toBe(false);
    expect(sameConfiguration(c, { voters: ['c', 'b', 'a'], learners: ['e'], outgoingVoters: ['d', 'a'] })).toBe(true);
    expect(sameConfiguration(c, { voters: ['a', 'b', 'c'], learners: ['e'] })).toBe(false);
  });

  it('validation refuses empty voter sets, duplicates, bad ids and voter-learners', () => {
    expect(() => validateConfiguration({ voters: [], learners: [] })).toThrow(InvalidConfigurationError);
    expect(() => validateConfiguration({ voters: ['a', 'a'], learners: [] })).toThrow(InvalidConfigurationError);
    expect(() => validateConfiguration({ voters: ['a b'], learners: [] })).toThrow(InvalidConfigurationError);
    expect(() => validateConfiguration({ voters: ['a'], learners: ['a'] })).toThrow(InvalidConfigurationError);
    expect(() => validateConfiguration({ voters: ['a', 'b'], learners: ['c'] })).not.toThrow();
    expect(isValidNodeId('')).toBe(false);
    expect(isValidNodeId(3)).toBe(false);
    expect(isValidNodeId('n-1')).toBe(true);
    expect(isValidNodeId('__proto__')).toBe(false);
    expect(isValidNodeId('constructor')).toBe(true);
  });

  it('decoding garbage throws MalformedMessageError', () => {
    expect(() => decodeConfiguration(new Uint8Array([200, 1, 2]))).toThrow(MalformedMessageError);
    expect(() => decodeConfiguration(new Uint8Array([0, 0, 7, 0]))).toThrow(MalformedMessageError);
    const ok = encodeConfiguration({ voters: ['a'], learners: [] });
    expect(() => decodeConfiguration(new Uint8Array([...ok, 0]))).toThrow(MalformedMessageError);
    expect(() => new BinaryReader(ok.subarray(1, 2)).string()).toThrow(MalformedMessageError);
  });
});
