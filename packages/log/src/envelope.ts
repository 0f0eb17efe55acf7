/**
 * The runtime's header on every `Normal` entry it proposes. Cores never look inside; the
 * runtime reads it back when the entry is applied, on every replica, to (1) resolve the
 * proposer's promise, (2) deduplicate session commands (Raft thesis §6.3), and (3) advance
 * the log's notion of time used to expire sessions deterministically.
 *
 * Layout: kind u8 | origin string | origin tag uvarint | request uvarint | time uvarint |
 * (kind = Session: session uvarint | seq uvarint) | (kind = CloseSession: session uvarint) |
 * command bytes (the rest).
 */
import { BinaryReader, BinaryWriter, utf8Decode, uvarintSize, writeUvarintAt } from './binary.js';
import { MalformedMessageError } from './errors.js';
import type { NodeId } from './types.js';

/** Kinds of runtime entries. */
export const CommandKind = {
  /** A command without a session (at-least-once on retry). */
  Plain: 0,
  /** A command within a client session (exactly-once). */
  Session: 1,
  /** Opens a session; its id is the entry's index. */
  OpenSession: 2,
  /** Closes a session. */
  CloseSession: 3,
} as const;
/** One of the {@link CommandKind} values. */
export type CommandKind = (typeof CommandKind)[keyof typeof CommandKind];

/** A decoded command header plus the command payload (a view, no copy). */
export interface CommandEnvelope {
  readonly kind: CommandKind;
  /** Node whose runtime proposed it. */
  readonly origin: NodeId;
  /** Random tag of that runtime's incarnation, so a restarted node never matches old requests. */
  readonly originTag: number;
  /** Request number within that incarnation. */
  readonly request: number;
  /** Proposer's wall clock in ms when proposed. */
  readonly time: number;
  /** Session id (Session, CloseSession), else 0. */
  readonly session: number;
  /** Sequence number within the session (Session), else 0. */
  readonly seq: number;
  /** The application command. */
  readonly payload: Uint8Array;
}

const originCache = new Map<string, Uint8Array>();

/** The length-prefixed UTF-8 bytes of an origin id (cached: a runtime proposes with one id). */
export function encodeOrigin(origin: NodeId): Uint8Array {
  let b = originCache.get(origin);
  if (!b) {
    const w = new BinaryWriter(8 + origin.length * 3);
    w.string(origin);
    b = w.toBytes();
    if (originCache.size > 1024) originCache.clear();
    originCache.set(origin, b);
  }
  return b;
}

/**
 * Encodes a command and its header into one exactly-sized buffer: the only copy of the
 * payload on the write path. Throws RangeError for negative or non-integer numbers.
 */
export function encodeCommand(e: Omit<CommandEnvelope, 'payload'>, payload: Uint8Array): Uint8Array {
  return encodeCommandWith(e.kind, encodeOrigin(e.origin), e.originTag, e.request, e.time, e.session, e.seq, payload);
}

function checkField(v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`command header field out of range: ${v}`);
}

/**
 * {@link encodeCommand} with positional arguments and pre-encoded origin bytes (from
 * {@link encodeOrigin}): the runtime's allocation-free path (one buffer, nothing else).
 */
export function encodeCommandWith(
  kind: CommandKind,
  origin: Uint8Array,
  originTag: number,
  request: number,
  time: number,
  session: number,
  seq: number,
  payload: Uint8Array,
): Uint8Array {
  checkField(originTag);
  checkField(request);
  checkField(session);
  checkField(seq);
  const t = time > 0 ? Math.floor(time) : 0;
  let size = 1 + origin.length + uvarintSize(originTag) + uvarintSize(request) + uvarintSize(t) + payload.length;
  if (kind === CommandKind.Session) size += uvarintSize(session) + uvarintSize(seq);
  else if (kind === CommandKind.CloseSession) size += uvarintSize(session);
  const buf = new Uint8Array(size);
  buf[0] = kind;
  buf.set(origin, 1);
  let pos = 1 + origin.length;
  pos = writeUvarintAt(buf, pos, originTag);
  pos = writeUvarintAt(buf, pos, request);
  pos = writeUvarintAt(buf, pos, t);
  if (kind === CommandKind.Session) {
    pos = writeUvarintAt(buf, pos, session);
    pos = writeUvarintAt(buf, pos, seq);
  } else if (kind === CommandKind.CloseSession) {
    pos = writeUvarintAt(buf, pos, session);
  }
  if (payload.length > 0) buf.set(payload, pos);
  return buf;
}

/** A reusable, mutable command header filled by {@link parseCommandHeader}. */
export interface CommandHeader {
  kind: CommandKind;
  /** Whether the origin equals the `origin` bytes passed to the parser. */
  mine: boolean;
  originTag: number;
  request: number;
  time: number;
  session: number;
  seq: number;
  /** Offset of the payload in the entry data. */
  payloadOffset: number;
}

/**
 * Parses a command header into `out` without allocating: the origin is compared byte-wise with
 * `origin` (from {@link encodeOrigin}) instead of being decoded. Returns false (leaving `out`
 * unspecified) if `data` is not a well-formed command. The runtime's apply path uses this on
 * every replica for every entry.
 */
export function parseCommandHeader(data: Uint8Array, origin: Uint8Array, out: CommandHeader): boolean {
  const n = data.length;
  if (n < 1) return false;
  const kind = data[0]!;
  if (kind > 3) return false;
  cursor = 1;
  // Origin: varint length + bytes; compared against ours (which includes its length prefix).
  const start = cursor;
  const len = varintAt(data);
  if (len < 0) return false;
  const strStart = cursor;
  const end = strStart + len;
  if (end > n) return false;
  let mine = end - start === origin.length;
  if (mine) {
    for (let i = 0; i < origin.length; i++) {
      if (data[start + i] !== origin[i]) {
        mine = false;
        break;
      }
    }
  }
  if (!mine) {
    // Another proposer's origin: it must be valid UTF-8, as decodeCommand requires (ASCII, the
    // common case, needs no decoding).
    for (let i = strStart; i < end; i++) {
      if (data[i]! >= 0x80) {
        if (!isUtf8(data.subarray(strStart, end))) return false;
        break;
      }
    }
  }
  cursor = end;
  const fields = kind === CommandKind.Session ? 5 : kind === CommandKind.CloseSession ? 4 : 3;
  const vals = scratch;
  for (let f = 0; f < fields; f++) {
    const v = varintAt(data);
    if (v < 0) return false;
    vals[f] = v;
  }
  const pos = cursor;
  out.kind = kind as CommandKind;
  out.mine = mine;
  out.originTag = vals[0]!;
  out.request = vals[1]!;
  out.time = vals[2]!;
  out.session = fields >= 4 ? vals[3]! : 0;
  out.seq = fields === 5 ? vals[4]! : 0;
  out.payloadOffset = pos;
  return true;
}

const scratch: number[] = [0, 0, 0, 0, 0];

/** Read position of {@link varintAt} (module state: parsing is synchronous and allocation-free). */
let cursor = 0;

/**
 * Reads an unsigned LEB128 varint of `data` at {@link cursor} and advances it; -1 if it is
 * truncated, longer than 8 bytes or above 2^53 (what BinaryReader.uvarint refuses).
 */
function varintAt(data: Uint8Array): number {
  let v = 0;
  let m = 1;
  for (let i = 0; ; i++) {
    if (cursor >= data.length || i >= 8) return -1;
    const b = data[cursor++]!;
    v += (b & 0x7f) * m;
    if (b < 0x80) return v > Number.MAX_SAFE_INTEGER ? -1 : v;
    m *= 0x80;
  }
}

function isUtf8(b: Uint8Array): boolean {
  try {
    utf8Decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Decodes {@link encodeCommand}'s output. Throws {@link MalformedMessageError}. */
export function decodeCommand(data: Uint8Array): CommandEnvelope {
  const r = new BinaryReader(data);
  const kind = r.u8();
  if (kind > 3) throw new MalformedMessageError(`unknown command kind ${kind}`);
  const origin = r.string();
  const originTag = r.uvarint();
  const request = r.uvarint();
  const time = r.uvarint();
  let session = 0;
  let seq = 0;
  if (kind === CommandKind.Session) {
    session = r.uvarint();
    seq = r.uvarint();
  } else if (kind === CommandKind.CloseSession) {
    session = r.uvarint();
  }
  const payload = r.raw(r.remaining);
  return { kind: kind as CommandKind, origin, originTag, request, time, session, seq, payload };
}
