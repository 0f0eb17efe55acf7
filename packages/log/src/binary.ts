/**
 * Compact binary encoding primitives shared by message codecs, storages and the runtime's
 * command header: unsigned LEB128 varints (safe up to 2^53 - 1), length-prefixed bytes and
 * UTF-8 strings. Readers return `subarray` views, never copies, so an entry payload decoded
 * from a frame is the frame's own memory.
 */
import { MalformedMessageError } from './errors.js';
import { web } from './web.js';

const encoder = new web.TextEncoder();
// ignoreBOM: a leading U+FEFF is data (e.g. part of a key), never a marker to strip.
const decoder = new web.TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Encodes a string as UTF-8 bytes (web-standard TextEncoder; works in every runtime). */
export function utf8Encode(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Decodes UTF-8 bytes. Throws {@link MalformedMessageError} on invalid UTF-8. */
export function utf8Decode(b: Uint8Array): string {
  try {
    return decoder.decode(b);
  } catch {
    throw new MalformedMessageError('invalid UTF-8');
  }
}

/** Number of bytes an unsigned LEB128 varint of `v` (0 .. 2^53-1) takes. */
export function uvarintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/**
 * Writes `v` as an unsigned LEB128 varint into `buf` at `pos` and returns the next position.
 * For encoders that size their output exactly (see {@link uvarintSize}); no bounds check.
 */
export function writeUvarintAt(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

/** A growable byte buffer. `finish()` returns a view of the written bytes. */
export class BinaryWriter {
  private buf: Uint8Array;
  private view: DataView | null = null;
  /** Number of bytes written so far. */
  pos = 0;

  /** @param initialSize starting capacity in bytes (grows by doubling). */
  constructor(initialSize = 256) {
    this.buf = new Uint8Array(Math.max(1, initialSize));
  }

  private ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = null;
  }

  /** Writes one byte (0..255). */
  u8(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  /** Writes an unsigned integer (0 .. 2^53-1) as LEB128. Throws RangeError outside that range. */
  uvarint(v: number): this {
    if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER) || !Number.isInteger(v)) {
      throw new RangeError(`uvarint out of range: ${v}`);
    }
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  /** Writes a 64-bit float (little endian). */
  f64(v: number): this {
    this.ensure(8);
    this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
    return this;
  }

  /** Writes a length-prefixed byte string. */
  bytes(b: Uint8Array): this {
    this.uvarint(b.length);
    this.raw(b);
    return this;
  }

  /** Writes bytes without a length prefix. */
  raw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Writes a length-prefixed UTF-8 string. */
  string(s: string): this {
    // Fast path for ASCII, which covers node ids and most keys.
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 0x7f) {
        ascii = false;
        break;
      }
    }
    if (ascii) {
      this.uvarint(s.length);
      this.ensure(s.length);
      for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
      return this;
    }
    return this.bytes(encoder.encode(s));
  }

  /** Writes `null` as 0, otherwise 1 followed by the string. */
  optString(s: string | null | undefined): this {
    if (s === null || s === undefined) return this.u8(0);
    this.u8(1);
    return this.string(s);
  }

  /** A view of the bytes written so far (shares memory with the writer until the next write). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** A fresh copy of the bytes written so far. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  /** Forgets written bytes, keeping capacity. */
  reset(): void {
    this.pos = 0;
  }
}

/**
 * Reads what {@link BinaryWriter} wrote. Every read checks bounds and throws
 * {@link MalformedMessageError} on truncated or invalid input, never a RangeError or a crash.
 */
export class BinaryReader {
  private view: DataView | null = null;
  pos: number;
  /** End offset (exclusive). */
  readonly end: number;

  constructor(readonly buf: Uint8Array, start = 0, end = buf.length) {
    this.pos = start;
    this.end = end;
  }

  /** Bytes left to read. */
  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new MalformedMessageError(`truncated input at byte ${this.pos}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  uvarint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      this.need(1);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) throw new MalformedMessageError('varint exceeds 2^53');
        return result;
      }
      mul *= 0x80;
    }
    throw new MalformedMessageError('varint too long');
  }

  f64(): number {
    this.need(8);
    this.view ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Reads a length-prefixed byte string as a view into the input (no copy). */
  bytes(): Uint8Array {
    const n = this.uvarint();
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** Reads `n` raw bytes as a view. */
  raw(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  string(): string {
    const n = this.uvarint();
    this.need(n);
    if (n < 64) {
      // Short ASCII (node ids, most keys): build the string in the scan itself. About 5x faster
      // than String.fromCharCode(...subarray), which allocates a view and spreads it.
      const buf = this.buf;
      const end = this.pos + n;
      let s = '';
      let i = this.pos;
      for (; i < end; i++) {
        const c = buf[i]!;
        if (c > 0x7f) break;
        s += String.fromCharCode(c);
      }
      if (i === end) {
        this.pos = end;
        return s;
      }
    }
    let ascii = true;
    for (let i = this.pos; i < this.pos + n; i++) {
      if (this.buf[i]! > 0x7f) {
        ascii = false;
        break;
      }
    }
    let s: string;
    if (ascii) {
      s = n < 64 ? String.fromCharCode(...this.buf.subarray(this.pos, this.pos + n)) : decoder.decode(this.buf.subarray(this.pos, this.pos + n));
    } else {
      try {
        s = decoder.decode(this.buf.subarray(this.pos, this.pos + n));
      } catch {
        throw new MalformedMessageError('invalid UTF-8 string');
      }
    }
    this.pos += n;
    return s;
  }

  optString(): string | null {
    const tag = this.u8();
    if (tag === 0) return null;
    if (tag !== 1) throw new MalformedMessageError(`invalid optional tag ${tag}`);
    return this.string();
  }

  /** Throws unless every byte was consumed. */
  expectEnd(): void {
    if (this.pos !== this.end) throw new MalformedMessageError(`${this.end - this.pos} trailing bytes`);
  }
}
