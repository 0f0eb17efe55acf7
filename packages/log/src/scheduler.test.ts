import { describe, expect, it } from 'vitest';
import { realScheduler, VirtualScheduler } from './scheduler.js';

describe('VirtualScheduler', () => {
  it('runs timers in time order, ties in scheduling order, and moves the clock', () => {
    const s = new VirtualScheduler(100);
    const out: string[] = [];
    s.setTimer(30, () => out.push(`b@${s.now()}`));
    s.setTimer(10, () => out.push(`a@${s.now()}`));
    s.setTimer(30, () => out.push(`c@${s.now()}`));
    s.defer(() => out.push(`d@${s.now()}`));
    s.advance(20);
    expect(out).toEqual(['d@100', 'a@110']);
    expect(s.now()).toBe(120);
    s.advance(100);
    expect(out).toEqual(['d@100', 'a@110', 'b@130', 'c@130']);
    expect(s.now()).toBe(220);
  });

  it('cancelled timers never run', () => {
    const s = new VirtualScheduler();
    let ran = false;
    const t = s.setTimer(5, () => (ran = true));
    t.cancel();
    s.advance(10);
    expect(ran).toBe(false);
    expect(s.pending).toBe(0);
  });

  it('runUntilCondition stops as soon as the condition holds, or at the limit', () => {
    const s = new VirtualScheduler();
    let n = 0;
    const tick = () => {
      n++;
      s.setTimer(10, tick);
    };
    s.setTimer(10, tick);
    expect(s.runUntilCondition(() => n === 5)).toBe(true);
    expect(s.now()).toBe(50);
    expect(s.runUntilCondition(() => false, 100)).toBe(false);
    expect(s.now()).toBe(150);
  });

  it('a thousand timers with random delays fire in non-decreasing time order', () => {
    const s = new VirtualScheduler();
    const times: number[] = [];
    let x = 12345;
    for (let i = 0; i < 1000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      s.setTimer(x % 500, () => times.push(s.now()));
    }
    s.advance(1000);
    expect(times.length).toBe(1000);
    for (let i = 1; i < times.length; i++) expect(times[i]!).toBeGreaterThanOrEqual(times[i - 1]!);
  });
});


describe('realScheduler', () => {
  it('reads whole, non-decreasing milliseconds close to the wall clock', () => {
    let prev = realScheduler.now();
    for (let i = 0; i < 10_000; i++) {
      const t = realScheduler.now();
      expect(Number.isInteger(t)).toBe(true);
      expect(t).toBeGreaterThanOrEqual(prev);
      prev = t;
    }
    expect(Math.abs(realScheduler.now() - Date.now())).toBeLessThan(60_000);
  });
});
