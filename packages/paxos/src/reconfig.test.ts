/**
 * Reconfiguration through the log with a stop-sign (Lamport, Malkhi, Zhou, "Stoppable Paxos";
 * PMMC §5): a `Config` entry at slot j governs the slots above j, and its leader proposes nothing
 * above j until j is chosen, so nothing is chosen under the old configuration past the switch.
 */
import {
  ConfigChangeInProgressError,
  decodeConfiguration,
  encodeConfiguration,
  EntryType,
  InvalidArgumentError,
  InvalidConfigurationError,
  NotLeaderError,
  SynodError,
} from '@synod/log';
import { describe, expect, it } from 'vitest';
import { PaxosMessageType as T, type AcceptMessage } from './messages.js';
import { Cluster, isType } from './test/cluster.js';

const opts = { electionTicks: 6 };

function change(c: Cluster, ch: Parameters<ReturnType<Cluster['core']>['proposeMembershipChange']>[0]): number {
  const l = c.leader()!;
  c.core(l).proposeMembershipChange(ch);
  c.process(l);
  return c.core(l).status().lastIndex;
}

function members(c: Cluster): string[] {
  const l = c.leader();
  const cfg = l ? c.core(l).status().config : c.initial;
  return c.upIds().filter((id) => cfg.voters.includes(id) || cfg.learners.includes(id));
}

function waitChosen(c: Cluster, slot: number, ids = members(c)): void {
  c.runUntil(() => ids.every((id) => c.applied(id).length >= slot), 300, `slot ${slot} applied`);
}

describe('membership changes', () => {
  it('the bootstrap configuration is slot 1, byte-identical on every node and chosen from the start', () => {
    const c = new Cluster({ ids: ['n3', 'n1', 'n2'], options: opts });
    const bytes = c.ids.map((id) => c.node(id).storage.load().entries[0]!);
    for (const e of bytes) {
      expect(e).toMatchObject({ index: 1, term: 0, type: EntryType.Config });
      expect(Array.from(e.data)).toEqual(Array.from(bytes[0]!.data));
    }
    expect(decodeConfiguration(bytes[0]!.data).voters).toEqual(['n1', 'n2', 'n3']);
    for (const id of c.ids) expect(c.core(id).status().commitIndex).toBe(1);
  });

  it('a learner receives the log, never votes and never campaigns; it is promoted to voter later', () => {
    const c = new Cluster({ options: opts, seed: 110, joiners: ['n4'] });
    const l = c.waitLeader();
    expect(c.core('n4').status().config.voters).toEqual([]);
    const j = change(c, { type: 'addLearner', id: 'n4', address: 'mem://n4' });
    for (let i = 0; i < 5; i++) c.propose(l, `l${i}`);
    c.waitApplied('l4', c.ids);
    expect(c.core('n4').status().role).toBe('learner');
    expect(c.core('n4').status().config.learners).toEqual(['n4']);
    expect(c.core(l).status().config.addresses).toEqual({ n4: 'mem://n4' });
    expect(c.applied('n4').length).toBeGreaterThanOrEqual(j);
    // The leader and a follower die: the learner must not campaign (and there is no quorum).
    c.recordSent = true;
    c.crash(l);
    c.run(60);
    expect(c.sent.filter(isType(T.Prepare, 'n4'))).toHaveLength(0);
    expect(c.core('n4').status().role).toBe('learner');
    c.restart(l);
    const l2 = c.waitLeader();
    change(c, { type: 'addVoter', id: 'n4' });
    c.propose(l2, 'after-promotion');
    c.waitApplied('after-promotion', c.ids);
    expect(c.core('n4').status().role).toBe('follower');
    expect([...c.core('n4').status().config.voters].sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
  });

  it('a new voter joins empty and catches up from a snapshot; the new configuration needs it in its quorums', () => {
    const c = new Cluster({ ids: ['n1', 'n2'], options: opts, seed: 111, joiners: ['n3'] });
    const l = c.waitLeader();
    for (let i = 0; i < 10; i++) c.propose(l, `j${i}`);
    c.waitApplied('j9', ['n1', 'n2']);
    for (const id of ['n1', 'n2']) c.compact(id);
    c.recordSent = true;
    const j = change(c, { type: 'addVoter', id: 'n3' });
    waitChosen(c, j, ['n1', 'n2', 'n3']);
    expect(c.sent.some(isType(T.Snapshot, l, 'n3'))).toBe(true);
    expect(c.commands('n3')).toEqual(c.commands(l));
    // With {n1, n2, n3} a quorum is 2: the leader and n3 can commit without the other one.
    const other = l === 'n1' ? 'n2' : 'n1';
    c.crash(other);
    c.propose(l, 'with-n3');
    c.waitApplied('with-n3', [l, 'n3']);
  });

  it('removing a follower: the rest commit without it, and the removed node cannot disrupt the cluster', () => {
    const c = new Cluster({ options: opts, seed: 112 });
    const l = c.waitLeader();
    const gone = c.ids.find((id) => id !== l)!;
    const stay = c.ids.find((id) => id !== l && id !== gone)!;
    c.isolate(gone); // it never learns it was removed
    const j = change(c, { type: 'remove', id: gone });
    waitChosen(c, j, [l, stay]);
    c.propose(l, 'without');
    c.waitApplied('without', [l, stay]);
    const round = c.core(l).status().term;
    c.heal();
    c.run(80);
    // It campaigns (its chosen configuration still lists it) but nobody listens to it: the
    // leader keeps its ballot, and writes go on.
    expect(c.core(l).status().role).toBe('leader');
    expect(c.core(l).status().term).toBe(round);
    c.propose(l, 'still');
    c.waitApplied('still', [l, stay]);
  });

  it('removing the leader: it steps down once the change is chosen and the remaining voters elect a leader', () => {
    const c = new Cluster({ options: opts, seed: 113 });
    const l = c.waitLeader();
    c.propose(l, 'a');
    const j = change(c, { type: 'remove', id: l });
    waitChosen(c, j);
    c.runUntil(() => c.core(l).status().role !== 'leader', 20);
    const nl = c.waitLeader();
    expect(nl).not.toBe(l);
    c.propose(nl, 'b');
    c.waitApplied('b', c.ids.filter((id) => id !== l));
    c.run(40);
    expect(c.core(l).status().role).toBe('follower');
    expect(c.leader()).toBe(nl);
  });

  it('one change at a time; refusals throw and change nothing', () => {
    const c = new Cluster({ options: opts, seed: 114, joiners: ['n4', 'n5'] });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l && id !== 'n4' && id !== 'n5')!;
    expect(() => c.core(f).proposeMembershipChange({ type: 'addLearner', id: 'n4' })).toThrow(NotLeaderError);
    const last = c.core(l).status().lastIndex;
    expect(() => c.core(l).proposeMembershipChange({ type: 'addVoter', id: 'bad id' })).toThrow(InvalidArgumentError);
    expect(c.core(l).status().lastIndex).toBe(last);
    change(c, { type: 'addLearner', id: 'n4' });
    expect(() => c.core(l).proposeMembershipChange({ type: 'addLearner', id: 'n5' })).toThrow(ConfigChangeInProgressError);
    waitChosen(c, last + 1);
    // Already a learner: nothing to propose.
    const before = c.core(l).status().lastIndex;
    c.core(l).proposeMembershipChange({ type: 'addLearner', id: 'n4' });
    expect(c.core(l).status().lastIndex).toBe(before);
    // Removing every voter is refused.
    const one = new Cluster({ ids: ['n1'], options: opts });
    one.waitLeader();
    expect(() => one.core('n1').proposeMembershipChange({ type: 'remove', id: 'n1' })).toThrow(InvalidConfigurationError);
  });

  it('stop-sign: nothing is proposed above the configuration slot until it is chosen; later slots use the new quorum', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: opts, seed: 115, joiners: ['n4', 'n5'] });
    const l = c.waitLeader();
    c.propose(l, 'a');
    c.waitApplied('a', ['n1', 'n2', 'n3']);
    c.recordSent = true;
    const j = change(c, { type: 'addVoter', id: 'n4' });
    for (let i = 0; i < 5; i++) c.propose(l, `held${i}`);
    // Held back behind the stop-sign: the log ends at j until j is chosen.
    expect(c.core(l).status().lastIndex).toBe(j);
    const sentAbove = () =>
      (c.sent.filter((m) => m.type === T.Accept) as AcceptMessage[]).some((a) => a.entries.some((e) => e.index > j));
    for (let t = 0; t < 200 && c.core(l).status().commitIndex < j; t++) {
      c.deliverOne();
      expect(c.core(l).status().commitIndex >= j || !sentAbove()).toBe(true);
      if (c.queue.length === 0) c.tick();
    }
    expect(c.core(l).status().commitIndex).toBeGreaterThanOrEqual(j);
    c.waitApplied('held4', ['n1', 'n2', 'n3', 'n4']);
    expect(c.commands('n4')).toEqual(['a', 'held0', 'held1', 'held2', 'held3', 'held4']);
    // The oracle saw every slot above j chosen by a quorum of the four-voter configuration.
    expect(c.chosenConfigAt(j + 1).voters).toContain('n4');
  });

  it('a new leader that recovers a configuration entry also needs a phase-1 quorum of that configuration', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: opts, seed: 116, joiners: ['n4'] });
    c.expireStickiness();
    // n2 accepted, at slot 2, a configuration adding n4 as a voter (from a leader n3 that died).
    const c2 = { voters: ['n1', 'n2', 'n3', 'n4'], learners: [] };
    c.core('n2').step({ type: T.Accept, from: 'n3', to: 'n2', round: 3, commit: 1, seq: 0, entries: [{ index: 2, term: 3, type: EntryType.Config, data: encodeConfiguration(c2) }] });
    c.process('n2');
    c.drop(() => true);
    c.crash('n3');
    c.isolate('n4');
    c.expireStickiness(['n1', 'n2']);
    c.campaign('n1'); // round 1: refused by n2 (promised round 3), n1 learns the round
    c.deliverAll();
    c.recordSent = true;
    c.campaign('n1');
    c.deliverAll();
    // {n1, n2} is a phase-1 quorum of {n1, n2, n3} but not of {n1, n2, n3, n4}, which governs
    // the slots above 2 if slot 2 is chosen: n1 must not lead yet, and it asked n4.
    expect(c.core('n1').status().role).toBe('candidate');
    expect(c.sent.some(isType(T.Prepare, 'n1', 'n4'))).toBe(true);
    c.heal();
    c.campaign('n1');
    c.deliverAll();
    expect(c.core('n1').status().role).toBe('leader');
    c.propose('n1', 'after');
    c.waitApplied('after', ['n1', 'n2', 'n4']);
    expect(decodeConfiguration(c.core('n1').entryAt(2)!.data).voters).toEqual(c2.voters);
  });

  it('reconfiguration under load: proposals keep flowing while members are added and removed', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: opts, seed: 1200 + seed, joiners: ['n4', 'n5'] });
      const r = c.random;
      const plan: Array<{ type: 'addLearner' | 'addVoter' | 'remove'; id: string }> = [
        { type: 'addLearner', id: 'n4' },
        { type: 'addVoter', id: 'n4' },
        { type: 'addVoter', id: 'n5' },
        { type: 'remove', id: 'n1' },
        { type: 'remove', id: 'n4' },
        { type: 'addVoter', id: 'n1' },
      ];
      let next = 0;
      let n = 0;
      for (let step = 0; step < 600 && next < plan.length; step++) {
        const l = c.leader();
        if (l && r.next() < 0.5) {
          try {
            c.propose(l, `load${seed}-${n++}`);
          } catch (err) {
            if (!(err instanceof SynodError)) throw err;
          }
        }
        if (l && r.next() < 0.1) {
          try {
            c.core(l).proposeMembershipChange(plan[next]!);
            c.process(l);
          } catch (err) {
            if (!(err instanceof SynodError)) throw err;
          }
        }
        // Advance the plan once the change is in the chosen configuration of some replica.
        const cfg = c.chosenConfigAt(Number.MAX_SAFE_INTEGER);
        const p = plan[next]!;
        const done =
          p.type === 'remove' ? !cfg.voters.includes(p.id) && !cfg.learners.includes(p.id)
          : p.type === 'addVoter' ? cfg.voters.includes(p.id)
          : cfg.learners.includes(p.id);
        if (done) next++;
        if (r.next() < 0.3) c.reorder();
        if (r.next() < 0.05 && c.queue.length > 0) c.queue.splice(r.int(0, c.queue.length - 1), 1);
        c.tick();
        c.deliverAll(r.int(5, 50));
      }
      expect(next).toBe(plan.length);
      const l = c.waitLeader(500);
      c.propose(l, `end${seed}`);
      const members = c.core(l).status().config.voters;
      expect([...members].sort()).toEqual(['n1', 'n2', 'n3', 'n5']);
      c.waitApplied(`end${seed}`, members, 500);
      c.checkPrefixes();
    }
  });
});
