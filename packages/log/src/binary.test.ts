import { describe, expect, it } from 'vitest';
import { BinaryReader, BinaryWriter, utf8Decode, utf8Encode } from './binary.js';
import { MalformedMessageError } from './errors.js';

describe('BinaryWriter / BinaryReader', () => {
  it('round-trips varints across the whole safe-integer range', () => {
    const values = [0, 1, 127, 128, 255, 16_383, 16_384, 2 ** 31, 2 ** 32 + 5, 2 ** 48 - 1, Number.MAX_SAFE_INTEGER];
    const w = new BinaryWriter(1);
    for (const v of values) w.uvarint(v);
    const r = new BinaryReader(w.finish());
    expect(values.map(() => r.uvarint())).toEqual(values);
    r.expectEnd();
  });

  it('refuses to write negative, fractional or unsafe varints', () => {
    const w = new BinaryWriter();
    expect(() => w.uvarint(-1)).toThrow(RangeError);
    expect(() => w.uvarint(1.5)).toThrow(RangeError);
    expect(() => w.uvarint(2 ** 53)).toThrow(RangeError);
  });

  it('round-trips strings (ASCII and UTF-8), optional strings, bytes and floats', () => {
    const w = new BinaryWriter(4);
    w.string('n1').string('ключ-🔑').optString(null).optString('x').bytes(new Uint8Array([0, 1, 255])).f64(-3.25);
    w.string('a'.repeat(100));
    const r = new BinaryReader(w.toBytes());
    expect(r.string()).toBe('n1');
    expect(r.string()).toBe('ключ-🔑');
    expect(r.optString()).toBeNull();
    expect(r.optString()).toBe('x');
    expect(Array.from(r.bytes())).toEqual([0, 1, 255]);
    expect(r.f64()).toBe(-3.25);
    expect(r.string()).toBe('a'.repeat(100));
    expect(r.remaining).toBe(0);
  });

  it('keeps a leading U+FEFF (BOM) in strings: it is data, not a marker', () => {
    const w = new BinaryWriter();
    w.string('\uFEFFfoo').string('\uFEFF');
    const r = new BinaryReader(w.finish());
    expect(r.string()).toBe('\uFEFFfoo');
    expect(r.string()).toBe('\uFEFF');
    expect(utf8Decode(utf8Encode('\uFEFFkey'))).toBe('\uFEFFkey');
  });

  it('reads bytes as views into the input, not copies', () => {
    const w = new BinaryWriter();
    w.bytes(new Uint8Array([7, 8, 9]));
    const buf = w.toBytes();
    const view = new BinaryReader(buf).bytes();
    buf[buf.length - 1] = 42;
    expect(view[2]).toBe(42);
  });

  it('throws MalformedMessageError (only) on truncated or invalid input', () => {
    const w = new BinaryWriter();
    w.string('hello');
    const full = w.toBytes();
    expect(() => new BinaryReader(full.subarray(0, 3)).string()).toThrow(MalformedMessageError);
    expect(() => new BinaryReader(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])).uvarint()).toThrow(MalformedMessageError);
    expect(() => new BinaryReader(new Uint8Array([2, 0xc3, 0x28])).string()).toThrow(MalformedMessageError);
    expect(() => new BinaryReader(new Uint8Array([5])).optString()).toThrow(MalformedMessageError);
    expect(() => new BinaryReader(new Uint8Array([1, 2])).expectEnd()).toThrow(MalformedMessageError);
    expect(() => new BinaryReader(new Uint8Array([])).f64()).toThrow(MalformedMessageError);
  });
});
