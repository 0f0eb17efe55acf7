/** Membership changes (Raft thesis ch. 4): joint consensus, learners, promotion, removal. */
import {
  ConfigChangeInProgressError,
  decodeConfiguration,
  EntryType,
  InvalidConfigurationError,
  isJoint,
  NotLeaderError,
  UnsupportedError,
} from '@synod/log';
import { describe, expect, it } from 'vitest';
import { RaftMessageType } from './messages.js';
import { cmd, logOf, TestNetwork } from './test/network.js';

function configs(net: TestNetwork, id: string) {
  return logOf(net.core(id))
    .entries.filter((e) => e.type === EntryType.Config)
    .map((e) => decodeConfiguration(e.data));
}

function sorted(x: readonly string[]) {
  return [...x].sort();
}

describe('thesis §4.3 joint consensus', () => {
  it('removing a voter goes through C_old,new and leaves it automatically for C_new', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e'], { options: { preVote: false } });
    net.campaign('a');
    net.core('a').proposeMembershipChange({ type: 'remove', id: 'e' });
    net.stabilize();
    const cs = configs(net, 'a');
    expect(cs.length).toBe(3);
    expect(isJoint(cs[1]!)).toBe(true);
    expect(sorted(cs[1]!.voters)).toEqual(['a', 'b', 'c', 'd']);
    expect(sorted(cs[1]!.outgoingVoters!)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(isJoint(cs[2]!)).toBe(false);
    expect(sorted(cs[2]!.voters)).toEqual(['a', 'b', 'c', 'd']);
    expect(net.status('a').commitIndex).toBe(net.status('a').lastIndex);
    expect(sorted(net.status('b').config.voters)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('the joint configuration needs a majority of both C_old and C_new', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e'], { options: { preVote: false, checkQuorum: false } });
    net.campaign('a');
    // C_old = {a,b,c,d,e}, C_new = {a,b,d,e} (remove c). Only a, c, d reachable: 3/5 of
    // C_old but 2/4 of C_new -> the joint entry must not commit.
    net.isolate('b');
    net.isolate('e');
    net.core('a').proposeMembershipChange({ type: 'remove', id: 'c' });
    net.tick(5, ['a', 'c', 'd']);
    const st = net.status('a');
    expect(isJoint(st.config)).toBe(true);
    expect(st.commitIndex).toBeLessThan(st.lastIndex);
    // With b back: C_new has a, b, d (3/4) and C_old a, b, c, d: the change completes.
    net.heal();
    net.isolate('e');
    net.tick(3, ['a', 'b', 'c', 'd']);
    expect(isJoint(net.status('a').config)).toBe(false);
    expect(sorted(net.status('a').config.voters)).toEqual(['a', 'b', 'd', 'e']);
    expect(net.status('a').commitIndex).toBe(net.status('a').lastIndex);
  });

  it('one change in flight at a time: a second one is refused with ConfigChangeInProgressError', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false } });
    net.campaign('a');
    net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'd' });
    expect(() => net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'e' })).toThrow(ConfigChangeInProgressError);
    net.stabilize();
    net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'e' }); // now allowed
    expect(net.status('a').config.learners).toEqual(['d', 'e']);
  });

  it('a leader may not append a configuration entry before committing an entry of its term', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false } });
    net.addRule((m) => m.type === RaftMessageType.AppendResponse);
    net.campaign('a');
    expect(net.status('a').role).toBe('leader');
    expect(() => net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'd' })).toThrow(ConfigChangeInProgressError);
    net.heal();
    net.tick(2);
    net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'd' });
    expect(net.status('a').config.learners).toEqual(['d']);
  });

  it('servers use the newest configuration in their log, committed or not, and roll back on truncation', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false, checkQuorum: false } });
    net.campaign('a');
    net.stabilize();
    // a appends a config entry that reaches only b, then a dies.
    net.cutLink('a', 'c');
    net.addRule((m) => m.type === RaftMessageType.AppendResponse);
    net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'z' });
    net.stabilize();
    expect(net.status('b').config.learners).toEqual(['z']); // uncommitted, yet in effect on b
    expect(net.status('b').commitIndex).toBeLessThan(net.status('b').lastIndex);
    net.crash('a');
    net.heal();
    // c (without the entry) is elected with b... only if b's log is not more up to date; make
    // c win by giving it a newer entry: campaign c with b cut from it, then let c overwrite b.
    net.isolate('b');
    net.campaign('c');
    expect(net.status('c').role).not.toBe('leader'); // c alone is no quorum
    net.heal();
    // b's log is longer but of the same term; c cannot win against it, so b wins and keeps z:
    const l = net.elect();
    expect(l).toBe('b');
    expect(net.status('c').config.learners).toEqual(['z']);
    // Now the truncation case: a fresh cluster where the follower holding the entry loses.
    const n2 = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false, checkQuorum: false } });
    n2.campaign('a');
    n2.stabilize();
    n2.isolate('b');
    n2.isolate('c');
    n2.core('a').proposeMembershipChange({ type: 'addLearner', id: 'z' });
    n2.drainAll();
    expect(n2.status('a').config.learners).toEqual(['z']);
    n2.crash('a');
    n2.heal();
    n2.isolate('a');
    const l2 = n2.elect();
    expect(l2 === 'b' || l2 === 'c').toBe(true);
    n2.propose(l2, 'after');
    n2.restart('a');
    n2.heal();
    n2.tick(3);
    expect(n2.status('a').config.learners).toEqual([]); // the uncommitted entry was truncated
    expect(n2.appliedData('a')).toEqual(['after']);
  });
});

describe('thesis §4.2.1 learners and promotion', () => {
  it('learners receive entries but never vote and never campaign', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'l'], { joiners: ['l'], options: { preVote: false } });
    net.campaign('a');
    net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'l' });
    net.stabilize();
    net.propose('a', 'x');
    net.tick(2);
    expect(net.appliedData('l')).toEqual(['x']);
    expect(net.status('l').role).toBe('learner');
    // The learner never campaigns, however long it hears nothing.
    net.isolate('l');
    net.tick(100, ['l']);
    expect(net.status('l').role).toBe('learner');
    expect(net.status('l').term).toBe(net.status('a').term);
    // Its vote does not count: b alone + learner cannot elect b.
    net.heal();
    net.isolate('a');
    net.isolate('c');
    net.campaign('b');
    expect(net.status('b').role).not.toBe('leader');
  });

  it('addVoter of a new id adds it as a learner, then promotes it through a joint configuration once caught up', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd'], { joiners: ['d'], options: { preVote: false } });
    net.campaign('a');
    for (let i = 0; i < 20; i++) net.core('a').propose(cmd(`v${i}`));
    net.stabilize();
    net.isolate('d'); // d cannot catch up yet
    net.core('a').proposeMembershipChange({ type: 'addVoter', id: 'd', address: 'mem://d' });
    net.tick(5);
    expect(net.status('a').config.learners).toEqual(['d']);
    expect(net.status('a').config.voters).not.toContain('d');
    expect(net.status('a').config.addresses).toEqual({ d: 'mem://d' });
    expect(() => net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'e' })).toThrow(ConfigChangeInProgressError);
    net.heal();
    net.tick(5);
    const cs = configs(net, 'a').slice(1);
    expect(cs.map((c) => [sorted(c.voters), c.learners, isJoint(c)])).toEqual([
      [['a', 'b', 'c'], ['d'], false],
      [['a', 'b', 'c', 'd'], [], true],
      [['a', 'b', 'c', 'd'], [], false],
    ]);
    expect(net.status('d').role).toBe('follower');
    expect(net.appliedData('d').length).toBe(20);
    expect(net.status('d').config.addresses).toEqual({ d: 'mem://d' });
  });

  it('addVoter of an existing learner promotes it', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd'], { joiners: ['d'], options: { preVote: false } });
    net.campaign('a');
    net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'd' });
    net.tick(2);
    net.core('a').proposeMembershipChange({ type: 'addVoter', id: 'd' });
    net.tick(2);
    expect(sorted(net.status('a').config.voters)).toEqual(['a', 'b', 'c', 'd']);
    expect(net.status('a').config.learners).toEqual([]);
    expect(isJoint(net.status('a').config)).toBe(false);
    // d now counts: with b and c gone, a + d are not a majority of 4, so nothing commits.
    net.isolate('b');
    net.isolate('c');
    const before = net.status('a').commitIndex;
    net.core('a').propose(cmd('y'));
    net.tick(3, ['a', 'd']);
    expect(net.status('a').commitIndex).toBe(before);
  });

  it('a node with an empty configuration waits to be added: it never campaigns and accepts the leader', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'j'], { joiners: ['j'], options: { preVote: false } });
    net.tick(100, ['j']);
    expect(net.status('j')).toMatchObject({ role: 'follower', term: 0, leader: null });
    expect(net.status('j').config.voters).toEqual([]);
    net.campaign('a');
    net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'j' });
    net.tick(3);
    expect(net.status('j')).toMatchObject({ role: 'learner', leader: 'a' });
    expect(net.status('j').lastIndex).toBe(net.status('a').lastIndex);
  });

  it('membership calls refuse what they cannot do, and change nothing', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false } });
    expect(() => net.core('b').proposeMembershipChange({ type: 'addLearner', id: 'x' })).toThrow(NotLeaderError);
    net.campaign('a');
    expect(() => net.core('a').proposeMembershipChange({ type: 'addLearner', id: 'b' })).toThrow(UnsupportedError);
    const last = net.status('a').lastIndex;
    net.core('a').proposeMembershipChange({ type: 'addVoter', id: 'b' }); // already a voter: no-op
    net.core('a').proposeMembershipChange({ type: 'remove', id: 'zz' }); // not a member: no-op
    expect(net.status('a').lastIndex).toBe(last);
    const solo = new TestNetwork(['a'], { options: { preVote: false } });
    solo.campaign('a');
    solo.tick(1);
    expect(() => solo.core('a').proposeMembershipChange({ type: 'remove', id: 'a' })).toThrow(InvalidConfigurationError);
  });
});

describe('thesis §4.2.2-4.2.3 removal', () => {
  it('removing the leader: it manages the change, steps down once C_new commits, and another leader takes over', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false } });
    net.campaign('a');
    net.core('a').proposeMembershipChange({ type: 'remove', id: 'a' });
    net.stabilize();
    expect(net.status('a').role).toBe('follower');
    expect(sorted(net.status('a').config.voters)).toEqual(['b', 'c']);
    // The handover (TimeoutNow to the most up-to-date voter) elects a new leader promptly.
    expect(net.leader() === 'b' || net.leader() === 'c').toBe(true);
    const l = net.leader()!;
    net.propose(l, 'after-removal');
    expect(net.appliedData('b')).toEqual(['after-removal']);
    expect(net.appliedData('c')).toEqual(['after-removal']);
    // a is no longer a member: it never campaigns.
    net.tick(100, ['a']);
    expect(net.status('a').role).toBe('follower');
  });

  it('removing a partitioned node works, and the node cannot disrupt the cluster after healing', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e'], { seed: 6 });
    const l = net.elect();
    const victim = ['a', 'b', 'c', 'd', 'e'].find((x) => x !== l)!;
    net.isolate(victim);
    net.core(l).proposeMembershipChange({ type: 'remove', id: victim });
    net.tick(5);
    expect(net.status(l).config.voters).not.toContain(victim);
    expect(isJoint(net.status(l).config)).toBe(false);
    const term = net.status(l).term;
    // The removed node never learned; it keeps trying to get elected.
    net.tick(60, [victim]);
    net.heal();
    net.tick(60);
    expect(net.leader()).toBe(l);
    expect(net.status(l).term).toBe(term);
    for (const id of ['a', 'b', 'c', 'd', 'e'].filter((x) => x !== victim)) expect(net.status(id).term).toBe(term);
  });

  it('a removed node that learned of its removal stops campaigning entirely', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false } });
    net.campaign('a');
    net.core('a').proposeMembershipChange({ type: 'remove', id: 'c' });
    net.tick(3);
    expect(net.status('c').config.voters).toEqual(['a', 'b']);
    net.isolate('c');
    net.tick(100, ['c']);
    expect(net.status('c')).toMatchObject({ role: 'follower' });
    expect(net.status('c').term).toBe(net.status('a').term);
  });
});
