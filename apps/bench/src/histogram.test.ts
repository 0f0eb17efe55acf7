import { describe, expect, it } from 'vitest';
import { LatencyRecorder } from './histogram.js';

describe('LatencyRecorder', () => {
  it('reports percentiles in ms within HdrHistogram precision (3 digits)', () => {
    const h = new LatencyRecorder();
    for (let i = 1; i <= 10_000; i++) h.recordMs(i / 100); // 0.01 .. 100 ms
    const s = h.summary();
    expect(s.count).toBe(10_000);
    expect(s.p50Ms).toBeCloseTo(50, 0);
    expect(s.p99Ms).toBeCloseTo(99, 0);
    expect(s.p999Ms).toBeCloseTo(99.9, 0);
    expect(s.maxMs).toBeCloseTo(100, 0);
    expect(s.meanMs).toBeCloseTo(50, 0);
  });

  it('clamps sub-microsecond and huge values and resets', () => {
    const h = new LatencyRecorder();
    h.recordMs(0);
    h.recordMs(1e12);
    expect(h.count).toBe(2);
    expect(h.summary().maxMs).toBeGreaterThanOrEqual(3_600_000 * 0.999);
    h.reset();
    expect(h.summary()).toEqual({ count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, meanMs: 0 });
  });
});
