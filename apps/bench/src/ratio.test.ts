import { describe, expect, it } from 'vitest';
import { BASELINE, candidateLimits, limitFor, ratioToLimit } from './ratio.js';

const baselines = [
  { name: BASELINE.sqliteSingle(16), opsPerSec: 500 },
  { name: BASELINE.sqliteBatched(16), opsPerSec: 80_000 },
  { name: BASELINE.sqliteBatched(1024), opsPerSec: 40_000 },
  { name: BASELINE.inprocSerial, opsPerSec: 200_000 },
  { name: BASELINE.inprocPipelined, opsPerSec: 3_000_000 },
  { name: BASELINE.wsSerial, opsPerSec: 30_000 },
  { name: BASELINE.wsPipelined, opsPerSec: 70_000 },
];

describe('limits and ratios', () => {
  it('one client is bounded by the serial baselines, more clients by the pipelined/batched ones', () => {
    expect(candidateLimits({ transport: 'memory', storage: 'memory', clients: 1, payloadBytes: 16 })).toEqual([BASELINE.inprocSerial]);
    expect(candidateLimits({ transport: 'ws', storage: 'sqlite', clients: 16, payloadBytes: 1024 })).toEqual([BASELINE.wsPipelined, BASELINE.sqliteBatched(1024)]);
    expect(candidateLimits({ transport: 'ws', storage: 'sqlite', clients: 1, payloadBytes: 16 })).toEqual([BASELINE.wsSerial, BASELINE.sqliteSingle(16)]);
  });

  it('picks the lowest measured candidate', () => {
    expect(limitFor({ transport: 'ws', storage: 'sqlite', clients: 256, payloadBytes: 16 }, baselines)?.name).toBe(BASELINE.wsPipelined);
    expect(limitFor({ transport: 'ws', storage: 'sqlite', clients: 256, payloadBytes: 1024 }, baselines)?.name).toBe(BASELINE.sqliteBatched(1024));
    expect(limitFor({ transport: 'memory', storage: 'sqlite', clients: 1, payloadBytes: 16 }, baselines)?.name).toBe(BASELINE.sqliteSingle(16));
    expect(limitFor({ transport: 'memory', storage: 'memory', clients: 256, payloadBytes: 16 }, baselines)?.name).toBe(BASELINE.inprocPipelined);
  });

  it('ignores missing and zero baselines', () => {
    expect(limitFor({ transport: 'memory', storage: 'sqlite', clients: 256, payloadBytes: 64 }, baselines)?.name).toBe(BASELINE.inprocPipelined);
    expect(limitFor({ transport: 'ws', storage: 'memory', clients: 1, payloadBytes: 16 }, [{ name: BASELINE.wsSerial, opsPerSec: 0 }])).toBeNull();
    expect(limitFor({ transport: 'ws', storage: 'memory', clients: 1, payloadBytes: 16 }, [])).toBeNull();
  });

  it('computes the ratio, null without a limit', () => {
    expect(ratioToLimit(35_000, { name: 'x', opsPerSec: 70_000 })).toBe(0.5);
    expect(ratioToLimit(1, { name: 'x', opsPerSec: 3 })).toBe(0.3333);
    expect(ratioToLimit(140_000, { name: 'x', opsPerSec: 70_000 })).toBe(2);
    expect(ratioToLimit(10, null)).toBeNull();
    expect(ratioToLimit(Number.NaN, { name: 'x', opsPerSec: 1 })).toBeNull();
  });
});
