/**
 * CRC-32 checksums of stored rows (the IEEE 802.3 / zlib polynomial 0xEDB88320, the one of
 * gzip and PNG). Node's native `zlib.crc32` (Node ≥ 20.15) is used when present; older Node 20
 * releases get the table-driven fallback {@link crc32Js}, which computes the same values.
 *
 * A checksum guards against silent corruption inside a row (a flipped bit in a payload, a term
 * or an index) that SQLite itself does not notice: its `integrity_check` verifies the b-tree
 * structure, not the bytes of a blob.
 */
import * as zlib from 'node:zlib';

let table: Uint32Array | null = null;

function crcTable(): Uint32Array {
  if (table) return table;
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  table = t;
  return t;
}

/**
 * CRC-32 of `data` in plain JavaScript, continuing from `value` (the CRC of the bytes before
 * `data`; 0 to start). Same results as `zlib.crc32(data, value)`. Returns an unsigned 32-bit integer.
 */
export function crc32Js(data: Uint8Array, value = 0): number {
  const t = crcTable();
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const native: ((data: Uint8Array, value?: number) => number) | undefined =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? (zlib as { crc32: (d: Uint8Array, v?: number) => number }).crc32 : undefined;

/**
 * CRC-32 of `data`, continuing from `value` (0 to start): `zlib.crc32` when the running Node
 * has it, else {@link crc32Js}. Returns an unsigned 32-bit integer.
 */
export function crc32(data: Uint8Array, value = 0): number {
  // zlib's crc32 answers 0 (its initial value) for a buffer without backing memory, e.g. an
  // empty blob from better-sqlite3, instead of `value`: empty input never changes a CRC.
  if (data.length === 0) return value >>> 0;
  // The native call costs about as much as the JavaScript loop over ~64 bytes.
  return native && data.length >= 64 ? native(data, value) : crc32Js(data, value);
}

const header = new Uint8Array(17);
const headerView = new DataView(header.buffer);
const TWO_32 = 2 ** 32;

/** Fills the reusable 17-byte header: a and b as big-endian u64, then the byte c. */
function fillHeader(a: number, b: number, c: number): Uint8Array {
  headerView.setUint32(0, Math.floor(a / TWO_32));
  headerView.setUint32(4, a >>> 0);
  headerView.setUint32(8, Math.floor(b / TWO_32));
  headerView.setUint32(12, b >>> 0);
  header[16] = c;
  return header;
}

/**
 * Checksum of one log entry: CRC-32 of `index` and `term` (big-endian u64 each), `type` (one
 * byte), then `data`. Integers must be in 0..2^53-1 (index, term) and 0..255 (type).
 */
export function entryChecksum(index: number, term: number, type: number, data: Uint8Array): number {
  return crc32(data, crc32Js(fillHeader(index, term, type)));
}

/**
 * Checksum of the snapshot row: CRC-32 of `index` and `term` (big-endian u64 each, then a zero
 * byte), the encoded configuration, then the snapshot bytes.
 */
export function snapshotChecksum(index: number, term: number, config: Uint8Array, data: Uint8Array): number {
  return crc32(data, crc32(config, crc32Js(fillHeader(index, term, 0))));
}

/**
 * Checksum of the hard state row: CRC-32 of `term` and `commit` (big-endian u64 each), a byte
 * 1 if there is a vote (0 if `null`), then the vote's UTF-8 bytes.
 */
export function hardStateChecksum(term: number, vote: string | null, commit: number): number {
  const h = crc32Js(fillHeader(term, commit, vote === null ? 0 : 1));
  return vote === null ? h : crc32(Buffer.from(vote, 'utf8'), h);
}
