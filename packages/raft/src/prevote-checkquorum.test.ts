/** Pre-vote and check-quorum (Raft thesis §9.6, §6.2, §4.2.3). */
import { describe, expect, it } from 'vitest';
import { type RaftMessage, RaftMessageType } from './messages.js';
import { TestNetwork } from './test/network.js';

const ids = ['a', 'b', 'c'];
const others = (l: string, all = ids) => all.filter((x) => x !== l);

describe('thesis §9.6 pre-vote', () => {
  it('a partitioned node keeps its term while partitioned and does not depose the leader when it rejoins', () => {
    const net = new TestNetwork(ids, { seed: 2 });
    const l = net.elect();
    const [f] = others(l) as [string];
    const term = net.status(l).term;
    net.isolate(f);
    net.tick(100);
    expect(net.status(f).term).toBe(term); // pre-votes failed; no term inflation
    expect(['precandidate', 'follower']).toContain(net.status(f).role);
    net.heal();
    net.tick(30);
    expect(net.leader()).toBe(l);
    expect(net.status(l).term).toBe(term);
    expect(net.status(f)).toMatchObject({ role: 'follower', leader: l, term });
  });

  it('without pre-vote (and check-quorum), the rejoining node inflates the term and deposes the leader', () => {
    const net = new TestNetwork(ids, { seed: 2, options: { preVote: false, checkQuorum: false } });
    const l = net.elect();
    const [f] = others(l) as [string];
    const term = net.status(l).term;
    net.isolate(f);
    net.tick(100);
    expect(net.status(f).term).toBeGreaterThan(term + 3);
    net.heal();
    net.tick(60);
    expect(net.status(net.leader()!).term).toBeGreaterThan(term + 3); // a disruptive election happened
  });

  it('pre-vote requests change neither the term nor the vote of the voters', () => {
    const net = new TestNetwork(ids);
    net.deliver({ type: RaftMessageType.PreVote, from: 'a', to: 'b', term: 7, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
    expect(net.queue).toMatchObject([{ type: RaftMessageType.PreVoteResponse, granted: true, term: 7 }]);
    expect(net.status('b').term).toBe(1);
    expect(net.node('b').storage.load().hardState.vote).toBeNull();
    expect(net.node('b').core.hasReady()).toBe(false);
  });

  it('a pre-vote is refused to a candidate with a less up-to-date log', () => {
    const net = new TestNetwork(ids);
    net.setLog('b', [1, 2, 2], 2);
    net.deliver({ type: RaftMessageType.PreVote, from: 'a', to: 'b', term: 3, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
    expect(net.queue).toMatchObject([{ type: RaftMessageType.PreVoteResponse, granted: false, term: 2 }]);
  });

  it('a pre-candidate that learns a higher term from a refusal becomes a follower of that term', () => {
    const net = new TestNetwork(ids);
    net.setLog('b', [1], 9);
    net.setLog('c', [1], 9);
    net.campaign('a');
    expect(net.status('a')).toMatchObject({ role: 'follower', term: 9 });
  });

  it('a node with a smaller term can still complete an election after a partition heals', () => {
    // In the spirit of etcd's TestNodeWithSmallerTermCanCompleteElection.
    const net = new TestNetwork(ids, { seed: 4 });
    net.campaign('a');
    expect(net.leader()).toBe('a');
    // a is cut off; b and c elect a new leader at a higher term, a keeps its old term (pre-vote).
    net.partition(['a'], ['b', 'c']);
    net.tickUntil(() => net.status('b').role === 'leader' || net.status('c').role === 'leader', 200);
    const newLeader = net.status('b').role === 'leader' ? 'b' : 'c';
    const high = net.status(newLeader).term;
    expect(net.status('a').term).toBeLessThan(high);
    expect(net.status('a').role).not.toBe('leader');
    // The partition heals and the new leader fails: a (smaller term) and the other node must
    // still be able to elect a leader between them.
    net.heal();
    net.crash(newLeader);
    const rest = others(newLeader);
    net.tickUntil(() => rest.some((x) => net.status(x).role === 'leader'), 400);
    const l2 = rest.find((x) => net.status(x).role === 'leader')!;
    expect(net.status(l2).term).toBeGreaterThan(high);
    for (const x of rest) expect(net.status(x).term).toBe(net.status(l2).term);
  });
});

describe('check-quorum (thesis §6.2, §4.2.3)', () => {
  it('a leader that lost its quorum steps down within one election timeout', () => {
    const net = new TestNetwork(ids, { options: { electionTicks: 10 } });
    const l = net.elect();
    net.tick(3);
    net.isolate(l);
    let ticks = 0;
    while (net.status(l).role === 'leader') {
      net.tick(1, [l]);
      ticks++;
      if (ticks > 100) break;
    }
    expect(net.status(l).role).toBe('follower');
    expect(ticks).toBeLessThanOrEqual(10);
  });

  it('a leader that keeps its quorum never steps down', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e']);
    const l = net.elect();
    const [x, y] = others(l, ['a', 'b', 'c', 'd', 'e']) as [string, string];
    net.isolate(x);
    net.isolate(y);
    const term = net.status(l).term;
    net.tick(100, [l, ...others(l, ['a', 'b', 'c', 'd', 'e']).filter((z) => z !== x && z !== y)]);
    expect(net.status(l)).toMatchObject({ role: 'leader', term });
  });

  it('a follower in contact with its leader ignores vote requests, even of a higher term', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    const [f, g] = others(l) as [string, string];
    const term = net.status(f).term;
    const dropped = net.status(f).droppedMessages;
    net.deliver({ type: RaftMessageType.Vote, from: g, to: f, term: term + 5, lastLogIndex: 100, lastLogTerm: term, transfer: false });
    net.deliver({ type: RaftMessageType.PreVote, from: g, to: f, term: term + 5, lastLogIndex: 100, lastLogTerm: term, transfer: false });
    expect(net.status(f)).toMatchObject({ term, leader: l, role: 'follower' });
    expect(net.status(f).droppedMessages).toBe(dropped + 2);
    expect(net.queue.filter((m: RaftMessage) => m.from === f)).toEqual([]);
  });

  it('once the leader is silent for an election timeout, the followers elect a new one', () => {
    const net = new TestNetwork(ids, { seed: 9 });
    const l = net.elect();
    net.crash(l);
    const rest = others(l);
    const t = net.tickUntil(() => rest.some((x) => net.status(x).role === 'leader'), 200);
    expect(t).toBeGreaterThanOrEqual(10);
    expect(t).toBeLessThan(60);
  });
});
