import { describe, expect, it } from 'vitest';
import { fixtureReport } from '../test/fixture.js';
import { parseBenchReport } from './schema.js';

describe('latest.json schema', () => {
  it('accepts a complete report and keeps extra fields', () => {
    const r = parseBenchReport(fixtureReport());
    expect(r.results).toHaveLength(4);
    expect((r.results[0] as Record<string, unknown>).cpuPct).toBe(70);
    expect((r as Record<string, unknown>).skipped).toBeDefined();
  });

  it('requires exactly the issue fields', () => {
    for (const key of ['machine', 'baselines', 'results', 'peers', 'failover'] as const) {
      const bad: Record<string, unknown> = fixtureReport();
      delete bad[key];
      expect(() => parseBenchReport(bad), key).toThrow();
    }
    const r = fixtureReport();
    const { p999Ms: _, ...noP999 } = r.results[0]!;
    expect(() => parseBenchReport({ ...r, results: [noP999] })).toThrow(/p999Ms/);
  });

  it('rejects wrong values', () => {
    const r = fixtureReport();
    expect(() => parseBenchReport({ ...r, results: [{ ...r.results[0]!, protocol: 'zab' }] })).toThrow();
    expect(() => parseBenchReport({ ...r, results: [{ ...r.results[0]!, opsPerSec: -1 }] })).toThrow();
    expect(() => parseBenchReport({ ...r, results: [{ ...r.results[0]!, nodes: 2.5 }] })).toThrow();
    expect(() => parseBenchReport({ ...r, peers: [{ ...r.peers[0]!, p99Ms: Number.POSITIVE_INFINITY }] })).toThrow();
    expect(() => parseBenchReport({ ...r, failover: [{ protocol: 'raft' }] })).toThrow(/ms/);
  });

  it('accepts a null ratio (no baseline measured)', () => {
    const r = fixtureReport();
    expect(parseBenchReport({ ...r, results: [{ ...r.results[0]!, ratioToLimit: null }] }).results[0]!.ratioToLimit).toBeNull();
  });
});
