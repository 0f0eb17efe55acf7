/**
 * {@link KvStateMachine}: a deterministic key-value {@link StateMachine} (hashicorp/raft's FSM
 * shape) with get, put, delete and compare-and-set, canonical snapshots, and the result codec
 * the runtime's client sessions need.
 */
import { type ApplyContext, BinaryReader, BinaryWriter, InvalidArgumentError, MalformedMessageError, type StateMachine } from '@synod/log';
import {
  decodeKvCommand,
  decodeKvResult,
  encodeKvResult,
  type KvCasResult,
  type KvDeleteResult,
  type KvErrorResult,
  type KvGetResult,
  KvOp,
  type KvPutResult,
  type KvResult,
  sameValue,
} from './codec.js';

/**
 * A read served by {@link KvStateMachine.query} (through `ReplicatedLog.read`, at the
 * consistency the caller picks):
 * - `get`: one key's value;
 * - `size`: number of keys and total value bytes;
 * - `keys`: keys in ascending UTF-16 code-unit order, optionally only those starting with
 *   `prefix`, only those after `after` (exclusive, for paging), at most `limit` (default 1000).
 */
export type KvQuery =
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'size' }
  | { readonly type: 'keys'; readonly prefix?: string; readonly after?: string; readonly limit?: number };

/** What {@link KvStateMachine.query} returns, matching the query's `type`. */
export type KvQueryResult =
  | { readonly type: 'get'; readonly value: Uint8Array | null }
  | { readonly type: 'size'; readonly keys: number; readonly valueBytes: number }
  | { readonly type: 'keys'; readonly keys: string[]; readonly more: boolean };

/** Options of {@link KvStateMachine}. */
export interface KvStateMachineOptions {
  /**
   * Copy each stored value out of the command (or snapshot) buffer it arrived in. Default
   * `true`: a value then never keeps a larger buffer alive (a transport frame holding many
   * entries, a whole snapshot). `false` stores views (zero-copy, less allocation) and suits
   * commands that are their own buffer, as in the simulator. Results are the same either way.
   */
  readonly copyValues?: boolean;
}

/** Default `limit` of a `keys` query. */
export const DEFAULT_KEYS_LIMIT = 1000;

const SNAPSHOT_MAGIC = 0x4b; // 'K'
const SNAPSHOT_VERSION = 1;
const EMPTY = new Uint8Array(0);

/**
 * The key-value state machine. Keys are strings, values `Uint8Array`s (treated as immutable:
 * results hand out the stored arrays, never copies, so callers must not mutate them).
 *
 * Determinism: the same commands in the same order give the same results and the same
 * snapshot bytes on every replica; snapshots are canonical (keys sorted), so two replicas with
 * the same contents produce identical snapshots regardless of history.
 *
 * `apply` never throws: a malformed command yields a {@link KvErrorResult} on every replica.
 *
 * @example
 * ```ts
 * const kv = new KvStateMachine();
 * kv.apply(encodeKvCommand({ type: 'put', key: 'a', value: toBytes('1') }), { index: 1 });
 * kv.query({ type: 'get', key: 'a' }); // { type: 'get', value: Uint8Array [0x31] }
 * ```
 */
export class KvStateMachine implements StateMachine<KvResult, KvQuery, KvQueryResult> {
  private store = new Map<string, Uint8Array>();
  private valueBytes = 0;
  private readonly copy: boolean;
  /** Commands applied since construction (error results included). */
  appliedCommands = 0;
  /** Commands that produced an error result. */
  rejectedCommands = 0;
  /** Log index of the last command applied since construction (0 if none; not reset by restore). */
  lastAppliedIndex = 0;

  /** Creates an empty store. See {@link KvStateMachineOptions}. */
  constructor(options: KvStateMachineOptions = {}) {
    this.copy = options.copyValues ?? true;
  }

  /** Number of keys. */
  get size(): number {
    return this.store.size;
  }

  /** Applies one committed command and returns its result. Never throws. */
  apply(command: Uint8Array, ctx: ApplyContext): KvResult {
    this.appliedCommands++;
    this.lastAppliedIndex = ctx?.index ?? this.lastAppliedIndex;
    let result: KvResult;
    try {
      result = this.applyUnchecked(command);
    } catch (err) {
      result = errorResult(err);
    }
    if (result.type === 'error') this.rejectedCommands++;
    return result;
  }

  private applyUnchecked(command: Uint8Array): KvResult {
    if (!(command instanceof Uint8Array)) return { type: 'error', code: 'malformed', message: 'command is not a Uint8Array' };
    const op = command[0];
    if (op === undefined) return { type: 'error', code: 'malformed', message: 'empty command' };
    if (op < KvOp.Get || op > KvOp.Cas) return { type: 'error', code: 'unknown-op', message: `unknown op ${op}` } satisfies KvErrorResult;
    const cmd = decodeKvCommand(command);
    switch (cmd.type) {
      case 'get':
        return { type: 'get', value: this.store.get(cmd.key) ?? null } satisfies KvGetResult;
      case 'put': {
        const previous = this.store.get(cmd.key) ?? null;
        this.set(cmd.key, cmd.value, previous);
        return { type: 'put', previous } satisfies KvPutResult;
      }
      case 'delete': {
        const previous = this.store.get(cmd.key) ?? null;
        if (previous !== null) {
          this.store.delete(cmd.key);
          this.valueBytes -= previous.length;
        }
        return { type: 'delete', deleted: previous !== null, previous } satisfies KvDeleteResult;
      }
      case 'cas': {
        const current = this.store.get(cmd.key) ?? null;
        if (!sameValue(current, cmd.expected)) return { type: 'cas', ok: false, current } satisfies KvCasResult;
        if (cmd.value === null) {
          if (current !== null) {
            this.store.delete(cmd.key);
            this.valueBytes -= current.length;
          }
          return { type: 'cas', ok: true, current: null } satisfies KvCasResult;
        }
        return { type: 'cas', ok: true, current: this.set(cmd.key, cmd.value, current) } satisfies KvCasResult;
      }
    }
  }

  /** Stores `value` (copied if configured) and returns the stored array. */
  private set(key: string, value: Uint8Array, previous: Uint8Array | null): Uint8Array {
    const stored = this.copy ? (value.length === 0 ? EMPTY : value.slice()) : value;
    this.store.set(key, stored);
    this.valueBytes += stored.length - (previous?.length ?? 0);
    return stored;
  }

  /**
   * Answers a read without changing state. Throws {@link InvalidArgumentError} for an unknown
   * query type, a non-string key, or a `limit` that is not a positive integer.
   */
  query(q: KvQuery): KvQueryResult {
    if (!q || typeof q !== 'object') throw new InvalidArgumentError('query must be an object');
    switch (q.type) {
      case 'get':
        if (typeof q.key !== 'string') throw new InvalidArgumentError('query key must be a string');
        return { type: 'get', value: this.store.get(q.key) ?? null };
      case 'size':
        return { type: 'size', keys: this.store.size, valueBytes: this.valueBytes };
      case 'keys': {
        const limit = q.limit ?? DEFAULT_KEYS_LIMIT;
        if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidArgumentError(`limit must be a positive integer, got ${limit}`);
        if (q.prefix !== undefined && typeof q.prefix !== 'string') throw new InvalidArgumentError('prefix must be a string');
        if (q.after !== undefined && typeof q.after !== 'string') throw new InvalidArgumentError('after must be a string');
        const prefix = q.prefix ?? '';
        const after = q.after;
        const matching: string[] = [];
        for (const k of this.store.keys()) {
          if (k.startsWith(prefix) && (after === undefined || k > after)) matching.push(k);
        }
        matching.sort();
        const more = matching.length > limit;
        if (more) matching.length = limit;
        return { type: 'keys', keys: matching, more };
      }
      default:
        throw new InvalidArgumentError(`unknown query type ${String((q as { type?: unknown }).type)}`);
    }
  }

  /**
   * Serializes the whole state, canonically: magic u8 `0x4b` | version u8 `1` | count uvarint |
   * (key string | value bytes)* in ascending key order (UTF-16 code units). O(n log n).
   */
  snapshot(): Uint8Array {
    const keys = [...this.store.keys()].sort();
    let size = 16;
    for (const k of keys) size += k.length * 3 + 10;
    const w = new BinaryWriter(size + this.valueBytes);
    w.u8(SNAPSHOT_MAGIC).u8(SNAPSHOT_VERSION).uvarint(keys.length);
    for (const k of keys) w.string(k).bytes(this.store.get(k)!);
    return w.finish();
  }

  /**
   * Replaces the whole state with a {@link snapshot}'s (an empty array restores the empty
   * state). Atomic: on invalid input it throws {@link MalformedMessageError} and keeps the
   * current state.
   */
  restore(data: Uint8Array): void {
    const next = new Map<string, Uint8Array>();
    let bytes = 0;
    if (data.length > 0) {
      const r = new BinaryReader(data);
      if (r.u8() !== SNAPSHOT_MAGIC) throw new MalformedMessageError('not a @synod/kv snapshot');
      const version = r.u8();
      if (version !== SNAPSHOT_VERSION) throw new MalformedMessageError(`unsupported @synod/kv snapshot version ${version}`);
      const n = r.uvarint();
      if (n > r.remaining) throw new MalformedMessageError('snapshot key count larger than input');
      let prev: string | null = null;
      for (let i = 0; i < n; i++) {
        const k = r.string();
        if (prev !== null && !(k > prev)) throw new MalformedMessageError('snapshot keys are not strictly ascending');
        const v = r.bytes();
        const stored = this.copy ? v.slice() : v;
        next.set(k, stored);
        bytes += stored.length;
        prev = k;
      }
      r.expectEnd();
    }
    this.store = next;
    this.valueBytes = bytes;
  }

  /** See {@link encodeKvResult}. */
  encodeResult(result: KvResult): Uint8Array {
    return encodeKvResult(result);
  }

  /** See {@link decodeKvResult}. */
  decodeResult(bytes: Uint8Array): KvResult {
    return decodeKvResult(bytes);
  }

  /** The value of `key` (the stored array; do not mutate), or `null`. Local, no consensus. */
  get(key: string): Uint8Array | null {
    return this.store.get(key) ?? null;
  }

  /** Iterates over `[key, value]` pairs in insertion order. Local, no consensus. */
  entries(): IterableIterator<[string, Uint8Array]> {
    return this.store.entries();
  }
}

function errorResult(err: unknown): KvErrorResult {
  const message = err instanceof Error ? err.message : String(err);
  return { type: 'error', code: 'malformed', message: `malformed command: ${message}` };
}
