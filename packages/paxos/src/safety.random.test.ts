/**
 * Randomized safety over many seeds: random delivery order, loss, duplication, reordering,
 * partitions, crashes with restarts, proposals and compactions. The cluster checks after every
 * Ready: at most one value chosen per slot (across all replicas ever), acceptors never accept
 * below their promise, promises and watermarks never go back, applied <= committed <= last,
 * every applied slot holds the chosen value, identical applied prefixes. Each seed then heals
 * the cluster and requires a new write to be applied everywhere (liveness after faults stop).
 */
import { describe, expect, it } from 'vitest';
import { chaos, healAndWrite } from './test/chaos.js';

function seeds(from: number, to: number, size: number, steps: number, opts?: Parameters<typeof chaos>[3], joiners = 0) {
  let chosen = 0;
  let crashes = 0;
  let changes = 0;
  for (let seed = from; seed <= to; seed++) {
    try {
      const { c, stats } = chaos(seed, size, steps, opts, joiners);
      chosen += c.chosen.size;
      crashes += stats.crashes;
      changes += stats.changes;
      healAndWrite(c, `s${seed}-final`);
    } catch (err) {
      throw new Error(`seed ${seed}: ${(err as Error).message}`, { cause: err });
    }
  }
  return { chosen, crashes, changes };
}

describe('randomized safety (seeded)', () => {
  it('3 nodes, 200 seeds: one value per slot, no acceptance below a promise, identical prefixes, progress after healing', () => {
    const { chosen, crashes } = seeds(1, 200, 3, 600);
    // The workload must actually choose values and crash nodes, or it proves nothing.
    expect(chosen).toBeGreaterThan(200 * 10);
    expect(crashes).toBeGreaterThan(200);
  });

  it('5 nodes, 60 seeds', () => {
    const { chosen } = seeds(1001, 1060, 5, 800);
    expect(chosen).toBeGreaterThan(60 * 10);
  });

  it('5 nodes with flexible quorums (|Q1| = 4, |Q2| = 2), 60 seeds', () => {
    const { chosen } = seeds(2001, 2060, 5, 800, { electionTicks: 6, phase1Quorum: 4, phase2Quorum: 2 });
    expect(chosen).toBeGreaterThan(60 * 10);
  });

  it('3 voters and 2 joiners with random membership changes (stop-sign reconfiguration), 100 seeds', () => {
    const { chosen, changes } = seeds(4001, 4100, 3, 800, { electionTicks: 6 }, 2);
    expect(chosen).toBeGreaterThan(100 * 10);
    expect(changes).toBeGreaterThan(100);
  });

  it('4 nodes with small phase-1 quorums (|Q1| = 2, |Q2| = 3: two candidates can both finish phase 1 in one round), 60 seeds', () => {
    const { chosen } = seeds(3001, 3060, 4, 800, { electionTicks: 6, phase1Quorum: 2, phase2Quorum: 3 });
    expect(chosen).toBeGreaterThan(60 * 5);
  });
});
