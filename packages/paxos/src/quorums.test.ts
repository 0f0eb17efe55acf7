/**
 * Flexible quorums (Howard, Malkhi, Spiegelman 2016): phase-1 and phase-2 quorums need only
 * intersect each other, |Q1| + |Q2| > N. Plus option validation and leadership transfer.
 */
import fc from 'fast-check';
import {
  createRandom,
  EMPTY_HARD_STATE,
  InvalidArgumentError,
  InvalidConfigurationError,
  NotLeaderError,
  TransferInProgressError,
} from '@synod/log';
import { describe, expect, it } from 'vitest';
import { paxos } from './index.js';
import { PaxosMessageType as T } from './messages.js';
import { checkQuorumSizes, isQuorum, quorumSizes, quorumValue, resolveOptions } from './options.js';
import { Cluster, isType } from './test/cluster.js';

const empty = { hardState: EMPTY_HARD_STATE, snapshot: null, entries: [] };

describe('quorum sizes', () => {
  it('defaults to majorities', () => {
    expect(quorumSizes(1, undefined, undefined)).toEqual({ q1: 1, q2: 1 });
    expect(quorumSizes(4, undefined, undefined)).toEqual({ q1: 3, q2: 3 });
    expect(quorumSizes(5, undefined, undefined)).toEqual({ q1: 3, q2: 3 });
  });

  it('derives the other size so that |Q1| + |Q2| = N + 1, and clamps to N as membership shrinks or grows', () => {
    expect(quorumSizes(5, undefined, 2)).toEqual({ q1: 4, q2: 2 });
    expect(quorumSizes(7, undefined, 2)).toEqual({ q1: 6, q2: 2 });
    expect(quorumSizes(1, undefined, 2)).toEqual({ q1: 1, q2: 1 });
    expect(quorumSizes(5, 2, undefined)).toEqual({ q1: 2, q2: 4 });
    // Both given: Q2 stays, Q1 grows when N grows past what they cover.
    expect(quorumSizes(5, 4, 2)).toEqual({ q1: 4, q2: 2 });
    expect(quorumSizes(6, 4, 2)).toEqual({ q1: 5, q2: 2 });
    expect(quorumSizes(3, 4, 2)).toEqual({ q1: 3, q2: 2 });
    for (let n = 1; n <= 9; n++) {
      for (const p1 of [undefined, 1, 2, 3, 5, 9]) {
        for (const p2 of [undefined, 1, 2, 4, 9]) {
          const { q1, q2 } = quorumSizes(n, p1, p2);
          expect(q1 + q2).toBeGreaterThan(n);
          expect(q1).toBeLessThanOrEqual(n);
          expect(q2).toBeLessThanOrEqual(n);
        }
      }
    }
  });

  it('counts quorums and the q2-th largest value, both halves of a joint configuration', () => {
    const o = resolveOptions({ phase1Quorum: 4, phase2Quorum: 2 });
    const cfg = { voters: ['a', 'b', 'c', 'd', 'e'], learners: ['z'] };
    expect(isQuorum(cfg, (v) => ['a', 'b'].includes(v), 'q2', o)).toBe(true);
    expect(isQuorum(cfg, (v) => ['a', 'b', 'c'].includes(v), 'q1', o)).toBe(false);
    expect(isQuorum(cfg, (v) => ['a', 'b', 'c', 'z'].includes(v), 'q1', o)).toBe(false); // learners never count
    const m: Record<string, number> = { a: 9, b: 7, c: 3, d: 1, e: 0, z: 100 };
    expect(quorumValue(cfg, (v) => m[v]!, o)).toBe(7);
    const joint = { voters: ['a', 'b', 'c'], learners: [], outgoingVoters: ['d', 'e', 'f'] };
    const maj = resolveOptions({});
    expect(quorumValue(joint, (v) => ({ a: 5, b: 5, c: 0, d: 2, e: 1, f: 0 })[v]!, maj)).toBe(1);
  });

  it('quorumValue is the q2-th largest value for any voter count, values and quorum options (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 40 }),
        fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
        (values, p1, p2) => {
          const voters = values.map((_, i) => `v${i}`);
          const o = resolveOptions({});
          const opts = { ...o, phase1Quorum: p1, phase2Quorum: p2 };
          const q2 = quorumSizes(voters.length, p1, p2).q2;
          const expected = [...values].sort((a, b) => b - a)[q2 - 1];
          expect(quorumValue({ voters, learners: [] }, (v) => values[Number(v.slice(1))]!, opts)).toBe(expected);
        },
      ),
    );
  });

  it('|Q1| + |Q2| <= N is refused when the core is built', () => {
    const p = paxos({ phase1Quorum: 2, phase2Quorum: 2 });
    const bootstrap = { voters: ['a', 'b', 'c', 'd', 'e'], learners: [] };
    expect(() => p.create({ id: 'a', state: empty, bootstrap, random: createRandom(1) })).toThrow(InvalidConfigurationError);
    const ok = paxos({ phase1Quorum: 4, phase2Quorum: 2 });
    expect(() => ok.create({ id: 'a', state: empty, bootstrap, random: createRandom(1) })).not.toThrow();
    expect(() => checkQuorumSizes({ voters: ['a', 'b', 'c', 'd'], learners: [] }, resolveOptions({ phase1Quorum: 2, phase2Quorum: 2 }))).toThrow(
      InvalidConfigurationError,
    );
  });

  it('invalid options are refused with InvalidConfigurationError', () => {
    for (const bad of [
      { electionTicks: 0 },
      { electionTicks: 1 },
      { electionTicks: 2.5 },
      { heartbeatTicks: 10, electionTicks: 10 },
      { leaseTicks: 10, electionTicks: 10 },
      { phase1Quorum: 0 },
      { phase2Quorum: -1 },
      { maxBatchEntries: 0 },
      { snapshotChunkBytes: Number.NaN },
    ]) {
      expect(() => paxos(bad)).toThrow(InvalidConfigurationError);
    }
    expect(resolveOptions({})).toMatchObject({ electionTicks: 10, heartbeatTicks: 1, leaseTicks: 9, checkQuorum: true, forwardProposals: true });
    expect(() => paxos().create({ id: 'has space', state: empty, random: createRandom(1) })).toThrow(InvalidConfigurationError);
  });
});

describe('flexible quorums at work', () => {
  const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
  const flex = { electionTicks: 6, phase1Quorum: 4, phase2Quorum: 2 };

  it('commits with only a phase-2 quorum alive (N = 5, |Q2| = 2)', () => {
    const c = new Cluster({ ids, options: { ...flex, checkQuorum: true }, seed: 130 });
    const l = c.waitLeader();
    const survivor = ids.find((id) => id !== l)!;
    for (const id of ids) if (id !== l && id !== survivor) c.crash(id);
    for (let i = 0; i < 10; i++) c.propose(l, `q${i}`);
    c.waitApplied('q9', [l, survivor]);
    // The leader keeps its role: check-quorum needs only |Q2| live acceptors.
    c.run(30);
    expect(c.core(l).status().role).toBe('leader');
    c.core(l).read(1, 'linearizable');
    c.process(l);
    c.run(2);
    expect(c.node(l).reads.find((r) => r.id === 1)?.index).toBeGreaterThan(0);
  });

  it('a leader change needs a phase-1 quorum (|Q1| = 4): three survivors cannot elect, a fourth can', () => {
    const c = new Cluster({ ids, options: flex, seed: 131 });
    const l = c.waitLeader();
    c.propose(l, 'before');
    c.waitApplied('before');
    const f = ids.find((id) => id !== l)!;
    c.crash(l);
    c.crash(f);
    c.run(200);
    expect(c.leader()).toBeNull();
    c.restart(f);
    const nl = c.waitLeader();
    expect(nl).not.toBe(l);
    c.propose(nl, 'after');
    c.waitApplied('after', c.upIds());
  });

  it('a membership change that would break the explicit sizes is refused', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: { electionTicks: 6, phase1Quorum: 2, phase2Quorum: 2 }, seed: 132, joiners: ['n4'] });
    const l = c.waitLeader();
    expect(() => c.core(l).proposeMembershipChange({ type: 'addVoter', id: 'n4' })).toThrow(InvalidConfigurationError);
    c.core(l).proposeMembershipChange({ type: 'addLearner', id: 'n4' }); // learners do not count
    c.process(l);
    expect(c.core(l).status().config.learners).toEqual(['n4']);
  });
});

describe('leadership transfer', () => {
  const opts = { electionTicks: 6 };

  it('the target, once caught up, starts phase 1 at once and becomes leader', () => {
    const c = new Cluster({ options: opts, seed: 140 });
    const l = c.waitLeader();
    const to = c.ids.find((id) => id !== l)!;
    c.propose(l, 'a');
    c.waitApplied('a');
    c.recordSent = true;
    c.core(l).transferLeadership(to);
    expect(c.core(l).status().transferring).toBe(true);
    expect(() => c.core(l).propose(new Uint8Array(1))).toThrow(TransferInProgressError);
    c.process(l);
    const round = c.core(l).status().term;
    c.runUntil(() => c.leader() === to, 20);
    expect(c.sent.filter(isType(T.TimeoutNow, l, to)).length).toBeGreaterThan(0);
    // One forced phase 1, right above the old leader's round (repeated TimeoutNows are ignored).
    expect(c.core(to).status().term).toBe(round + 1);
    // Forced: the other acceptors answered although they had just heard from the old leader.
    expect(c.core(l).status().role).toBe('follower');
    c.propose(to, 'b');
    c.waitApplied('b');
  });

  it('waits until a lagging target has caught up before telling it to start', () => {
    const c = new Cluster({ options: opts, seed: 141 });
    const l = c.waitLeader();
    const to = c.ids.find((id) => id !== l)!;
    c.isolate(to);
    for (let i = 0; i < 10; i++) c.propose(l, `t${i}`);
    c.run(2);
    c.recordSent = true;
    c.core(l).transferLeadership(to);
    c.process(l);
    c.deliverAll();
    expect(c.sent.some(isType(T.TimeoutNow))).toBe(false);
    c.heal();
    c.runUntil(() => c.leader() === to, 30);
    expect(c.commands(to)).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}`));
  });

  it('aborts after an election timeout when the target cannot be reached; proposals flow again', () => {
    const c = new Cluster({ options: opts, seed: 142 });
    const l = c.waitLeader();
    const to = c.ids.find((id) => id !== l)!;
    c.crash(to);
    c.core(l).transferLeadership(to);
    expect(() => c.core(l).transferLeadership(c.ids.find((id) => id !== l && id !== to)!)).toThrow(TransferInProgressError);
    c.run(6);
    expect(c.core(l).status().transferring).toBe(false);
    expect(c.core(l).status().role).toBe('leader');
    c.propose(l, 'resumed');
    c.waitApplied('resumed', [l, c.ids.find((id) => id !== l && id !== to)!]);
    // After a transfer began, this ballot serves no lease reads any more.
    c.core(l).read(1, 'lease');
    c.process(l);
    expect(c.node(l).reads.find((r) => r.id === 1)?.error).toBeDefined();
  });

  it('refuses a transfer from a follower or to a non-voter', () => {
    const c = new Cluster({ options: opts, seed: 143 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    expect(() => c.core(f).transferLeadership(l)).toThrow(NotLeaderError);
    expect(() => c.core(l).transferLeadership('n9')).toThrow(InvalidArgumentError);
    c.core(l).transferLeadership(l); // already: nothing to do
    expect(c.core(l).status().transferring).toBe(false);
  });
});
