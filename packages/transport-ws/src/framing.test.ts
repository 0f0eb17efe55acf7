import { BinaryWriter, MalformedMessageError, type MessageCodec } from '@synod/log';
import { type TestMessage, testCodec, testMessage } from '@synod/log/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBatch, decodeHello, decodeHelloHeader, encodeBatch, encodeHello, encodeHelloHeader, FrameType, MAX_HELLO_BYTES, sealBatch, uvarintLength } from './framing.js';

describe('hello frames', () => {
  it('round-trips, with and without a token', () => {
    const h = { version: 1, from: 'n1', to: 'n2', authToken: 'tøken', clusterId: 'clüster-1' };
    expect(decodeHello(encodeHello(h))).toEqual(h);
    const h2 = { version: 7, from: 'a', to: 'b', authToken: null, clusterId: null };
    expect(decodeHello(encodeHello(h2))).toEqual(h2);
  });

  it('rejects a wrong type, trailing bytes, truncation and an empty sender with MalformedMessageError', () => {
    const good = encodeHello({ version: 1, from: 'n1', to: 'n2', authToken: null, clusterId: null });
    expect(() => decodeHello(new Uint8Array([FrameType.Batch, 0]))).toThrow(MalformedMessageError);
    expect(() => decodeHello(new Uint8Array([...good, 0]))).toThrow(MalformedMessageError);
    for (let cut = 0; cut < good.length; cut++) expect(() => decodeHello(good.subarray(0, cut))).toThrow(MalformedMessageError);
    expect(() => decodeHello(encodeHello({ version: 1, from: '', to: 'n2', authToken: null, clusterId: null }))).toThrow(MalformedMessageError);
  });

  it('rejects a sender or recipient that is not a valid node id (isValidNodeId) with MalformedMessageError', () => {
    const bad = ['', 'n 1', 'n1\t', '\n', 'x'.repeat(129)];
    for (const id of bad) {
      expect(() => decodeHello(encodeHello({ version: 1, from: id, to: 'n2', authToken: null, clusterId: null }))).toThrow(MalformedMessageError);
      expect(() => decodeHello(encodeHello({ version: 1, from: 'n1', to: id, authToken: null, clusterId: null }))).toThrow(MalformedMessageError);
    }
    const longest = { version: 1, from: 'x'.repeat(128), to: 'n-ü', authToken: null, clusterId: null };
    expect(decodeHello(encodeHello(longest))).toEqual(longest);
  });
});

describe('hello header', () => {
  it('round-trips through base64url, with the longest token and cluster id the transport allows', () => {
    const h = { version: 2, from: 'ü'.repeat(128), to: 'n2', authToken: '€'.repeat(341), clusterId: '😀'.repeat(128) };
    const v = encodeHelloHeader(h);
    expect(v).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeHelloHeader(v)).toEqual(h);
    expect(Buffer.from(v, 'base64url').length).toBeLessThanOrEqual(MAX_HELLO_BYTES);
  });

  it('rejects a missing, empty, non-base64url, oversized or undecodable header with MalformedMessageError', () => {
    const good = encodeHelloHeader({ version: 2, from: 'a', to: 'b', authToken: null, clusterId: 'c' });
    for (const bad of [undefined, '', ['x', 'y'], 'a+b/', `${good}=`, 'A'.repeat(Math.ceil((MAX_HELLO_BYTES * 4) / 3) + 1), 'AAAA', good.slice(0, -2)]) {
      expect(() => decodeHelloHeader(bad)).toThrow(MalformedMessageError);
    }
  });

  it('never throws anything but MalformedMessageError on random header values', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (v) => {
        try {
          decodeHelloHeader(v);
        } catch (err) {
          expect(err).toBeInstanceOf(MalformedMessageError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('batch frames', () => {
  it('round-trips any batch; payloads are views into the frame (no copy)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ seq: fc.nat(), payload: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 300 }),
        (items) => {
          const msgs = items.map((x) => testMessage('a', 'b', x.seq, x.payload));
          const frame = encodeBatch(testCodec, msgs);
          const out: TestMessage[] = [];
          decodeBatch(testCodec, frame, out);
          expect(out.length).toBe(msgs.length);
          out.forEach((m, i) => {
            expect(m.seq).toBe(msgs[i]!.seq);
            expect(Array.from(m.payload)).toEqual(Array.from(msgs[i]!.payload));
            expect(m.payload.buffer).toBe(frame.buffer);
          });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('writes the count as a varint (multi-byte above 127)', () => {
    const msgs = Array.from({ length: 300 }, (_, i) => testMessage('a', 'b', i));
    const frame = encodeBatch(testCodec, msgs);
    expect(frame[0]).toBe(FrameType.Batch);
    expect(uvarintLength(300)).toBe(2);
    expect(frame[1]).toBe((300 % 128) | 0x80);
    expect(frame[2]).toBe(Math.floor(300 / 128));
    const out: TestMessage[] = [];
    decodeBatch(testCodec, frame, out);
    expect(out.map((m) => m.seq)).toEqual(msgs.map((m) => m.seq));
  });

  it('sealBatch copies the body, so the writer can be reused', () => {
    const w = new BinaryWriter();
    testCodec.write(w, testMessage('a', 'b', 1));
    const frame = sealBatch(1, w.finish());
    w.reset();
    testCodec.write(w, testMessage('x', 'y', 2));
    const out: TestMessage[] = [];
    decodeBatch(testCodec, frame, out);
    expect(out[0]).toMatchObject({ from: 'a', to: 'b', seq: 1 });
  });

  it('rejects every truncation, trailing bytes, a wrong type and an impossible count, all or nothing', () => {
    const frame = encodeBatch(testCodec, [testMessage('a', 'b', 1, new Uint8Array([1, 2, 3])), testMessage('a', 'b', 2)]);
    const out: TestMessage[] = [];
    for (let cut = 0; cut < frame.length; cut++) {
      expect(() => decodeBatch(testCodec, frame.subarray(0, cut), out)).toThrow(MalformedMessageError);
      expect(out.length).toBe(0);
    }
    expect(() => decodeBatch(testCodec, new Uint8Array([...frame, 9]), out)).toThrow(MalformedMessageError);
    expect(() => decodeBatch(testCodec, new Uint8Array([0x7f, ...frame.subarray(1)]), out)).toThrow(MalformedMessageError);
    // A count of 2^35 in a 10-byte frame must be refused before any allocation.
    expect(() => decodeBatch(testCodec, new Uint8Array([FrameType.Batch, 0x80, 0x80, 0x80, 0x80, 0x01, 1, 2, 3]), out)).toThrow(
      /claims/,
    );
  });

  it('turns a codec error of another type into MalformedMessageError', () => {
    const bad: MessageCodec<TestMessage> = {
      write: testCodec.write,
      read: () => {
        throw new RangeError('codec bug');
      },
    };
    const frame = encodeBatch(testCodec, [testMessage('a', 'b', 1)]);
    expect(() => decodeBatch(bad, frame, [])).toThrow(MalformedMessageError);
  });

  it('never throws anything but MalformedMessageError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const out: TestMessage[] = [];
        try {
          decodeBatch(testCodec, bytes, out);
        } catch (err) {
          expect(err).toBeInstanceOf(MalformedMessageError);
        }
        try {
          decodeHello(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(MalformedMessageError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
