/**
 * {@link KvClient}: a typed client over a replicated log whose state machine is a
 * {@link KvStateMachine}, with optional client sessions for exactly-once writes
 * (Raft thesis §6.3).
 */
import {
  InvalidArgumentError,
  type ProposeOptions,
  type ReadConsistency,
  type ReadOptions,
  SynodError,
  UnsupportedError,
} from '@synod/log';
import {
  assertValidKey,
  encodeKvCommand,
  type KvCasResult,
  type KvCommand,
  type KvDeleteResult,
  type KvErrorCode,
  type KvGetResult,
  type KvPutResult,
  type KvResult,
  toBytes,
  toText,
} from './codec.js';
import type { KvQuery, KvQueryResult } from './state-machine.js';

/**
 * What the client needs from a replica: the matching subset of `ReplicatedLog` from
 * `@synod/log` (a `ReplicatedLog<KvResult, KvQuery, KvQueryResult>` is one). Any object with
 * these methods works, e.g. a wrapper that forwards to the current leader.
 */
export interface KvLog {
  propose(command: Uint8Array, options?: ProposeOptions): Promise<KvResult>;
  read(query: KvQuery, options?: ReadOptions): Promise<KvQueryResult>;
  openSession(options?: { timeoutMs?: number }): Promise<number>;
  closeSession(id: number, options?: { timeoutMs?: number }): Promise<void>;
}

/**
 * A command came back as an error result (see {@link KvErrorCode}): it reached the log but
 * the state machine could not apply it, on every replica alike. With this client's own
 * encoding that only happens across incompatible versions. `code` is `MALFORMED_MESSAGE` for
 * `malformed` and `UNSUPPORTED` for `unknown-op`.
 */
export class KvCommandError extends SynodError {
  /** The state machine's error code. */
  readonly kvCode: KvErrorCode;
  constructor(kvCode: KvErrorCode, message: string) {
    super(kvCode === 'unknown-op' ? 'UNSUPPORTED' : 'MALFORMED_MESSAGE', message);
    this.kvCode = kvCode;
  }
}

/**
 * Read consistency of {@link KvClient.get}: the runtime's `linearizable` (ReadIndex, the
 * default), `lease` or `stale` (see `ReadConsistency` in `@synod/log`), or `log`, which
 * proposes a `get` command through the log (linearizable with any core, at the cost of a log
 * entry and a disk write).
 */
export type KvReadConsistency = ReadConsistency | 'log';

/** Options of a read. */
export interface KvReadOptions {
  /** Default `linearizable`. */
  readonly consistency?: KvReadConsistency;
  /** Timeout in ms; default: the log's `requestTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** Options of a write through {@link KvClient}. */
export interface KvWriteOptions {
  /** Timeout in ms; default: the log's `requestTimeoutMs`. On timeout the outcome is unknown. */
  readonly timeoutMs?: number;
  /**
   * Run the command in a client session (exactly-once; Raft thesis §6.3). A retry with the
   * same `id` and `seq` is applied at most once and returns the cached result. Prefer
   * {@link KvClient.openSession}, which numbers commands for you.
   */
  readonly session?: { readonly id: number; readonly seq: number };
}

/** Options of {@link KvClient.openSession} and {@link KvClient.resumeSession}. */
export interface KvSessionOptions {
  /**
   * How many times a command that timed out (outcome unknown) is re-proposed with the same
   * sequence number before the TimeoutError is passed on. Default 2. Safe: the session makes
   * the retry exactly-once.
   */
  readonly retries?: number;
  /** Timeout of each attempt in ms; default: the log's `requestTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** Options of one command in a {@link KvSession}. */
export interface KvSessionWriteOptions {
  /** Timeout of each attempt in ms (overrides the session's). */
  readonly timeoutMs?: number;
  /**
   * Use this sequence number instead of the next one: to re-issue a command whose outcome is
   * unknown (e.g. after a failover, on another replica's client via `resumeSession`).
   */
  readonly seq?: number;
}

/** Options of {@link KvClient.keys}. */
export interface KvKeysOptions extends KvReadOptions {
  /** Only keys starting with this. */
  readonly prefix?: string;
  /** Only keys after this one (exclusive), for paging. */
  readonly after?: string;
  /** At most this many keys (default 1000). */
  readonly limit?: number;
}

type KvSuccess = Exclude<KvResult, { type: 'error' }>;

function expectType(result: KvResult, type: KvCommand['type']): KvSuccess {
  if (result.type === type) return result as KvSuccess;
  if (result.type === 'error') throw new KvCommandError(result.code, result.message);
  throw new UnsupportedError(`expected a ${type} result, got ${String((result as { type?: unknown })?.type)}; is the state machine a KvStateMachine?`);
}

/**
 * A typed key-value client over one replica's log.
 *
 * Errors: rejects with the log's errors (NotLeaderError with `leaderHint`, TimeoutError —
 * outcome unknown for writes —, StoppedError, SessionExpiredError, StaleSequenceError...),
 * {@link KvCommandError} for an error result, and {@link InvalidArgumentError} for a key that
 * is not a well-formed string or a value that is neither a string nor a `Uint8Array`.
 *
 * @example
 * ```ts
 * const kv = new KvClient(log);          // log: ReplicatedLog<KvResult, KvQuery, KvQueryResult>
 * await kv.put('color', 'blue');         // { type: 'put', previous: null }
 * await kv.getText('color');             // 'blue' (linearizable)
 * await kv.cas('color', 'blue', 'red');  // { type: 'cas', ok: true, current: <red> }
 * const s = await kv.openSession();      // exactly-once writes with automatic retry
 * await s.put('n', '1');
 * ```
 */
export class KvClient {
  /** @param log the replica to talk to (see {@link KvLog}); the client keeps no other state. */
  constructor(readonly log: KvLog) {}

  /** Proposes any {@link KvCommand} and resolves with its (non-error) result. */
  async execute(cmd: KvCommand, options: KvWriteOptions = {}): Promise<KvSuccess> {
    const result = await this.log.propose(encodeKvCommand(cmd), proposeOptions(options));
    return expectType(result, cmd.type);
  }

  /** Sets `key` to `value` (a string is stored as UTF-8). Resolves with the previous value. */
  async put(key: string, value: string | Uint8Array, options?: KvWriteOptions): Promise<KvPutResult> {
    return (await this.execute({ type: 'put', key, value: toBytes(value) }, options)) as KvPutResult;
  }

  /** Removes `key`. Resolves with whether it existed and its value then. */
  async delete(key: string, options?: KvWriteOptions): Promise<KvDeleteResult> {
    return (await this.execute({ type: 'delete', key }, options)) as KvDeleteResult;
  }

  /**
   * Compare-and-set: if `key`'s value equals `expected` (`null`: absent), set it to `value`
   * (`null`: delete). Resolves with `ok` and the key's value after the command.
   */
  async cas(key: string, expected: string | Uint8Array | null, value: string | Uint8Array | null, options?: KvWriteOptions): Promise<KvCasResult> {
    const cmd: KvCommand = { type: 'cas', key, expected: expected === null ? null : toBytes(expected), value: value === null ? null : toBytes(value) };
    return (await this.execute(cmd, options)) as KvCasResult;
  }

  /** The value of `key`, or `null`, at the requested consistency (default `linearizable`). */
  async get(key: string, options: KvReadOptions = {}): Promise<Uint8Array | null> {
    assertValidKey(key);
    if (options.consistency === 'log') {
      const r = (await this.execute({ type: 'get', key }, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs })) as KvGetResult;
      return r.value;
    }
    const r = await this.log.read({ type: 'get', key }, readOptions(options));
    if (r.type !== 'get') throw new UnsupportedError(`expected a get query result, got ${r.type}`);
    return r.value;
  }

  /** {@link get} decoded as UTF-8 (MalformedMessageError if the value is not valid UTF-8). */
  async getText(key: string, options?: KvReadOptions): Promise<string | null> {
    return toText(await this.get(key, options));
  }

  /** Number of keys and total value bytes. */
  async size(options: KvReadOptions = {}): Promise<{ keys: number; valueBytes: number }> {
    const r = await this.log.read({ type: 'size' }, readOptions(options));
    if (r.type !== 'size') throw new UnsupportedError(`expected a size query result, got ${r.type}`);
    return { keys: r.keys, valueBytes: r.valueBytes };
  }

  /** Keys in ascending order (see `KvQuery`), with `more` if the limit cut the list. */
  async keys(options: KvKeysOptions = {}): Promise<{ keys: string[]; more: boolean }> {
    const q: KvQuery = {
      type: 'keys',
      ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
      ...(options.after !== undefined ? { after: options.after } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
    };
    const r = await this.log.read(q, readOptions(options));
    if (r.type !== 'keys') throw new UnsupportedError(`expected a keys query result, got ${r.type}`);
    return { keys: r.keys, more: r.more };
  }

  /** Opens a client session through the log and returns a {@link KvSession} for it. */
  async openSession(options: KvSessionOptions = {}): Promise<KvSession> {
    const id = await this.log.openSession(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
    return new KvSession(this, id, 0, options);
  }

  /**
   * Continues an existing session (e.g. one opened through another replica) whose last issued
   * sequence number is `lastSeq`.
   */
  resumeSession(id: number, lastSeq: number, options: KvSessionOptions = {}): KvSession {
    if (!Number.isSafeInteger(id) || id < 1) throw new InvalidArgumentError(`session id must be a positive integer, got ${id}`);
    if (!Number.isSafeInteger(lastSeq) || lastSeq < 0) throw new InvalidArgumentError(`lastSeq must be a non-negative integer, got ${lastSeq}`);
    return new KvSession(this, id, lastSeq, options);
  }
}

/**
 * A client session (Raft thesis §6.3): every write gets the next sequence number, runs
 * exactly once even when retried, and commands run one at a time (the runtime caches only the
 * latest result per session, so the session queues commands instead of overlapping them).
 * A command that times out is re-proposed with the same sequence number up to `retries` times.
 */
export class KvSession {
  private seq: number;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly retries: number;
  private readonly timeoutMs: number | undefined;
  private closed = false;

  /** Use {@link KvClient.openSession} or {@link KvClient.resumeSession}. */
  constructor(
    private readonly client: KvClient,
    /** The session id (the log index of its open-session entry). */
    readonly id: number,
    lastSeq: number,
    options: KvSessionOptions = {},
  ) {
    const retries = options.retries ?? 2;
    if (!Number.isSafeInteger(retries) || retries < 0) throw new InvalidArgumentError(`retries must be a non-negative integer, got ${retries}`);
    this.retries = retries;
    this.timeoutMs = options.timeoutMs;
    this.seq = lastSeq;
  }

  /** The highest sequence number issued so far (0 before the first command). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Runs any command in the session. */
  execute(cmd: KvCommand, options: KvSessionWriteOptions = {}): Promise<KvSuccess> {
    if (this.closed) return Promise.reject(new InvalidArgumentError(`session ${this.id} is closed`));
    let bytes: Uint8Array;
    let seq: number;
    try {
      bytes = encodeKvCommand(cmd);
      if (options.seq !== undefined) {
        if (!Number.isSafeInteger(options.seq) || options.seq < 1) throw new InvalidArgumentError(`seq must be a positive integer, got ${options.seq}`);
        seq = options.seq;
        if (seq > this.seq) this.seq = seq;
      } else {
        seq = ++this.seq;
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const run = async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          const result = await this.client.log.propose(bytes, {
            session: { id: this.id, seq },
            ...(timeoutMs === undefined ? {} : { timeoutMs }),
          });
          return expectType(result, cmd.type);
        } catch (err) {
          if (attempt < this.retries && (err as { code?: unknown })?.code === 'TIMEOUT') continue;
          throw err;
        }
      }
    };
    const p: Promise<KvSuccess> = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Exactly-once {@link KvClient.put}. */
  async put(key: string, value: string | Uint8Array, options?: KvSessionWriteOptions): Promise<KvPutResult> {
    return (await this.execute({ type: 'put', key, value: toBytes(value) }, options)) as KvPutResult;
  }

  /** Exactly-once {@link KvClient.delete}. */
  async delete(key: string, options?: KvSessionWriteOptions): Promise<KvDeleteResult> {
    return (await this.execute({ type: 'delete', key }, options)) as KvDeleteResult;
  }

  /** Exactly-once {@link KvClient.cas}. */
  async cas(key: string, expected: string | Uint8Array | null, value: string | Uint8Array | null, options?: KvSessionWriteOptions): Promise<KvCasResult> {
    const cmd: KvCommand = { type: 'cas', key, expected: expected === null ? null : toBytes(expected), value: value === null ? null : toBytes(value) };
    return (await this.execute(cmd, options)) as KvCasResult;
  }

  /** Closes the session through the log (after queued commands). Later commands reject. */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    await this.client.log.closeSession(this.id, options);
  }
}

function proposeOptions(o: KvWriteOptions): ProposeOptions {
  return {
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.session !== undefined ? { session: o.session } : {}),
  };
}

function readOptions(o: KvReadOptions): ReadOptions {
  const consistency = o.consistency ?? 'linearizable';
  if (consistency === 'log') throw new InvalidArgumentError("consistency 'log' is only available for get");
  return { consistency, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) };
}
