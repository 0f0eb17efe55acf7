/** Leadership transfer (Raft thesis §3.10). */
import { InvalidArgumentError, NotLeaderError, TransferInProgressError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { RaftMessageType } from './messages.js';
import { cmd, TestNetwork } from './test/network.js';

const ids = ['a', 'b', 'c'];
const others = (l: string) => ids.filter((x) => x !== l);

describe('thesis §3.10 leadership transfer', () => {
  it('transfers to an up-to-date follower with TimeoutNow; the target wins at once', () => {
    const net = new TestNetwork(ids, { seed: 2 });
    const l = net.elect();
    net.tick(1);
    const [t] = others(l) as [string];
    const term = net.status(l).term;
    net.delivered.clear();
    net.core(l).transferLeadership(t);
    expect(net.status(l).transferring).toBe(true);
    net.stabilize();
    expect(net.delivered.get(RaftMessageType.TimeoutNow)).toBe(1);
    expect(net.status(t)).toMatchObject({ role: 'leader', term: term + 1 });
    expect(net.status(l)).toMatchObject({ role: 'follower', leader: t, transferring: false });
    expect(net.delivered.get(RaftMessageType.PreVote) ?? 0).toBe(0); // no pre-vote for a transfer
  });

  it('catches a lagging target up first, and only then sends TimeoutNow', () => {
    const net = new TestNetwork(ids, { seed: 3 });
    const l = net.elect();
    const [t] = others(l) as [string];
    net.isolate(t);
    for (let i = 0; i < 20; i++) net.core(l).propose(cmd(`v${i}`));
    net.stabilize();
    net.heal();
    const lastIndex = net.status(l).lastIndex;
    let targetLastAtTimeoutNow = -1;
    net.addRule((m) => {
      if (m.type === RaftMessageType.TimeoutNow && targetLastAtTimeoutNow < 0) targetLastAtTimeoutNow = net.status(t).lastIndex;
      return false;
    });
    net.core(l).transferLeadership(t);
    net.tick(3);
    expect(targetLastAtTimeoutNow).toBe(lastIndex);
    expect(net.leader()).toBe(t);
    expect(net.appliedData(t).length).toBe(20);
  });

  it('a target that forgot the leader in a failed pre-vote round still obeys TimeoutNow', () => {
    const net = new TestNetwork(ids, { seed: 4 });
    const l = net.elect();
    const [t] = others(l) as [string];
    const term = net.status(l).term;
    // The target stops hearing the leader and runs (failing) pre-vote rounds: it forgets the leader.
    const cut = net.addRule((m) => m.from === l && m.to === t && m.type !== RaftMessageType.TimeoutNow);
    let ticks = 0;
    while (net.status(t).leader !== null && ticks < 100) {
      net.tick(1);
      ticks++;
    }
    expect(net.status(t).leader).toBeNull();
    expect(net.status(l)).toMatchObject({ role: 'leader', term });
    net.core(l).transferLeadership(t);
    net.stabilize();
    cut();
    net.tick(1);
    expect(net.status(t)).toMatchObject({ role: 'leader', term: term + 1 });
    expect(net.status(l).transferring).toBe(false);
  });

  it('repeats TimeoutNow on heartbeat answers when the first one is lost', () => {
    const net = new TestNetwork(ids, { seed: 6 });
    const l = net.elect();
    net.tick(1);
    const [t] = others(l) as [string];
    const term = net.status(l).term;
    let lost = 0;
    net.addRule((m) => m.type === RaftMessageType.TimeoutNow && lost++ === 0);
    net.core(l).transferLeadership(t);
    net.stabilize();
    expect(lost).toBe(1);
    expect(net.status(l)).toMatchObject({ role: 'leader', transferring: true });
    net.tick(3);
    expect(lost).toBeGreaterThan(1);
    expect(net.status(t)).toMatchObject({ role: 'leader', term: term + 1 });
  });

  it('refuses proposals with TransferInProgressError while the transfer is in progress', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    const [t] = others(l) as [string];
    net.isolate(t);
    net.core(l).transferLeadership(t);
    const last = net.status(l).lastIndex;
    expect(() => net.core(l).propose(cmd('x'))).toThrow(TransferInProgressError);
    expect(() => net.core(l).proposeMembershipChange({ type: 'addLearner', id: 'z' })).toThrow(TransferInProgressError);
    expect(net.status(l).lastIndex).toBe(last);
  });

  it('aborts after an election timeout when the target does not take over; proposals work again', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e'], { options: { electionTicks: 10 } });
    const l = net.elect();
    const t = ['a', 'b', 'c', 'd', 'e'].find((x) => x !== l)!;
    net.isolate(t);
    net.core(l).transferLeadership(t);
    let ticks = 0;
    while (net.status(l).transferring && ticks < 50) {
      net.tick(1);
      ticks++;
    }
    expect(net.status(l).transferring).toBe(false);
    expect(ticks).toBeLessThanOrEqual(10);
    expect(net.status(l).role).toBe('leader');
    net.propose(l, 'after-abort');
    expect(net.appliedData(l)).toEqual(['after-abort']);
  });

  it('TimeoutNow lets the target win even though the voters are in contact with the old leader', () => {
    // Check-quorum stickiness would make voters ignore an ordinary vote request right now.
    const net = new TestNetwork(ids, { seed: 5 });
    const l = net.elect();
    net.tick(1);
    const [t] = others(l) as [string];
    net.core(l).transferLeadership(t);
    net.stabilize();
    expect(net.leader()).toBe(t);
  });

  it('refuses a transfer on a follower (NotLeaderError) or to a non-voter (InvalidArgumentError)', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    const [f] = others(l) as [string];
    expect(() => net.core(f).transferLeadership(l)).toThrow(NotLeaderError);
    expect(() => net.core(l).transferLeadership('nobody')).toThrow(InvalidArgumentError);
    expect(() => net.core(l).transferLeadership('bad id')).toThrow(InvalidArgumentError);
    net.core(l).transferLeadership(l); // to itself: already done
    expect(net.status(l).transferring).toBe(false);
  });
});
