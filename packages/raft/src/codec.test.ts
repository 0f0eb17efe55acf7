/** The binary codec and the core's handling of invalid input. */
import { BinaryReader, BinaryWriter, type Entry, MalformedMessageError } from '@synod/log';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { raftCodec } from './codec.js';
import { type RaftMessage, RaftMessageType } from './messages.js';
import { TestNetwork } from './test/network.js';

const idArb = fc.stringMatching(/^[a-z0-9]{1,8}$/);
const u = fc.integer({ min: 0, max: 2 ** 40 });
const bytes = fc.uint8Array({ maxLength: 64 });

const configArb = fc.record({
  voters: fc.array(idArb, { minLength: 1, maxLength: 4 }),
  learners: fc.array(idArb, { maxLength: 2 }),
});

const messageArb: fc.Arbitrary<RaftMessage> = fc
  .tuple(idArb, idArb, u)
  .chain(([from, to, term]) =>
    fc.oneof(
      fc.record({ lastLogIndex: u, lastLogTerm: u, transfer: fc.boolean(), pre: fc.boolean() }).map(
        (r): RaftMessage => ({ type: r.pre ? RaftMessageType.PreVote : RaftMessageType.Vote, from, to, term, lastLogIndex: r.lastLogIndex, lastLogTerm: r.lastLogTerm, transfer: r.transfer }),
      ),
      fc.record({ granted: fc.boolean(), pre: fc.boolean() }).map(
        (r): RaftMessage => ({ type: r.pre ? RaftMessageType.PreVoteResponse : RaftMessageType.VoteResponse, from, to, term, granted: r.granted }),
      ),
      fc.record({ prevLogIndex: u, prevLogTerm: u, leaderCommit: u, ents: fc.array(fc.record({ term: u, type: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>, data: bytes }), { maxLength: 5 }) }).map(
        (r): RaftMessage => ({
          type: RaftMessageType.Append,
          from,
          to,
          term,
          prevLogIndex: r.prevLogIndex,
          prevLogTerm: r.prevLogTerm,
          leaderCommit: r.leaderCommit,
          entries: r.ents.map((e, i): Entry => ({ index: r.prevLogIndex + 1 + i, term: e.term, type: e.type, data: e.data })),
        }),
      ),
      fc.record({ success: fc.boolean(), index: u, conflictIndex: u, conflictTerm: u }).map((r): RaftMessage => ({ type: RaftMessageType.AppendResponse, from, to, term, ...r })),
      fc.record({ commit: u, seq: u }).map((r): RaftMessage => ({ type: RaftMessageType.Heartbeat, from, to, term, ...r })),
      fc.record({ seq: u, unverified: fc.boolean() }).map((r): RaftMessage => ({ type: RaftMessageType.HeartbeatResponse, from, to, term, ...r })),
      fc.record({ index: u, sterm: u, config: configArb, data: bytes, pad: fc.integer({ min: 0, max: 100 }), offset: fc.integer({ min: 0, max: 100 }) }).map(
        (r): RaftMessage => ({
          type: RaftMessageType.InstallSnapshot,
          from,
          to,
          term,
          meta: { index: r.index, term: r.sterm, config: r.config },
          size: r.offset + r.data.length + r.pad,
          offset: r.offset,
          data: r.data,
        }),
      ),
      fc.record({ index: u, offset: u }).map((r): RaftMessage => ({ type: RaftMessageType.SnapshotResponse, from, to, term, ...r })),
      fc.constant<RaftMessage>({ type: RaftMessageType.TimeoutNow, from, to, term }),
      fc.array(bytes, { maxLength: 4 }).map((commands): RaftMessage => ({ type: RaftMessageType.Propose, from, to, term, commands })),
      fc.record({ mode: fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>, nonce: u, ids: fc.array(u, { maxLength: 5 }) }).map((r): RaftMessage => ({ type: RaftMessageType.ReadIndex, from, to, term, ...r })),
      fc.record({ status: fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>, index: u, leaderHint: fc.option(idArb, { nil: null }), nonce: u, ids: fc.array(u, { maxLength: 5 }) }).map(
        (r): RaftMessage => ({ type: RaftMessageType.ReadIndexResponse, from, to, term, ...r }),
      ),
    ),
  );

function encode(m: RaftMessage): Uint8Array {
  const w = new BinaryWriter(16);
  raftCodec.write(w, m);
  return w.toBytes();
}

function decode(b: Uint8Array): RaftMessage {
  const r = new BinaryReader(b);
  const m = raftCodec.read(r);
  r.expectEnd();
  return m;
}

describe('raftCodec', () => {
  it('round-trips every message type (property)', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        expect(decode(encode(m))).toEqual(m);
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes several messages written into one buffer (transport batching)', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 8 }), (ms) => {
        const w = new BinaryWriter();
        for (const m of ms) raftCodec.write(w, m);
        const r = new BinaryReader(w.toBytes());
        const out = ms.map(() => raftCodec.read(r));
        expect(r.remaining).toBe(0);
        expect(out).toEqual(ms);
      }),
      { numRuns: 300 },
    );
  });

  it('every truncation of a valid encoding throws MalformedMessageError (never another error)', () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const b = encode(m);
        for (let n = 0; n < b.length; n++) {
          try {
            decode(b.subarray(0, n));
            // A prefix may decode as a shorter valid message only if expectEnd passes, which it can't
            throw new Error('decoded a truncated message');
          } catch (e) {
            expect(e).toBeInstanceOf(MalformedMessageError);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('random bytes either decode or throw MalformedMessageError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
        try {
          raftCodec.read(new BinaryReader(b));
        } catch (e) {
          expect(e).toBeInstanceOf(MalformedMessageError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('rejects unknown types, bad node ids, bad booleans and entry types', () => {
    const w = new BinaryWriter();
    w.u8(99).string('a').string('b').uvarint(1);
    expect(() => raftCodec.read(new BinaryReader(w.toBytes()))).toThrow(MalformedMessageError);
    const bad = (f: (w: BinaryWriter) => void) => {
      const x = new BinaryWriter();
      f(x);
      return () => raftCodec.read(new BinaryReader(x.toBytes()));
    };
    expect(bad((x) => x.u8(RaftMessageType.TimeoutNow).string('has space').string('b').uvarint(1))).toThrow(MalformedMessageError);
    expect(bad((x) => x.u8(RaftMessageType.VoteResponse).string('a').string('b').uvarint(1).u8(7))).toThrow(MalformedMessageError);
    expect(bad((x) => x.u8(RaftMessageType.Append).string('a').string('b').uvarint(1).uvarint(0).uvarint(0).uvarint(0).uvarint(1).uvarint(1).u8(9).bytes(new Uint8Array(1)))).toThrow(MalformedMessageError);
    expect(bad((x) => x.u8(RaftMessageType.Append).string('a').string('b').uvarint(1).uvarint(0).uvarint(0).uvarint(0).uvarint(1_000_000))).toThrow(MalformedMessageError);
  });

  it('decodes entry payloads as views into the input, without copies', () => {
    const data = new Uint8Array([1, 2, 3, 4, 5]);
    const b = encode({ type: RaftMessageType.Append, from: 'a', to: 'b', term: 2, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, entries: [{ index: 1, term: 2, type: 0, data }] });
    const m = decode(b) as Extract<RaftMessage, { type: 5 }>;
    expect(m.entries[0]!.data.buffer).toBe(b.buffer);
    expect([...m.entries[0]!.data]).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('invalid messages are dropped and counted, never thrown', () => {
  const cases: [string, unknown][] = [
    ['null', null],
    ['unknown type', { type: 77, from: 'a', to: 'b', term: 1 }],
    ['addressed to another node', { type: RaftMessageType.TimeoutNow, from: 'a', to: 'zzz', term: 9 }],
    ['from itself', { type: RaftMessageType.TimeoutNow, from: 'b', to: 'b', term: 9 }],
    ['negative term', { type: RaftMessageType.Heartbeat, from: 'a', to: 'b', term: -1, commit: 0, seq: 0 }],
    ['fractional index', { type: RaftMessageType.Heartbeat, from: 'a', to: 'b', term: 3, commit: 1.5, seq: 0 }],
    ['non-contiguous entries', { type: RaftMessageType.Append, from: 'a', to: 'b', term: 3, prevLogIndex: 1, prevLogTerm: 1, leaderCommit: 0, entries: [{ index: 3, term: 3, type: 0, data: new Uint8Array() }] }],
    ['entry term above message term', { type: RaftMessageType.Append, from: 'a', to: 'b', term: 3, prevLogIndex: 1, prevLogTerm: 1, leaderCommit: 0, entries: [{ index: 2, term: 4, type: 0, data: new Uint8Array() }] }],
    ['decreasing entry terms', { type: RaftMessageType.Append, from: 'a', to: 'b', term: 3, prevLogIndex: 1, prevLogTerm: 2, leaderCommit: 0, entries: [{ index: 2, term: 1, type: 0, data: new Uint8Array() }] }],
    ['undecodable config entry', { type: RaftMessageType.Append, from: 'a', to: 'b', term: 3, prevLogIndex: 1, prevLogTerm: 1, leaderCommit: 0, entries: [{ index: 2, term: 3, type: 2, data: new Uint8Array([200]) }] }],
    ['payload not bytes', { type: RaftMessageType.Propose, from: 'a', to: 'b', term: 3, commands: ['x'] }],
    ['snapshot chunk beyond size', { type: RaftMessageType.InstallSnapshot, from: 'a', to: 'b', term: 3, meta: { index: 5, term: 2, config: { voters: ['a'], learners: [] } }, size: 1, offset: 1, data: new Uint8Array(3) }],
    ['snapshot with empty configuration', { type: RaftMessageType.InstallSnapshot, from: 'a', to: 'b', term: 3, meta: { index: 5, term: 2, config: { voters: [], learners: [] } }, size: 0, offset: 0, data: new Uint8Array(0) }],
    ['vote with last term above term', { type: RaftMessageType.Vote, from: 'a', to: 'b', term: 2, lastLogIndex: 1, lastLogTerm: 3, transfer: false }],
  ];
  for (const [name, msg] of cases) {
    it(`drops: ${name}`, () => {
      const net = new TestNetwork(['a', 'b', 'c']);
      net.drainAll();
      const before = net.status('b');
      expect(() => net.core('b').step(msg as RaftMessage)).not.toThrow();
      const after = net.status('b');
      expect(after.droppedMessages).toBe(before.droppedMessages + 1);
      expect({ ...after, droppedMessages: 0 }).toEqual({ ...before, droppedMessages: 0 });
      expect(net.core('b').hasReady()).toBe(false);
    });
  }
});
