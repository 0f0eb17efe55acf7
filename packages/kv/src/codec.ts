/**
 * The binary wire forms of key-value commands and results (no JSON). A command is what a
 * client proposes through the log; a result is what every replica computes when it applies the
 * command, and what the runtime caches per client session (Raft thesis §6.3).
 *
 * Command layout:
 * ```
 * op u8 (1 get | 2 put | 3 delete | 4 cas) | key string (uvarint length + UTF-8)
 *   put:    value bytes (uvarint length + bytes)
 *   cas:    expected (u8 0 = absent | u8 1 + bytes) | new value (u8 0 = delete | u8 1 + bytes)
 * ```
 * Result layout:
 * ```
 * type u8 (0 error | 1 get | 2 put | 3 delete | 4 cas)
 *   error:  code u8 (1 malformed | 2 unknown-op) | message string
 *   get:    value  (u8 0 = absent | u8 1 + bytes)
 *   put:    previous (optional bytes, as above)
 *   delete: previous (optional bytes; deleted = previous present)
 *   cas:    ok u8 (0 | 1) | current (optional bytes)
 * ```
 */
import { BinaryReader, BinaryWriter, InvalidArgumentError, MalformedMessageError, utf8Decode, utf8Encode, uvarintSize, writeUvarintAt } from '@synod/log';

/** Operation codes of the command encoding (first byte). */
export const KvOp = {
  Get: 1,
  Put: 2,
  Delete: 3,
  Cas: 4,
} as const;
/** One of the {@link KvOp} values. */
export type KvOp = (typeof KvOp)[keyof typeof KvOp];

/**
 * A key-value command.
 * - `get`: read `key` through the log (serialized with writes; see also `query`).
 * - `put`: set `key` to `value`.
 * - `delete`: remove `key`.
 * - `cas`: compare-and-set. If the current value of `key` equals `expected` (`null`: the key
 *   is absent), set it to `value` (`null`: delete the key); otherwise change nothing.
 */
export type KvCommand =
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'cas'; readonly key: string; readonly expected: Uint8Array | null; readonly value: Uint8Array | null };

/**
 * Codes of error results. `malformed`: the command bytes do not decode (truncated, trailing
 * bytes, invalid UTF-8, bad tag). `unknown-op`: the first byte is not a known {@link KvOp}
 * (e.g. a command from a newer client version).
 */
export type KvErrorCode = 'malformed' | 'unknown-op';

/** The result of `get`: the value, or `null` if the key is absent. */
export interface KvGetResult {
  readonly type: 'get';
  readonly value: Uint8Array | null;
}
/** The result of `put`: the value it replaced, or `null` if the key was absent. */
export interface KvPutResult {
  readonly type: 'put';
  readonly previous: Uint8Array | null;
}
/** The result of `delete`: whether the key existed, and its value then. */
export interface KvDeleteResult {
  readonly type: 'delete';
  readonly deleted: boolean;
  readonly previous: Uint8Array | null;
}
/**
 * The result of `cas`: `ok` if the comparison held and the new value was written; `current`
 * is the key's value after the command (the new value if `ok`, else the value that did not
 * match), `null` if absent.
 */
export interface KvCasResult {
  readonly type: 'cas';
  readonly ok: boolean;
  readonly current: Uint8Array | null;
}
/** The result of a command that could not be applied (every replica returns the same one). */
export interface KvErrorResult {
  readonly type: 'error';
  readonly code: KvErrorCode;
  readonly message: string;
}
/** What {@link KvStateMachine.apply} returns: the result of one command. */
export type KvResult = KvGetResult | KvPutResult | KvDeleteResult | KvCasResult | KvErrorResult;

const ERROR_CODES: readonly KvErrorCode[] = ['malformed', 'unknown-op'];

/** Throws InvalidArgumentError unless `key` is a string that survives UTF-8 encoding exactly. */
export function assertValidKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string, got ${typeof key}`);
  // Lone UTF-16 surrogates would be replaced by U+FFFD when encoded: a different key.
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < key.length) {
      const d = key.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    }
    throw new InvalidArgumentError(`key contains a lone surrogate at ${i} (not valid UTF-16)`);
  }
}

function assertBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new InvalidArgumentError(`${what} must be a Uint8Array`);
}

function writeOpt(w: BinaryWriter, v: Uint8Array | null): void {
  if (v === null) w.u8(0);
  else w.u8(1).bytes(v);
}

function readOpt(r: BinaryReader): Uint8Array | null {
  const tag = r.u8();
  if (tag === 0) return null;
  if (tag !== 1) throw new MalformedMessageError(`invalid optional-bytes tag ${tag}`);
  return r.bytes();
}

/** UTF-8 bytes of a key, or `null` if it is pure ASCII (then its bytes are its char codes). */
function keyBytes(key: string): Uint8Array | null {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0x7f) return utf8Encode(key);
  return null;
}

/**
 * Encodes a command for `ReplicatedLog.propose` into one exactly sized buffer. Throws
 * {@link InvalidArgumentError} for a non-string key, a key with lone surrogates, a
 * non-`Uint8Array` value or an unknown type.
 */
export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  if (!cmd || typeof cmd !== 'object') throw new InvalidArgumentError('command must be an object');
  const key = cmd.key;
  assertValidKey(key);
  let op: KvOp;
  let a: Uint8Array | null = null; // put value, or cas expected
  let b: Uint8Array | null = null; // cas new value
  let tail = 0;
  switch (cmd.type) {
    case 'get':
      op = KvOp.Get;
      break;
    case 'delete':
      op = KvOp.Delete;
      break;
    case 'put':
      op = KvOp.Put;
      assertBytes(cmd.value, 'value');
      a = cmd.value;
      tail = uvarintSize(a.length) + a.length;
      break;
    case 'cas':
      op = KvOp.Cas;
      if (cmd.expected !== null) assertBytes(cmd.expected, 'expected');
      if (cmd.value !== null) assertBytes(cmd.value, 'value');
      a = cmd.expected;
      b = cmd.value;
      tail = 2 + (a ? uvarintSize(a.length) + a.length : 0) + (b ? uvarintSize(b.length) + b.length : 0);
      break;
    default:
      throw new InvalidArgumentError(`unknown command type ${String((cmd as { type?: unknown }).type)}`);
  }
  const kb = keyBytes(key);
  const klen = kb ? kb.length : key.length;
  const out = new Uint8Array(1 + uvarintSize(klen) + klen + tail);
  out[0] = op;
  let pos = writeUvarintAt(out, 1, klen);
  if (kb) {
    out.set(kb, pos);
    pos += klen;
  } else {
    for (let i = 0; i < klen; i++) out[pos++] = key.charCodeAt(i);
  }
  if (op === KvOp.Put) {
    pos = writeUvarintAt(out, pos, a!.length);
    out.set(a!, pos);
  } else if (op === KvOp.Cas) {
    for (const v of [a, b]) {
      if (v === null) {
        out[pos++] = 0;
      } else {
        out[pos++] = 1;
        pos = writeUvarintAt(out, pos, v.length);
        out.set(v, pos);
        pos += v.length;
      }
    }
  }
  return out;
}

/**
 * Decodes a command. Byte strings in the result are views into `bytes` (no copy). Throws
 * {@link MalformedMessageError} for anything {@link encodeKvCommand} cannot produce: an
 * unknown op code (message starts with `unknown op`), truncation, trailing bytes, invalid
 * UTF-8 or bad tags.
 */
export function decodeKvCommand(bytes: Uint8Array): KvCommand {
  const r = new BinaryReader(bytes);
  const op = r.u8();
  let cmd: KvCommand;
  switch (op) {
    case KvOp.Get:
      cmd = { type: 'get', key: r.string() };
      break;
    case KvOp.Put: {
      const key = r.string();
      cmd = { type: 'put', key, value: r.bytes() };
      break;
    }
    case KvOp.Delete:
      cmd = { type: 'delete', key: r.string() };
      break;
    case KvOp.Cas: {
      const key = r.string();
      const expected = readOpt(r);
      const value = readOpt(r);
      cmd = { type: 'cas', key, expected, value };
      break;
    }
    default:
      throw new MalformedMessageError(`unknown op ${op}`);
  }
  r.expectEnd();
  return cmd;
}

/** Encodes a result (for the runtime's session cache and snapshots). Never throws for a valid result. */
export function encodeKvResult(result: KvResult): Uint8Array {
  let w: BinaryWriter;
  switch (result.type) {
    case 'get':
      w = new BinaryWriter(8 + (result.value?.length ?? 0) + 10);
      w.u8(1);
      writeOpt(w, result.value);
      break;
    case 'put':
      w = new BinaryWriter(8 + (result.previous?.length ?? 0) + 10);
      w.u8(2);
      writeOpt(w, result.previous);
      break;
    case 'delete':
      w = new BinaryWriter(8 + (result.previous?.length ?? 0) + 10);
      w.u8(3);
      writeOpt(w, result.previous);
      break;
    case 'cas':
      w = new BinaryWriter(8 + (result.current?.length ?? 0) + 10);
      w.u8(4).u8(result.ok ? 1 : 0);
      writeOpt(w, result.current);
      break;
    case 'error':
      w = new BinaryWriter(16 + result.message.length * 3);
      w.u8(0).u8(ERROR_CODES.indexOf(result.code) + 1).string(result.message);
      break;
    default:
      throw new InvalidArgumentError(`unknown result type ${String((result as { type?: unknown }).type)}`);
  }
  return w.finish();
}

/** Decodes {@link encodeKvResult}'s output (views into `bytes`). Throws {@link MalformedMessageError}. */
export function decodeKvResult(bytes: Uint8Array): KvResult {
  const r = new BinaryReader(bytes);
  const type = r.u8();
  let result: KvResult;
  switch (type) {
    case 0: {
      const code = ERROR_CODES[r.u8() - 1];
      if (!code) throw new MalformedMessageError('unknown error code in result');
      result = { type: 'error', code, message: r.string() };
      break;
    }
    case 1:
      result = { type: 'get', value: readOpt(r) };
      break;
    case 2:
      result = { type: 'put', previous: readOpt(r) };
      break;
    case 3: {
      const previous = readOpt(r);
      result = { type: 'delete', deleted: previous !== null, previous };
      break;
    }
    case 4: {
      const ok = r.u8();
      if (ok > 1) throw new MalformedMessageError('invalid cas ok flag');
      result = { type: 'cas', ok: ok === 1, current: readOpt(r) };
      break;
    }
    default:
      throw new MalformedMessageError(`unknown result type ${type}`);
  }
  r.expectEnd();
  return result;
}

/** UTF-8 bytes of a string value; a `Uint8Array` is returned as is. */
export function toBytes(value: string | Uint8Array): Uint8Array {
  if (typeof value === 'string') return utf8Encode(value);
  assertBytes(value, 'value');
  return value;
}

/** A value as a string (UTF-8), or `null` for `null`. Throws {@link MalformedMessageError} on invalid UTF-8. */
export function toText(value: Uint8Array | null): string | null {
  return value === null ? null : utf8Decode(value);
}

/** Byte-wise equality of two values (`null` equals only `null`). */
export function sameValue(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
