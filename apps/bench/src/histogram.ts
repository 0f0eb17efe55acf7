/**
 * Latency recording on HdrHistogram (`hdr-histogram-js`): values are recorded in microseconds
 * with 3 significant digits, from 1 µs up to one hour, and reported in milliseconds.
 */
import { build, type Histogram } from 'hdr-histogram-js';

/** Percentiles of one latency distribution, in milliseconds. */
export interface LatencySummary {
  /** Number of recorded operations. */
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
}

/** Largest recordable latency: one hour, in µs. Larger values are clamped. */
const HIGHEST_US = 3_600_000_000;

/** A latency histogram (HdrHistogram, µs resolution, 3 significant digits). */
export class LatencyRecorder {
  private readonly h: Histogram;

  constructor() {
    this.h = build({ lowestDiscernibleValue: 1, highestTrackableValue: HIGHEST_US, numberOfSignificantValueDigits: 3 });
  }

  /** Records one latency in milliseconds (fractions allowed; below 1 µs counts as 1 µs). */
  recordMs(ms: number): void {
    const us = Math.round(ms * 1000);
    this.h.recordValue(us < 1 ? 1 : us > HIGHEST_US ? HIGHEST_US : us);
  }

  /** Forgets every recorded value (used at the end of the warm-up). */
  reset(): void {
    this.h.reset();
  }

  /** Number of recorded values. */
  get count(): number {
    return this.h.totalCount;
  }

  /** Percentiles in ms; all zero when nothing was recorded. */
  summary(): LatencySummary {
    const count = this.h.totalCount;
    if (count === 0) return { count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, meanMs: 0 };
    const ms = (us: number) => us / 1000;
    return {
      count,
      p50Ms: ms(this.h.getValueAtPercentile(50)),
      p99Ms: ms(this.h.getValueAtPercentile(99)),
      p999Ms: ms(this.h.getValueAtPercentile(99.9)),
      maxMs: ms(this.h.maxValue),
      meanMs: ms(this.h.mean),
    };
  }
}
