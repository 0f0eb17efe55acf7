/**
 * The simulator end to end: seeded runs of whole clusters of both protocols under the full
 * nemesis, replay from a seed, focused fault mixes, and negative controls that must be caught.
 * (CI runs hundreds more seeds per protocol through the CLI.)
 */
import { describe, expect, it } from 'vitest';
import { type SimulationOptions, type SimulationResult, simulate } from './simulator.js';

const SEEDS_PER_PROTOCOL = 12;

/** Runs seeds from 1 until one fails; returns that seed and its result, or null after `limit`. */
async function firstFailure(options: Omit<SimulationOptions, 'seed'>, limit: number): Promise<{ seed: number; result: SimulationResult } | null> {
  for (let seed = 1; seed <= limit; seed++) {
    const result = await simulate({ ...options, seed });
    if (!result.ok) return { seed, result };
  }
  return null;
}

describe.each(['raft', 'paxos'] as const)('%s under the full nemesis', (protocol) => {
  it(`${SEEDS_PER_PROTOCOL} seeds: invariants hold after every event, histories are linearizable, replicas converge`, async () => {
    const totals = { crashes: 0, partitions: 0, membership: 0, leaderships: 0, snapshots: 0, ok: 0, unknownResolved: 0, skews: 0, faults: 0 };
    for (let seed = 1; seed <= SEEDS_PER_PROTOCOL; seed++) {
      const r = await simulate({ seed, protocol });
      expect(r.violation, `seed ${seed}: ${r.violation?.invariant} ${r.violation?.message}`).toBeUndefined();
      expect(r.linearizability, `seed ${seed}`).toBe('ok');
      expect(r.ok).toBe(true);
      expect(r.history.length).toBe(200 + 3); // 200 client ops + a final read per key
      expect(r.stats.invariantChecks).toBeGreaterThan(1000);
      totals.crashes += r.stats.crashes;
      totals.partitions += r.stats.partitions;
      totals.membership += r.stats.membershipChanges;
      totals.leaderships += r.stats.leaderships;
      totals.snapshots += r.stats.snapshotRestores;
      totals.ok += r.stats.opsOk;
      totals.unknownResolved += r.stats.unknownResolved;
      totals.skews += r.stats.skews;
      totals.faults += r.stats.messageFaultBursts;
    }
    // The runs really exercised faults (not a quiet cluster passing trivially).
    expect(totals.crashes).toBeGreaterThan(SEEDS_PER_PROTOCOL);
    expect(totals.partitions).toBeGreaterThan(SEEDS_PER_PROTOCOL);
    expect(totals.membership).toBeGreaterThan(0);
    expect(totals.skews).toBeGreaterThan(0);
    expect(totals.faults).toBeGreaterThan(0);
    expect(totals.leaderships).toBeGreaterThan(2 * SEEDS_PER_PROTOCOL);
    expect(totals.snapshots).toBeGreaterThan(0);
    expect(totals.ok).toBeGreaterThan(SEEDS_PER_PROTOCOL * 150);
  });

  it('a seed replays exactly: same history, same nemesis actions, same counters', async () => {
    const a = await simulate({ seed: 4242, protocol, ops: 120 });
    const b = await simulate({ seed: 4242, protocol, ops: 120 });
    expect(b.history).toEqual(a.history);
    expect(b.nemesisLog).toEqual(a.nemesisLog);
    expect(b.stats).toEqual(a.stats);
    const c = await simulate({ seed: 4243, protocol, ops: 120 });
    expect(c.history).not.toEqual(a.history);
  });

  it('steady load with repeated leader partitions only', async () => {
    for (const seed of [11, 12, 13]) {
      const r = await simulate({ seed, protocol, nemesis: { partitions: true, oneWay: false, crashes: false, messageFaults: false, clockSkew: false, transfers: false, membership: false } });
      expect(r.ok, `seed ${seed}: ${r.violation?.message ?? r.linearizability}`).toBe(true);
      expect(r.stats.partitions).toBeGreaterThan(2);
      expect(r.stats.crashes).toBe(0);
    }
  });

  it('steady load with crash/restart of random nodes and snapshot catch-up', async () => {
    let restores = 0;
    for (const seed of [21, 22, 23]) {
      const r = await simulate({
        seed,
        protocol,
        ops: 300,
        snapshotEntries: 20,
        nemesis: { partitions: false, oneWay: false, crashes: true, messageFaults: false, clockSkew: false, transfers: false, membership: false },
      });
      expect(r.ok, `seed ${seed}: ${r.violation?.message ?? r.linearizability}`).toBe(true);
      expect(r.stats.crashes).toBeGreaterThan(1);
      restores += r.stats.snapshotRestores;
    }
    expect(restores).toBeGreaterThan(0);
  });

  it('steady load with membership churn and leadership transfers', async () => {
    let changes = 0;
    for (const seed of [31, 32, 33]) {
      const r = await simulate({ seed, protocol, nemesis: { partitions: false, oneWay: false, crashes: false, messageFaults: false, clockSkew: false, transfers: true, membership: true } });
      expect(r.ok, `seed ${seed}: ${r.violation?.message ?? r.linearizability}`).toBe(true);
      changes += r.stats.membershipChanges;
    }
    expect(changes).toBeGreaterThan(2);
  });

  it('election storms (bouncing the leader, then voters) keep every invariant', async () => {
    let storms = 0;
    for (const seed of [41, 42, 43, 44]) {
      const r = await simulate({ seed, protocol, nemesis: { electionStorms: true } });
      expect(r.ok, `seed ${seed}: ${r.violation?.message ?? r.linearizability}`).toBe(true);
      storms += r.nemesisLog.filter(([, a]) => a.startsWith('election storm')).length;
    }
    expect(storms).toBeGreaterThan(2);
  });

  it('lease and linearizable reads mixed, clock skew within the drift bound: still linearizable', async () => {
    let reads = 0;
    for (const seed of [51, 52, 53, 54]) {
      const r = await simulate({ seed, protocol, reads: 'mixed' });
      expect(r.ok, `seed ${seed}: ${r.violation?.message ?? r.linearizability}`).toBe(true);
      reads += r.history.filter((o) => o.input.f === 'get' && o.status === 'ok').length;
    }
    expect(reads).toBeGreaterThan(200);
  });

  it('with every message round-tripped through the protocol codec', async () => {
    for (const seed of [61, 62]) {
      const r = await simulate({ seed, protocol, serialize: true });
      expect(r.ok, `seed ${seed}: ${r.violation?.message ?? r.linearizability}`).toBe(true);
    }
  });

  it('without a nemesis nothing is lost or refused for long', async () => {
    const r = await simulate({ seed: 5, protocol, nemesis: false });
    expect(r.ok).toBe(true);
    expect(r.stats.opsUnknown).toBe(0);
    expect(r.stats.leaderships).toBe(1);
  });
});

describe('resolved options', () => {
  it.each(['raft', 'paxos'] as const)('%s: the result carries every option with its default, JSON round-trips, and replays the run', async (protocol) => {
    const r = await simulate({ seed: 77, protocol, ops: 60, reads: 'mixed', nemesis: { oneWay: false }, bugs: { staleReads: false }, trace: () => {} });
    const o = r.options;
    expect(o).toMatchObject({ seed: 77, protocol, nodes: 5, ops: 60, clients: 5, keys: 3, tickMs: 10, reads: 'mixed', requestTimeoutMs: 400, snapshotEntries: 40 });
    expect(o).toMatchObject({ serialize: false, checkEveryEvent: true, maxLoadMs: 120_000, convergeMs: 30_000, resolveUnknown: true, durableStateChecks: true });
    expect(o.bugs).toEqual({ forgetVote: false, staleReads: false });
    // The nemesis: the one option given, every other default (lease reads narrow the clock rates).
    expect(o.nemesis).toMatchObject({ oneWay: false, partitions: true, crashes: true, duplicates: true, electionStorms: false, clockRate: [0.96, 1.04], intervalMs: [50, 300], faultMs: [50, 600] });
    if (protocol === 'raft') {
      // The testkit's defaults on top of the core's (and leaseRead for lease reads).
      expect(o.raftOptions).toMatchObject({ electionTicks: 10, heartbeatTicks: 1, trailingEntries: 8, leaseRead: true, preVote: true, checkQuorum: true });
      expect(o.paxosOptions).toBeUndefined();
    } else {
      expect(o.paxosOptions).toMatchObject({ electionTicks: 10, heartbeatTicks: 1, leaseTicks: 9, checkQuorum: true });
      expect(o.raftOptions).toBeUndefined();
    }
    expect('trace' in o).toBe(false);
    // Plain data: a JSON round trip changes nothing.
    const json = JSON.parse(JSON.stringify(o)) as typeof o;
    expect(json).toStrictEqual(JSON.parse(JSON.stringify(json)));
    expect(json).toEqual(o);
    // And the options alone replay the run.
    const again = await simulate(json);
    expect(again.history).toEqual(r.history);
    expect(again.nemesisLog).toEqual(r.nemesisLog);
    expect(again.stats).toEqual(r.stats);
    expect(again.options).toEqual(o);
  });

  it('the nemesis switched off is `false`', async () => {
    const r = await simulate({ seed: 3, ops: 20, nemesis: false, bugs: { forgetVote: true } });
    expect(r.options.nemesis).toBe(false);
    expect(r.options.bugs).toEqual({ forgetVote: true, staleReads: false });
  });
});

describe('regressions found by the simulator', () => {
  it.each([
    ['raft', 5],
    ['paxos', 1],
  ] as const)('%s seed %i: a forwarded proposal duplicated by the network is applied once', async (protocol, seed) => {
    // These seeds failed `command-applied-twice` before the runtime dropped repeated requests.
    const r = await simulate({ seed, protocol });
    expect(r.violation, r.violation?.message).toBeUndefined();
    expect(r.ok).toBe(true);
  });
});

// Seed searches: seconds alone, several times that while turbo runs every package's tests at once.
describe('negative controls: seeded bugs the simulator must catch', { timeout: 180_000 }, () => {
  it('raft: a storage that forgets the vote on crash (caught by the vote-durability invariant)', async () => {
    const f = await firstFailure({ protocol: 'raft', bugs: { forgetVote: true } }, 40);
    expect(f).not.toBeNull();
    expect(f!.result.violation?.invariant).toBe('vote-durability');
    // The failing seed replays to the same violation.
    const again = await simulate({ seed: f!.seed, protocol: 'raft', bugs: { forgetVote: true } });
    expect(again.violation).toEqual(f!.result.violation);
  });

  it('paxos: a storage that forgets the promise on crash (caught by the term-durability invariant)', async () => {
    const f = await firstFailure({ protocol: 'paxos', bugs: { forgetVote: true } }, 40);
    expect(f).not.toBeNull();
    expect(f!.result.violation?.invariant).toBe('term-durability');
  });

  it.each(['raft', 'paxos'] as const)('%s: a forgotten vote/promise is also caught by its consequence (two leaders in a term) under election storms', async (protocol) => {
    const stormsOnly = { partitions: false, oneWay: false, crashes: false, messageFaults: false, clockSkew: false, transfers: false, membership: false, electionStorms: true };
    const f = await firstFailure({ protocol, bugs: { forgetVote: true }, durableStateChecks: false, nemesis: stormsOnly }, 80);
    expect(f).not.toBeNull();
    expect(f!.result.violation?.invariant).toBe('election-safety');
  });

  it.each(['raft', 'paxos'] as const)('%s: reads served from a possibly stale replica (caught by the linearizability checker)', async (protocol) => {
    const f = await firstFailure({ protocol, bugs: { staleReads: true } }, 40);
    expect(f).not.toBeNull();
    expect(f!.result.violation).toBeUndefined();
    expect(f!.result.linearizability).toBe('illegal');
    const failure = f!.result.linearizabilityFailure!;
    // The operations that could not be linearized include a read.
    expect(failure.candidates.some((o) => o.input.f === 'get')).toBe(true);
  });
});
