/**
 * `@synod/kv`: a key-value `StateMachine` for synod (get, put, delete, compare-and-set;
 * binary commands; canonical snapshots) and a typed client with exactly-once sessions.
 * See the package README for a runnable example.
 */
export {
  KvOp,
  encodeKvCommand,
  decodeKvCommand,
  encodeKvResult,
  decodeKvResult,
  assertValidKey,
  toBytes,
  toText,
  sameValue,
  type KvCommand,
  type KvResult,
  type KvGetResult,
  type KvPutResult,
  type KvDeleteResult,
  type KvCasResult,
  type KvErrorResult,
  type KvErrorCode,
} from './codec.js';
export {
  KvStateMachine,
  DEFAULT_KEYS_LIMIT,
  type KvQuery,
  type KvQueryResult,
  type KvStateMachineOptions,
} from './state-machine.js';
export {
  KvClient,
  KvSession,
  KvCommandError,
  type KvLog,
  type KvReadConsistency,
  type KvReadOptions,
  type KvWriteOptions,
  type KvSessionOptions,
  type KvSessionWriteOptions,
  type KvKeysOptions,
} from './client.js';
