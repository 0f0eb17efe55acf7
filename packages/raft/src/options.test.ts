/** Options validation and bootstrap semantics of `raft()`. */
import { createRandom, decodeConfiguration, EMPTY_HARD_STATE, EntryType, InvalidConfigurationError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RAFT_OPTIONS, leaseTicksOf, raft, raftCodec } from './index.js';

describe('raft() options', () => {
  it('has documented defaults', () => {
    const p = raft();
    expect(p.name).toBe('raft');
    expect(p.codec).toBe(raftCodec);
    expect(DEFAULT_RAFT_OPTIONS).toMatchObject({ electionTicks: 10, heartbeatTicks: 1, preVote: true, checkQuorum: true, forwardProposals: true, leaseRead: false });
    expect(leaseTicksOf(DEFAULT_RAFT_OPTIONS)).toBe(7);
  });

  const bad: [string, object][] = [
    ['electionTicks 0', { electionTicks: 0 }],
    ['electionTicks 1', { electionTicks: 1 }],
    ['fractional electionTicks', { electionTicks: 2.5 }],
    ['heartbeat >= election', { electionTicks: 5, heartbeatTicks: 5 }],
    ['negative maxSizePerMsg', { maxSizePerMsg: -1 }],
    ['zero maxInflightMsgs', { maxInflightMsgs: 0 }],
    ['zero snapshotChunkBytes', { snapshotChunkBytes: 0 }],
    ['string for a number', { maxInflightBytes: '10' }],
    ['number for a boolean', { preVote: 1 }],
    ['NaN', { trailingEntries: Number.NaN }],
    ['lease without check-quorum', { leaseRead: true, checkQuorum: false }],
    ['drift out of range', { leaseClockDrift: 0.9 }],
    ['lease impossible with tiny timeouts', { leaseRead: true, electionTicks: 2, heartbeatTicks: 1 }],
    ['unknown option', { electionTimeout: 10 }],
  ];
  for (const [name, o] of bad) {
    it(`refuses ${name} with InvalidConfigurationError`, () => {
      expect(() => raft(o as never)).toThrow(InvalidConfigurationError);
    });
  }

  it('accepts zero for the byte limits that document 0 as unlimited', () => {
    expect(() => raft({ maxInflightBytes: 0, maxUncommittedEntriesSize: 0, trailingEntries: 0 })).not.toThrow();
  });
});

describe('bootstrap and joining', () => {
  it('a bootstrap node writes its configuration as entry 1 of term 1, byte-identical across nodes', () => {
    const p = raft();
    const mk = (id: string, voters: string[]) => {
      const core = p.create({ id, state: { hardState: EMPTY_HARD_STATE, snapshot: null, entries: [] }, bootstrap: { voters, learners: [] }, random: createRandom(1) });
      return core.ready();
    };
    const r1 = mk('n1', ['n3', 'n1', 'n2']);
    const r2 = mk('n2', ['n2', 'n3', 'n1']);
    expect(r1.entries).toHaveLength(1);
    expect(r1.entries[0]).toMatchObject({ index: 1, term: 1, type: EntryType.Config });
    expect([...r1.entries[0]!.data]).toEqual([...r2.entries[0]!.data]);
    expect(decodeConfiguration(r1.entries[0]!.data).voters).toEqual(['n1', 'n2', 'n3']);
    expect(r1.hardState).toEqual({ term: 1, vote: null, commit: 1 });
    expect(r1.committed).toEqual(r1.entries); // the bootstrap configuration is committed by construction
  });

  it('refuses an invalid bootstrap configuration or node id', () => {
    const p = raft();
    const state = { hardState: EMPTY_HARD_STATE, snapshot: null, entries: [] };
    expect(() => p.create({ id: 'n1', state, bootstrap: { voters: [], learners: [] }, random: createRandom(1) })).toThrow(InvalidConfigurationError);
    expect(() => p.create({ id: 'bad id', state, random: createRandom(1) })).toThrow(InvalidConfigurationError);
  });

  it('ignores the bootstrap configuration when storage already holds one', () => {
    const p = raft();
    const first = p.create({ id: 'n1', state: { hardState: EMPTY_HARD_STATE, snapshot: null, entries: [] }, bootstrap: { voters: ['n1', 'n2', 'n3'], learners: [] }, random: createRandom(1) });
    const rd = first.ready();
    const again = p.create({ id: 'n1', state: { hardState: rd.hardState!, snapshot: null, entries: rd.entries }, bootstrap: { voters: ['n1', 'x'], learners: [] }, random: createRandom(1) });
    expect(again.status().config.voters).toEqual(['n1', 'n2', 'n3']);
    expect(again.ready().entries).toEqual([]);
  });
});
