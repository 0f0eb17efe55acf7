import { describe, expect, it } from 'vitest';
import { CommandKind, decodeCommand, encodeCommand } from './envelope.js';
import { MalformedMessageError } from './errors.js';

describe('runtime command envelope', () => {
  it('round-trips every kind and keeps the payload as a view', () => {
    const payload = new Uint8Array([1, 2, 3]);
    for (const kind of [CommandKind.Plain, CommandKind.Session, CommandKind.OpenSession, CommandKind.CloseSession]) {
      const data = encodeCommand({ kind, origin: 'n1', originTag: 77, request: 9, time: 1_700_000_000_000, session: 5, seq: 3 }, payload);
      const e = decodeCommand(data);
      expect(e.kind).toBe(kind);
      expect(e.origin).toBe('n1');
      expect(e.originTag).toBe(77);
      expect(e.request).toBe(9);
      expect(e.time).toBe(1_700_000_000_000);
      expect(e.session).toBe(kind === CommandKind.Session || kind === CommandKind.CloseSession ? 5 : 0);
      expect(e.seq).toBe(kind === CommandKind.Session ? 3 : 0);
      expect(Array.from(e.payload)).toEqual([1, 2, 3]);
      expect(e.payload.buffer).toBe(data.buffer);
    }
  });

  it('rejects unknown kinds and truncated headers with MalformedMessageError', () => {
    expect(() => decodeCommand(new Uint8Array([9]))).toThrow(MalformedMessageError);
    expect(() => decodeCommand(new Uint8Array([0, 5, 65]))).toThrow(MalformedMessageError);
  });
});

import fc from 'fast-check';
import { type CommandHeader, encodeOrigin, parseCommandHeader } from './envelope.js';

describe('parseCommandHeader (the allocation-free apply path)', () => {
  const blank = (): CommandHeader => ({ kind: 0, mine: false, originTag: 0, request: 0, time: 0, session: 0, seq: 0, payloadOffset: 0 });

  it('agrees with decodeCommand on every field, and recognises its own origin', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 2, 3),
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.nat(), fc.nat(), fc.nat({ max: 2 ** 45 }), fc.nat(), fc.nat(),
        fc.uint8Array({ maxLength: 64 }),
        (kind, origin, other, originTag, request, time, session, seq, payload) => {
          const data = encodeCommand({ kind: kind as CommandKind, origin, originTag, request, time, session, seq }, payload);
          const d = decodeCommand(data);
          const h = blank();
          expect(parseCommandHeader(data, encodeOrigin(origin), h)).toBe(true);
          expect(h.mine).toBe(true);
          expect([h.kind, h.originTag, h.request, h.time, h.session, h.seq]).toEqual([d.kind, d.originTag, d.request, d.time, d.session, d.seq]);
          expect(Array.from(data.subarray(h.payloadOffset))).toEqual(Array.from(payload));
          const h2 = blank();
          expect(parseCommandHeader(data, encodeOrigin(other), h2)).toBe(true);
          expect(h2.mine).toBe(origin === other);
        },
      ),
    );
  });

  it('parses a command from another proposer whose origin takes 128 bytes or more (a two-byte length prefix)', () => {
    for (const origin of ['é'.repeat(100), 'x'.repeat(128), 'ü'.repeat(64)]) {
      const data = encodeCommand({ kind: CommandKind.Session, origin, originTag: 7, request: 8, time: 9, session: 10, seq: 11 }, new Uint8Array([42]));
      const h = blank();
      expect(parseCommandHeader(data, encodeOrigin('n1'), h)).toBe(true);
      expect(h).toMatchObject({ mine: false, originTag: 7, request: 8, time: 9, session: 10, seq: 11 });
      expect(data[h.payloadOffset]).toBe(42);
      expect(parseCommandHeader(data, encodeOrigin(origin), blank())).toBe(true);
    }
  });

  it('returns false (never throws) on garbage and truncated headers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        let threw = false;
        let ok = false;
        try {
          ok = parseCommandHeader(bytes, encodeOrigin('n1'), blank());
        } catch {
          threw = true;
        }
        expect(threw).toBe(false);
        if (ok) expect(() => decodeCommand(bytes)).not.toThrow();
      }),
    );
    // Found by this property: an origin that is not UTF-8, and a varint above 2^53, are refused
    // by both the fast path and decodeCommand.
    for (const bytes of [
      Uint8Array.from([0, 1, 128, 0, 0, 0]),
      Uint8Array.from([0, 1, 0x41, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0]),
    ]) {
      expect(parseCommandHeader(bytes, encodeOrigin('n1'), blank())).toBe(false);
      expect(() => decodeCommand(bytes)).toThrow(MalformedMessageError);
    }
    const full = encodeCommand({ kind: CommandKind.Session, origin: 'n1', originTag: 1, request: 2, time: 3, session: 4, seq: 5 }, new Uint8Array(0));
    for (let cut = 0; cut < full.length; cut++) expect(parseCommandHeader(full.subarray(0, cut), encodeOrigin('n1'), blank())).toBe(false);
  });
});
