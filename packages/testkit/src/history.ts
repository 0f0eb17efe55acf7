/**
 * Client histories: every operation a client invoked, with its invocation and completion
 * (Jepsen's `:invoke` / `:ok` / `:fail` / `:info` events folded into one record per operation).
 *
 * Real-time order is kept by a logical event counter (`call`, `return`) that increases with
 * every recorded event, so two events in the same virtual millisecond are still ordered the way
 * the simulation observed them. `callTime` / `returnTime` are the virtual times, for display.
 */

/**
 * How an operation ended.
 * - `ok`: it took effect and the client saw its output.
 * - `fail`: it definitely did not take effect (e.g. `NotLeaderError` thrown before proposing).
 * - `unknown`: the client does not know (e.g. `TimeoutError`, a crash while pending): it may
 *   have taken effect at any time after its invocation, or never.
 */
export type OpStatus = 'ok' | 'fail' | 'unknown';

/** One client operation in a history. */
export interface Operation<I = unknown, O = unknown> {
  /** Position in the history (0-based, unique). */
  readonly id: number;
  /** The client (process) that issued it. A client has at most one operation pending. */
  readonly client: number;
  /** What was asked. */
  readonly input: I;
  /** What was answered; `undefined` unless `status` is `ok`. */
  readonly output: O | undefined;
  /** See {@link OpStatus}. */
  readonly status: OpStatus;
  /** Logical time of the invocation (strictly increasing over all recorded events). */
  readonly call: number;
  /**
   * Logical time of the completion; `Infinity` when `status` is `unknown`, unless the simulator
   * learned that the operation took effect by some time (then it is that time, and the output
   * stays unknown).
   */
  readonly return: number;
  /** Virtual time of the invocation, in ms. */
  readonly callTime: number;
  /** Virtual time of the completion, in ms; `Infinity` when `status` is `unknown`. */
  readonly returnTime: number;
  /** Replica the client talked to, if known. */
  readonly node?: string;
  /** Error name or message for `fail` and `unknown` outcomes. */
  readonly error?: string;
}

interface OpenOp<I, O> {
  id: number;
  client: number;
  input: I;
  output: O | undefined;
  status: OpStatus | null;
  call: number;
  return: number;
  callTime: number;
  returnTime: number;
  node?: string;
  error?: string;
  resolved?: boolean;
}

/**
 * Records operations as they happen. Completion methods ignore an operation that was already
 * completed (first completion wins).
 */
export class HistoryRecorder<I = unknown, O = unknown> {
  private events = 0;
  private readonly ops: OpenOp<I, O>[] = [];

  /**
   * Records an invocation at virtual time `time` (ms) and returns the operation id to complete
   * later. `node` is the replica the client sends it to, if known.
   */
  invoke(client: number, input: I, time: number, node?: string): number {
    const id = this.ops.length;
    const op: OpenOp<I, O> = {
      id,
      client,
      input,
      output: undefined,
      status: null,
      call: ++this.events,
      return: Number.POSITIVE_INFINITY,
      callTime: time,
      returnTime: Number.POSITIVE_INFINITY,
    };
    if (node !== undefined) op.node = node;
    this.ops.push(op);
    return id;
  }

  /** The operation succeeded with `output`, observed at virtual time `time`. */
  ok(id: number, output: O, time: number): void {
    const op = this.open(id);
    if (!op) return;
    op.status = 'ok';
    op.output = output;
    op.return = ++this.events;
    op.returnTime = time;
  }

  /** The operation definitely did not take effect. */
  fail(id: number, time: number, error?: string): void {
    const op = this.open(id);
    if (!op) return;
    op.status = 'fail';
    op.return = ++this.events;
    op.returnTime = time;
    if (error !== undefined) op.error = error;
  }

  /** The outcome is unknown (timeout, crash): it may take effect at any later time, or never. */
  unknown(id: number, error?: string): void {
    const op = this.open(id);
    if (!op) return;
    op.status = 'unknown';
    if (error !== undefined) op.error = error;
  }

  /**
   * Takes a logical timestamp without recording anything (for an observation made outside the
   * clients, e.g. the simulator seeing a command applied).
   */
  mark(): number {
    return ++this.events;
  }

  /**
   * Completes an unknown operation with what was learned outside the client: it took effect
   * before logical time `event` (see {@link mark}), output still unknown. The checker then treats
   * it as a definite operation whose output is not checked.
   */
  resolve(id: number, event: number, time: number): void {
    const op = this.ops[id];
    if (!op || op.status !== 'unknown') return;
    op.return = event;
    op.returnTime = time;
    op.resolved = true;
  }

  /** Marks an unknown operation as never having taken effect (status becomes `fail`). */
  discard(id: number, error: string): void {
    const op = this.ops[id];
    if (!op || op.status !== 'unknown') return;
    op.status = 'fail';
    op.error = error;
  }

  /** Number of operations invoked so far. */
  get size(): number {
    return this.ops.length;
  }

  /** Number of operations invoked and not yet completed. */
  get pending(): number {
    let n = 0;
    for (const o of this.ops) if (o.status === null) n++;
    return n;
  }

  /**
   * The history so far. Operations still pending are reported as `unknown` (a client that never
   * heard back cannot tell whether its request took effect).
   */
  history(): Operation<I, O>[] {
    return this.ops.map((o) => {
      const op: Operation<I, O> = {
        id: o.id,
        client: o.client,
        input: o.input,
        output: o.output,
        status: o.status ?? 'unknown',
        call: o.call,
        return: o.status === null || (o.status === 'unknown' && !o.resolved) ? Number.POSITIVE_INFINITY : o.return,
        callTime: o.callTime,
        returnTime: o.status === null || (o.status === 'unknown' && !o.resolved) ? Number.POSITIVE_INFINITY : o.returnTime,
        ...(o.node !== undefined ? { node: o.node } : {}),
        ...(o.error !== undefined ? { error: o.error } : {}),
      };
      return op;
    });
  }

  private open(id: number): OpenOp<I, O> | undefined {
    const op = this.ops[id];
    if (!op || op.status !== null) return undefined;
    return op;
  }
}

/**
 * Serializes a history to JSON (`Infinity` becomes `null`), for files a failing run leaves.
 */
export function historyToJson(history: readonly Operation[]): string {
  return JSON.stringify(
    history.map((o) => ({
      ...o,
      return: Number.isFinite(o.return) ? o.return : null,
      returnTime: Number.isFinite(o.returnTime) ? o.returnTime : null,
    })),
    null,
    1,
  );
}

/** Inverse of {@link historyToJson}. Throws SyntaxError on invalid JSON. */
export function historyFromJson<I = unknown, O = unknown>(json: string): Operation<I, O>[] {
  const raw = JSON.parse(json) as Array<Record<string, unknown>>;
  return raw.map((o) => ({
    ...(o as unknown as Operation<I, O>),
    return: o.return === null ? Number.POSITIVE_INFINITY : (o.return as number),
    returnTime: o.returnTime === null ? Number.POSITIVE_INFINITY : (o.returnTime as number),
  }));
}
