/**
 * The Paxos message codec: every message round-trips (property-based, fast-check), several
 * messages share one frame, payloads are views into the input, and malformed bytes raise
 * MalformedMessageError only.
 */
import { BinaryReader, BinaryWriter, type Entry, EntryType, MalformedMessageError } from '@synod/log';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidPaxosMessage, paxosCodec } from './codec.js';
import { type PaxosMessage, PaxosMessageType as T } from './messages.js';

const id = fc.stringMatching(/^[a-z0-9-]{1,12}$/);
const nat = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const small = fc.nat({ max: 1_000_000 });
const bytes = fc.uint8Array({ maxLength: 64 });
const entryType = fc.constantFrom(EntryType.Normal, EntryType.NoOp);

/** Ascending entries; with `round` their term is that round (as Accept carries them). */
function entries(round: number | null): fc.Arbitrary<Entry[]> {
  return fc.array(fc.tuple(fc.integer({ min: 1, max: 1000 }), small, entryType, bytes), { maxLength: 8 }).map((xs) => {
    let index = 0;
    return xs.map(([d, term, type, data]) => {
      index += d;
      return { index, term: round ?? term, type, data };
    });
  });
}

const config = fc.record({
  voters: fc.uniqueArray(id, { minLength: 1, maxLength: 5 }),
  learners: fc.constant([] as string[]),
});

const message: fc.Arbitrary<PaxosMessage> = fc.oneof(
  fc.record({ type: fc.constant(T.Prepare), from: id, to: id, round: nat, commit: nat, force: fc.boolean(), transferRound: nat, transferOwner: fc.option(id, { nil: null }) }),
  fc.record({ type: fc.constant(T.Promise), from: id, to: id, round: nat, commit: nat, entries: entries(null) }),
  fc.record({ type: fc.constant(T.Nack), from: id, to: id, round: nat, promisedRound: nat, promisedOwner: fc.option(id, { nil: null }), lagging: fc.boolean(), commit: nat }),
  small.chain((round) => fc.record({ type: fc.constant(T.Accept), from: id, to: id, round: fc.constant(round), commit: nat, seq: nat, entries: entries(round) })),
  fc.record({ type: fc.constant(T.Accepted), from: id, to: id, round: nat, match: nat, last: nat, seq: nat }),
  fc.tuple(bytes, small).chain(([data, extra]) =>
    fc.record({
      type: fc.constant(T.Snapshot),
      from: id,
      to: id,
      round: nat,
      meta: fc.record({ index: nat, term: nat, config }),
      offset: fc.constant(extra),
      total: fc.constant(extra + data.length + (extra % 7)),
      data: fc.constant(data),
    }),
  ),
  fc.record({ type: fc.constant(T.SnapshotAck), from: id, to: id, round: nat, index: nat, offset: nat, match: nat }),
  fc.record({ type: fc.constant(T.TimeoutNow), from: id, to: id, round: nat }),
  fc.record({ type: fc.constant(T.Forward), from: id, to: id, commands: fc.array(bytes, { maxLength: 5 }) }),
  fc.record({ type: fc.constant(T.ReadIndex), from: id, to: id, ctx: nat }),
  fc.record({ type: fc.constant(T.ReadIndexResponse), from: id, to: id, ctx: nat, ok: fc.boolean(), index: nat }),
) as fc.Arbitrary<PaxosMessage>;

function encode(ms: readonly PaxosMessage[]): Uint8Array {
  const w = new BinaryWriter(16);
  for (const m of ms) paxosCodec.write(w, m);
  return w.toBytes();
}

function decodeAll(b: Uint8Array): PaxosMessage[] {
  const r = new BinaryReader(b);
  const out: PaxosMessage[] = [];
  while (r.remaining > 0) out.push(paxosCodec.read(r));
  return out;
}

/** Structural copy with Uint8Arrays turned into arrays, for deep equality. */
function plain(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v)));
}

describe('paxos codec', () => {
  it('every valid message round-trips, several per frame', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 6 }), (ms) => {
        for (const m of ms) expect(isValidPaxosMessage(m)).toBe(true);
        const back = decodeAll(encode(ms));
        expect(plain(back)).toEqual(plain(ms));
        for (const m of back) expect(isValidPaxosMessage(m)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('payloads are read as views into the frame, not copies', () => {
    const data = new Uint8Array([1, 2, 3, 4]);
    const frame = encode([{ type: T.Accept, from: 'a', to: 'b', round: 2, commit: 0, seq: 1, entries: [{ index: 5, term: 2, type: EntryType.Normal, data }] }]);
    const m = decodeAll(frame)[0]!;
    if (m.type !== T.Accept) throw new Error('wrong type');
    const view = m.entries[0]!.data;
    expect(Array.from(view)).toEqual([1, 2, 3, 4]);
    expect(view.buffer).toBe(frame.buffer);
  });

  it('truncated frames raise MalformedMessageError and nothing else', () => {
    fc.assert(
      fc.property(message, fc.nat(), (m, cut) => {
        const b = encode([m]);
        const n = cut % b.length; // strictly shorter than the message
        try {
          decodeAll(b.subarray(0, n));
        } catch (err) {
          expect(err).toBeInstanceOf(MalformedMessageError);
          return;
        }
        // Only an empty prefix decodes to nothing.
        expect(n).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes raise MalformedMessageError or decode to valid messages, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        try {
          for (const m of decodeAll(b)) expect(isValidPaxosMessage(m)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(MalformedMessageError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('specific malformed inputs are refused', () => {
    const bad = (f: (w: BinaryWriter) => void) => {
      const w = new BinaryWriter();
      f(w);
      return () => decodeAll(w.toBytes());
    };
    expect(bad((w) => w.u8(77).string('a').string('b'))).toThrow(MalformedMessageError); // unknown type
    expect(bad((w) => w.u8(T.TimeoutNow).string('').string('b').uvarint(1))).toThrow(MalformedMessageError); // empty id
    expect(bad((w) => w.u8(T.TimeoutNow).string('a b').string('b').uvarint(1))).toThrow(MalformedMessageError); // space in id
    expect(bad((w) => w.u8(T.Prepare).string('a').string('b').uvarint(1).uvarint(0).u8(2).uvarint(0).u8(0))).toThrow(MalformedMessageError); // bad bool
    expect(bad((w) => w.u8(T.Accept).string('a').string('b').uvarint(1).uvarint(0).uvarint(0).uvarint(1).uvarint(0).u8(0).bytes(new Uint8Array()))).toThrow(
      MalformedMessageError,
    ); // slot delta 0
    expect(bad((w) => w.u8(T.Accept).string('a').string('b').uvarint(1).uvarint(0).uvarint(0).uvarint(1).uvarint(1).u8(9).bytes(new Uint8Array()))).toThrow(
      MalformedMessageError,
    ); // entry type 9
    expect(bad((w) => w.u8(T.Accept).string('a').string('b').uvarint(1).uvarint(0).uvarint(0).uvarint(1_000_000))).toThrow(MalformedMessageError); // count
  });
});
