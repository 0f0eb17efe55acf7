/**
 * A per-node view of a shared scheduler with a skewed clock: the node's `now()` runs at `rate`
 * times the shared clock plus an offset, and its timers last `ms / rate` of shared time. The
 * simulator gives each replica one, so the nemesis can make clocks drift apart (the situation
 * leases must survive, Raft thesis §6.4.1).
 */
import type { Scheduler, TimerHandle } from '@synod/log';
import { InvalidArgumentError } from '@synod/log';

/** A {@link Scheduler} whose clock runs fast or slow relative to a base scheduler. */
export class SkewedScheduler implements Scheduler {
  private anchorBase: number;
  private anchorLocal: number;
  private currentRate = 1;

  /**
   * @param base the shared scheduler (e.g. a `VirtualScheduler`).
   * @param offsetMs initial offset of this clock, in ms (may be negative; `now()` never goes below 0).
   */
  constructor(
    private readonly base: Scheduler,
    offsetMs = 0,
    /** Called before every timer or deferred function of this view runs (the simulator marks the node as changed). */
    private readonly onRun: (() => void) | null = null,
  ) {
    this.anchorBase = base.now();
    this.anchorLocal = this.anchorBase + offsetMs;
  }

  /** Local time in integer ms: `anchor + (base.now() - baseAnchor) * rate`. Monotonic. */
  now(): number {
    return Math.max(0, Math.floor(this.anchorLocal + (this.base.now() - this.anchorBase) * this.currentRate));
  }

  /** The clock rate relative to the base (1 = no drift). */
  get rate(): number {
    return this.currentRate;
  }

  /**
   * Changes the clock rate from now on (the local clock stays continuous). Timers already set
   * keep their shared-time deadline. Throws InvalidArgumentError unless 0 < rate <= 100.
   */
  setRate(rate: number): void {
    if (!(rate > 0 && rate <= 100)) throw new InvalidArgumentError(`clock rate must be in (0, 100], got ${rate}`);
    this.anchorLocal = this.anchorLocal + (this.base.now() - this.anchorBase) * this.currentRate;
    this.anchorBase = this.base.now();
    this.currentRate = rate;
  }

  /** Jumps the local clock forward by `ms` (a forward step of NTP). Throws for negative `ms`. */
  jump(ms: number): void {
    if (!(ms >= 0)) throw new InvalidArgumentError(`clock jumps only forward, got ${ms}`);
    this.anchorLocal += ms;
  }

  /** A timer of `ms` local milliseconds: `round(ms / rate)` ms of base time. */
  setTimer(ms: number, fn: () => void): TimerHandle {
    return this.base.setTimer(Math.max(0, Math.round(ms / this.currentRate)), this.wrap(fn));
  }

  defer(fn: () => void): void {
    this.base.defer(this.wrap(fn));
  }

  private wrap(fn: () => void): () => void {
    const hook = this.onRun;
    if (!hook) return fn;
    return () => {
      hook();
      fn();
    };
  }
}
