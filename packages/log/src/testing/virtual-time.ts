/**
 * Helpers for driving runtimes on virtual time in tests: advance a {@link VirtualScheduler} in
 * small steps, yielding to the microtask queue after each step so the runtime's promise chains
 * (storage writes, applies, client promises) make progress, until a promise settles or a
 * condition holds. Deterministic: the same inputs advance the clock by the same amount.
 */
import { InvalidArgumentError } from '../errors.js';
import type { VirtualScheduler } from '../scheduler.js';

/** How {@link settle} and {@link runUntil} advance virtual time. */
export interface VirtualTimeOptions {
  /**
   * Most virtual milliseconds to advance before giving up with {@link VirtualTimeLimitError}.
   * Integer ≥ 1. Default {@link DEFAULT_VIRTUAL_LIMIT_MS} (20 000 ms).
   */
  readonly limitMs?: number;
  /** Virtual milliseconds per step. Integer ≥ 1. Default 1 ms. */
  readonly stepMs?: number;
  /**
   * Microtask turns yielded after each step (each an `await` of a resolved promise). Integer
   * ≥ 1 (the settle check itself runs as a promise callback). Default 4: enough for the
   * runtime's usual await chains to catch up within the same virtual millisecond; a deeper
   * chain just continues in the next step, later in virtual time.
   */
  readonly microtasks?: number;
}

/** Default `limitMs` of {@link settle} and {@link runUntil}: 20 000 virtual ms. */
export const DEFAULT_VIRTUAL_LIMIT_MS = 20_000;

/**
 * Virtual time ran out: {@link settle}'s promise did not settle, or {@link runUntil}'s
 * condition did not hold, within `limitMs`. A plain `Error` on purpose, not a `SynodError`:
 * it reports a test that did not converge, and must never pass for a runtime `TimeoutError`
 * (code `TIMEOUT`) that a test expects.
 */
export class VirtualTimeLimitError extends Error {
  /** The limit that was reached, in virtual ms. */
  readonly limitMs: number;
  constructor(what: string, limitMs: number) {
    super(`${what} within ${limitMs} ms of virtual time`);
    this.name = 'VirtualTimeLimitError';
    this.limitMs = limitMs;
  }
}

interface Resolved {
  readonly limitMs: number;
  readonly stepMs: number;
  readonly microtasks: number;
}

function integer(name: string, v: number, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

function resolve(options: number | VirtualTimeOptions | undefined): Resolved {
  const o: VirtualTimeOptions = typeof options === 'number' ? { limitMs: options } : (options ?? {});
  return {
    limitMs: integer('limitMs', o.limitMs ?? DEFAULT_VIRTUAL_LIMIT_MS, 1),
    stepMs: integer('stepMs', o.stepMs ?? 1, 1),
    microtasks: integer('microtasks', o.microtasks ?? 4, 1),
  };
}

/**
 * Yields `turns` times to the microtask queue (each turn is one `await` of a resolved promise),
 * so promise callbacks queued before the call, and the ones they queue in turn, at least
 * `turns` links deep, run before it returns (a few more may run: awaiting the call itself
 * takes turns too). It does not drain the queue and does not advance any clock.
 * @throws InvalidArgumentError (as a rejection) if `turns` is not an integer ≥ 0.
 */
export async function flushMicrotasks(turns = 4): Promise<void> {
  integer('turns', turns, 0);
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

/**
 * Advances `scheduler` by `stepMs` (default 1 ms), then yields `microtasks` times, and repeats
 * until `promise` settles; then returns its value, or rethrows its rejection. It always takes
 * at least one step, even for a promise that has already settled (so `settle(s,
 * Promise.resolve())` lets 1 ms pass).
 *
 * @param options the limit in virtual ms (a number), or {@link VirtualTimeOptions}.
 * @throws VirtualTimeLimitError (as a rejection) if `promise` is still pending after
 *   `limitMs` of virtual time (default 20 000 ms); the promise is left running.
 * @throws InvalidArgumentError (as a rejection) on a limit, step or microtask count that is
 *   not a whole number in range.
 *
 * @example
 * const scheduler = new VirtualScheduler();
 * const log = new ReplicatedLog({ ..., scheduler });
 * await log.start();
 * const result = await settle(scheduler, log.propose(command));
 */
export async function settle<T>(
  scheduler: VirtualScheduler,
  promise: PromiseLike<T>,
  options?: number | VirtualTimeOptions,
): Promise<T> {
  const o = resolve(options);
  let done = false;
  const settled = Promise.resolve(promise);
  settled.then(
    () => (done = true),
    () => (done = true),
  );
  for (let elapsed = 0; elapsed < o.limitMs && !done; elapsed += o.stepMs) {
    scheduler.advance(Math.min(o.stepMs, o.limitMs - elapsed));
    for (let i = 0; i < o.microtasks; i++) await Promise.resolve();
  }
  // One more turn: a promise settled during the last step has had its callbacks queued.
  await Promise.resolve();
  if (!done) throw new VirtualTimeLimitError('the promise did not settle', o.limitMs);
  return settled;
}

/**
 * Advances `scheduler` in steps (as {@link settle} does) until `cond()` holds. `cond` is
 * checked before the first step, so a condition that already holds costs no time.
 *
 * @param options the limit in virtual ms (a number), or {@link VirtualTimeOptions}.
 * @throws VirtualTimeLimitError (as a rejection) if `cond()` is still false after `limitMs`
 *   of virtual time (default 20 000 ms).
 * @throws InvalidArgumentError (as a rejection) on a limit, step or microtask count that is
 *   not a whole number in range. An exception thrown by `cond` propagates as the rejection.
 *
 * @example
 * await runUntil(scheduler, () => logs.some((l) => l.status().role === 'leader'));
 */
export async function runUntil(
  scheduler: VirtualScheduler,
  cond: () => boolean,
  options?: number | VirtualTimeOptions,
): Promise<void> {
  const o = resolve(options);
  for (let elapsed = 0; elapsed < o.limitMs && !cond(); elapsed += o.stepMs) {
    scheduler.advance(Math.min(o.stepMs, o.limitMs - elapsed));
    for (let i = 0; i < o.microtasks; i++) await Promise.resolve();
  }
  if (!cond()) throw new VirtualTimeLimitError('the condition did not hold', o.limitMs);
}
