/**
 * The closed-loop load generator: `clients` concurrent loops, each issuing one operation,
 * awaiting it, and issuing the next. Operations that complete during the warm-up are not
 * counted; throughput is the number of completions inside the measurement window divided by
 * its length, and latency is recorded for every completion inside it.
 */
import { performance } from 'node:perf_hooks';
import { LatencyRecorder, type LatencySummary } from './histogram.js';

/** Options of {@link runClosedLoop}. */
export interface ClosedLoopOptions {
  /** Concurrent clients (operations in flight). Integer ≥ 1. */
  readonly clients: number;
  /** Warm-up in ms: the load runs but nothing is counted. */
  readonly warmupMs: number;
  /** Length of the measurement window in ms (> 0). */
  readonly durationMs: number;
  /** One operation of client `client` (0-based), its `seq`-th (0-based). */
  readonly op: (client: number, seq: number) => Promise<unknown>;
  /**
   * How long to wait after a failed operation before that client retries, in ms. Default 1,
   * so a refusing replica (no leader yet, backpressure) is not hammered in a tight loop.
   */
  readonly errorBackoffMs?: number;
  /** Called when the measurement window opens (after warm-up). */
  readonly onMeasureStart?: () => void;
  /** Called when the measurement window closes. */
  readonly onMeasureEnd?: () => void;
  /** Clock in ms. Default `performance.now`. */
  readonly now?: () => number;
}

/** What {@link runClosedLoop} measured. */
export interface ClosedLoopResult {
  /** Operations completed inside the measurement window. */
  readonly ops: number;
  /** Operations that failed inside the measurement window. */
  readonly errors: number;
  /** Failures by error name (e.g. `NotLeaderError`), whole run. */
  readonly errorKinds: Readonly<Record<string, number>>;
  /** Length of the measurement window in ms. */
  readonly windowMs: number;
  /** `ops / windowMs * 1000`. */
  readonly opsPerSec: number;
  /** Latency of the operations completed inside the window. */
  readonly latency: LatencySummary;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs the closed loop to the end of the window and waits for operations in flight. */
export async function runClosedLoop(opts: ClosedLoopOptions): Promise<ClosedLoopResult> {
  if (!Number.isInteger(opts.clients) || opts.clients < 1) throw new RangeError(`clients must be an integer >= 1, got ${opts.clients}`);
  if (!(opts.durationMs > 0)) throw new RangeError(`durationMs must be > 0, got ${opts.durationMs}`);
  if (!(opts.warmupMs >= 0)) throw new RangeError(`warmupMs must be >= 0, got ${opts.warmupMs}`);
  const now = opts.now ?? (() => performance.now());
  const backoff = opts.errorBackoffMs ?? 1;
  const hist = new LatencyRecorder();
  const errorKinds: Record<string, number> = {};
  const t0 = now();
  const measureStart = t0 + opts.warmupMs;
  const measureEnd = measureStart + opts.durationMs;
  let ops = 0;
  let errors = 0;
  let measuring = false;
  let ended = false;
  const openWindow = () => {
    if (measuring || ended) return;
    measuring = true;
    opts.onMeasureStart?.();
  };
  const closeWindow = () => {
    if (ended) return;
    openWindow();
    ended = true;
    opts.onMeasureEnd?.();
  };
  // Timers mark the window edges even when every client is stuck on a slow operation.
  const startTimer = setTimeout(openWindow, opts.warmupMs);
  const endTimer = setTimeout(closeWindow, opts.warmupMs + opts.durationMs);

  const client = async (c: number): Promise<void> => {
    let seq = 0;
    for (;;) {
      const start = now();
      if (start >= measureEnd) return;
      try {
        await opts.op(c, seq++);
        const end = now();
        if (end >= measureStart && end < measureEnd) {
          ops++;
          hist.recordMs(end - start);
        }
      } catch (err) {
        const end = now();
        const name = (err as Error)?.name ?? 'Error';
        errorKinds[name] = (errorKinds[name] ?? 0) + 1;
        if (end >= measureStart && end < measureEnd) errors++;
        if (backoff > 0) await sleep(backoff);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
  } finally {
    clearTimeout(startTimer);
    clearTimeout(endTimer);
  }
  closeWindow();
  return { ops, errors, errorKinds, windowMs: opts.durationMs, opsPerSec: (ops / opts.durationMs) * 1000, latency: hist.summary() };
}
