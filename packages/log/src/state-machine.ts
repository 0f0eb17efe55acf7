/**
 * The application contract (hashicorp/raft's FSM): a deterministic state machine fed with
 * committed commands in log order.
 */

/**
 * Context of one applied command. The runtime reuses one object for every call: read it during
 * `apply`, do not keep a reference to it.
 */
export interface ApplyContext {
  /** Log index (slot) of the command. */
  readonly index: number;
}

/**
 * A deterministic state machine. Given the same commands in the same order, every replica
 * must reach the same state and return the same results.
 *
 * @typeParam Result what `apply` returns (the value a `propose()` promise resolves with).
 * @typeParam Query what `query` accepts (a read request).
 * @typeParam QueryResult what `query` returns.
 */
export interface StateMachine<Result = unknown, Query = unknown, QueryResult = unknown> {
  /** Applies one committed command. Must not throw for bad commands: return an error result. */
  apply(command: Uint8Array, ctx: ApplyContext): Result;
  /** Answers a read against the current state, without changing it. */
  query(query: Query): QueryResult;
  /** Serializes the whole state. */
  snapshot(): Uint8Array;
  /** Replaces the whole state with a snapshot. */
  restore(data: Uint8Array): void;
  /**
   * Encodes a result so the runtime can keep it in a client session's cache and carry it in
   * snapshots (Raft thesis §6.3). Needed only if sessions are used.
   */
  encodeResult?(result: Result): Uint8Array;
  /** Inverse of {@link StateMachine.encodeResult}. */
  decodeResult?(bytes: Uint8Array): Result;
}
