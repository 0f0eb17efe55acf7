/**
 * Time for the runtime and transports, injected so the same code runs on real timers in
 * production and on virtual time in tests and the simulator.
 */

import { web } from './web.js';

/** A pending timer. */
export interface TimerHandle {
  /** Cancels the timer; a no-op if it already fired. */
  cancel(): void;
}

/** The clock and timers a runtime runs on. */
export interface Scheduler {
  /**
   * Current time in milliseconds. In production this is the wall clock (`Date.now()`), since
   * the runtime stamps proposals with it to expire sessions; timers never depend on it.
   */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Calls `fn` soon, after the current synchronous work and already-queued I/O. */
  defer(fn: () => void): void;
}

const setImmediateLike: (fn: () => void) => void =
  typeof web.setImmediate === 'function' ? (fn) => void web.setImmediate!(fn) : (fn) => void web.setTimeout(fn, 0);

const perf = web.performance;
const wallClock: () => number =
  perf && typeof perf.timeOrigin === 'number' ? () => Math.floor(perf.timeOrigin! + perf.now()) : () => Date.now();

/**
 * The real clock: whole wall-clock milliseconds that never jump backwards or with NTP
 * (`floor(performance.timeOrigin + performance.now())`: the wall clock at process start,
 * advanced monotonically), real `setTimeout`, and `setImmediate` (or `setTimeout(0)`).
 */
export const realScheduler: Scheduler = {
  now: wallClock,
  setTimer(ms, fn) {
    const t = web.setTimeout(fn, ms);
    return { cancel: () => web.clearTimeout(t) };
  },
  defer: setImmediateLike,
};

interface VirtualTask {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * Virtual time for tests and simulation: nothing happens until the test advances the clock.
 * Tasks due at the same time run in the order they were scheduled, so runs are deterministic.
 */
export class VirtualScheduler implements Scheduler {
  private time: number;
  private seq = 0;
  private heap: VirtualTask[] = [];

  /** @param start initial time in ms. */
  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const task: VirtualTask = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(task);
    return { cancel: () => void (task.cancelled = true) };
  }

  defer(fn: () => void): void {
    this.push({ at: this.time, seq: this.seq++, fn, cancelled: false });
  }

  /** Number of pending (not cancelled) tasks. */
  get pending(): number {
    let n = 0;
    for (const t of this.heap) if (!t.cancelled) n++;
    return n;
  }

  /** Time of the next pending task, or `undefined`. */
  nextAt(): number | undefined {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
    return this.heap[0]?.at;
  }

  /** Runs the next task (advancing time to it). Returns false if none is pending. */
  step(): boolean {
    for (;;) {
      const t = this.pop();
      if (!t) return false;
      if (t.cancelled) continue;
      if (t.at > this.time) this.time = t.at;
      t.fn();
      return true;
    }
  }

  /** Runs every task due up to `now() + ms`, then sets the clock there. */
  advance(ms: number): void {
    this.runUntil(this.time + ms);
  }

  /** Runs every task due up to time `t`, then sets the clock to `t` (if later). */
  runUntil(t: number): void {
    for (;;) {
      const next = this.nextAt();
      if (next === undefined || next > t) break;
      this.step();
    }
    if (t > this.time) this.time = t;
  }

  /**
   * Runs tasks until `cond()` holds, or until `limitMs` of virtual time passed.
   * Returns whether `cond()` held.
   */
  runUntilCondition(cond: () => boolean, limitMs = 60_000): boolean {
    const deadline = this.time + limitMs;
    while (!cond()) {
      const next = this.nextAt();
      if (next === undefined || next > deadline) {
        this.time = Math.max(this.time, deadline);
        return cond();
      }
      this.step();
    }
    return true;
  }

  private push(t: VirtualTask): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, t)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = t;
  }

  private pop(): VirtualTask | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let mv = last;
        if (l < h.length && less(h[l]!, mv)) {
          m = l;
          mv = h[l]!;
        }
        if (r < h.length && less(h[r]!, mv)) {
          m = r;
          mv = h[r]!;
        }
        if (m === i) break;
        h[i] = h[m]!;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}

function less(a: VirtualTask, b: VirtualTask): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
