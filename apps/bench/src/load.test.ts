import { describe, expect, it } from 'vitest';
import { runClosedLoop } from './load.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

// The counting tests run on an injected clock that advances only when operations complete, so
// what lands in the warm-up and in the window does not depend on how fast (or how loaded) the
// machine is. The smoke tests exercise the default clock.
describe('runClosedLoop', () => {
  it('keeps `clients` operations in flight and counts only the window', async () => {
    let t = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const events: string[] = [];
    const r = await runClosedLoop({
      clients: 8,
      warmupMs: 50,
      durationMs: 150,
      now: () => t,
      op: async () => {
        calls++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await tick();
        t += 0.25; // each completion advances the fake clock by 0.25 ms
        inFlight--;
      },
      onMeasureStart: () => events.push('start'),
      onMeasureEnd: () => events.push('end'),
    });
    expect(maxInFlight).toBe(8);
    expect(r.ops).toBeGreaterThan(0);
    expect(r.ops).toBeLessThan(calls); // warm-up operations are not counted
    expect(r.latency.count).toBe(r.ops);
    expect(r.errors).toBe(0);
    expect(r.opsPerSec).toBeCloseTo((r.ops / 150) * 1000, 6);
    expect(events).toEqual(['start', 'end']);
    expect(inFlight).toBe(0); // resolves only after operations in flight finished
  });

  it('counts failures by name and backs off instead of spinning', async () => {
    let t = 0;
    let n = 0;
    const r = await runClosedLoop({
      clients: 2,
      warmupMs: 0,
      durationMs: 100,
      errorBackoffMs: 5,
      now: () => t,
      op: async () => {
        const mine = ++n;
        await tick();
        t += 1;
        if (mine % 2 === 0) {
          const e = new Error('no');
          e.name = 'NotLeaderError';
          throw e;
        }
      },
    });
    expect(r.errors).toBeGreaterThan(0);
    expect(r.errorKinds.NotLeaderError).toBeGreaterThanOrEqual(r.errors);
    expect(r.ops).toBeGreaterThan(0);
  });

  it('uses an injected clock for the window', async () => {
    let t = 0;
    const r = await runClosedLoop({
      clients: 1,
      warmupMs: 0,
      durationMs: 10,
      now: () => t,
      op: async () => {
        t += 1; // each operation takes 1 ms of fake time
        await tick();
      },
    });
    // Operations complete at t = 1..10; the one completing at 10 is outside [0, 10).
    expect(r.ops).toBe(9);
    expect(r.latency.p50Ms).toBeCloseTo(1, 2);
  });

  it('rejects bad options', async () => {
    await expect(runClosedLoop({ clients: 0, warmupMs: 0, durationMs: 1, op: async () => {} })).rejects.toThrow(/clients/);
    await expect(runClosedLoop({ clients: 1, warmupMs: 0, durationMs: 0, op: async () => {} })).rejects.toThrow(/durationMs/);
  });
});
