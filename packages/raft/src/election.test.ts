/** Leader election (Raft §5.2, §5.4.1), on the pure core over the deterministic test network. */
import { describe, expect, it } from 'vitest';
import { type RaftMessage, RaftMessageType, type VoteRequest } from './messages.js';
import { TestNetwork } from './test/network.js';

const noPreVote = { preVote: false };

describe('§5.2 leader election', () => {
  it('a candidate that gets votes from a quorum becomes leader, and the others follow it', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    net.campaign('a');
    expect(net.status('a').role).toBe('leader');
    expect(net.status('a').term).toBe(2);
    for (const id of ['b', 'c']) {
      expect(net.status(id).role).toBe('follower');
      expect(net.status(id).leader).toBe('a');
      expect(net.status(id).term).toBe(2);
    }
  });

  it('a candidate loses to a higher term: it becomes a follower at that term', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    net.setLog('b', [1], 5);
    net.setLog('c', [1], 5);
    net.campaign('a');
    expect(net.status('a').role).toBe('follower');
    expect(net.status('a').term).toBe(5);
  });

  it('a candidate stays candidate on a split vote, and a later term resolves it', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e'], { options: noPreVote });
    net.isolate('e');
    // Make a and b both candidates at term 2 before any vote is delivered.
    for (let i = 0; i < 40 && net.status('a').role !== 'candidate'; i++) net.core('a').tick();
    for (let i = 0; i < 40 && net.status('b').role !== 'candidate'; i++) net.core('b').tick();
    net.drainAll();
    const votes = net.queue.filter((m) => m.type === RaftMessageType.Vote);
    net.queue = [];
    // c hears a first, d hears b first; the later requests are then refused.
    const pick = (from: string, to: string) => votes.filter((m) => m.from === from && m.to === to);
    for (const m of [...pick('a', 'c'), ...pick('b', 'd'), ...pick('b', 'c'), ...pick('a', 'd'), ...pick('a', 'b'), ...pick('b', 'a')]) net.deliver(m);
    net.stabilize();
    // Each has 2 of 5 votes with e's vote missing: neither wins nor loses.
    expect(net.status('a')).toMatchObject({ role: 'candidate', term: 2 });
    expect(net.status('b')).toMatchObject({ role: 'candidate', term: 2 });
    expect(net.leaders()).toEqual([]);
    const l = net.elect();
    expect(net.status(l).term).toBeGreaterThan(2);
  });

  it('a node grants at most one vote per term, first come first served', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    const vote = (from: string): VoteRequest => ({ type: RaftMessageType.Vote, from, to: 'c', term: 2, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
    net.deliver(vote('a'));
    net.deliver(vote('b'));
    net.deliver(vote('a')); // a retransmission from the same candidate is granted again
    const replies = net.queue.filter((m) => m.type === RaftMessageType.VoteResponse) as Extract<RaftMessage, { granted: boolean }>[];
    expect(replies.map((r) => [r.to, r.granted])).toEqual([
      ['a', true],
      ['b', false],
      ['a', true],
    ]);
  });

  it('the vote survives a restart: the restarted node still refuses a second candidate', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    net.deliver({ type: RaftMessageType.Vote, from: 'a', to: 'c', term: 2, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
    expect(net.node('c').storage.load().hardState).toMatchObject({ term: 2, vote: 'a' });
    net.crash('c');
    net.restart('c');
    net.queue = [];
    net.deliver({ type: RaftMessageType.Vote, from: 'b', to: 'c', term: 2, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
    const reply = net.queue.find((m) => m.type === RaftMessageType.VoteResponse) as Extract<RaftMessage, { granted: boolean }>;
    expect(reply.granted).toBe(false);
    expect(net.status('c').term).toBe(2);
  });

  it('a candidate steps down on AppendEntries from a leader of equal term', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    net.isolate('a');
    net.campaign('a'); // a is candidate at term 2, alone
    expect(net.status('a').role).toBe('candidate');
    net.deliver({ type: RaftMessageType.Append, from: 'b', to: 'a', term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [], leaderCommit: 1 });
    expect(net.status('a').role).toBe('follower');
    expect(net.status('a').leader).toBe('b');
    expect(net.status('a').term).toBe(2);
  });

  it('a candidate steps down on a heartbeat from a leader of higher term', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    net.isolate('a');
    net.campaign('a');
    net.deliver({ type: RaftMessageType.Heartbeat, from: 'c', to: 'a', term: 7, commit: 1, seq: 1 });
    expect(net.status('a')).toMatchObject({ role: 'follower', leader: 'c', term: 7 });
  });

  it('election timeouts are randomized in [electionTicks, 2 * electionTicks)', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 60; seed++) {
      const net = new TestNetwork(['a', 'b', 'c'], { options: { ...noPreVote, electionTicks: 10 }, seed });
      let t = 0;
      while (net.status('a').role === 'follower') {
        net.core('a').tick();
        t++;
      }
      expect(t).toBeGreaterThanOrEqual(10);
      expect(t).toBeLessThan(20);
      seen.add(t);
    }
    expect(seen.size).toBeGreaterThan(5); // actually random, not a constant
  });

  it('randomized timeouts make repeated split votes rare (measured over 100 seeds, 5 nodes)', () => {
    let firstTerm = 0;
    let maxTerm = 0;
    for (let seed = 1; seed <= 100; seed++) {
      const net = new TestNetwork(['a', 'b', 'c', 'd', 'e'], { options: noPreVote, seed });
      const l = net.elect();
      const term = net.status(l).term;
      if (term === 2) firstTerm++;
      maxTerm = Math.max(maxTerm, term);
    }
    expect(firstTerm).toBeGreaterThanOrEqual(85);
    expect(maxTerm).toBeLessThanOrEqual(5);
  });

  it('a vote is refused to a candidate whose last log term is older', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    net.setLog('c', [1, 2], 2);
    net.deliver({ type: RaftMessageType.Vote, from: 'a', to: 'c', term: 3, lastLogIndex: 5, lastLogTerm: 1, transfer: false });
    const reply = net.queue.find((m) => m.type === RaftMessageType.VoteResponse) as Extract<RaftMessage, { granted: boolean }>;
    expect(reply.granted).toBe(false);
    expect(net.status('c').term).toBe(3); // the higher term is adopted even though the vote is refused
    expect(net.node('c').storage.load().hardState.vote).toBeNull();
  });

  it('a vote is refused to a candidate with the same last term but a shorter log', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    net.setLog('c', [1, 2, 2], 2);
    net.deliver({ type: RaftMessageType.Vote, from: 'a', to: 'c', term: 3, lastLogIndex: 2, lastLogTerm: 2, transfer: false });
    const reply = net.queue.find((m) => m.type === RaftMessageType.VoteResponse) as Extract<RaftMessage, { granted: boolean }>;
    expect(reply.granted).toBe(false);
    net.queue = [];
    net.deliver({ type: RaftMessageType.Vote, from: 'b', to: 'c', term: 3, lastLogIndex: 3, lastLogTerm: 2, transfer: false });
    const ok = net.queue.find((m) => m.type === RaftMessageType.VoteResponse) as Extract<RaftMessage, { granted: boolean }>;
    expect(ok.granted).toBe(true);
  });

  it('stale messages from an older term are ignored and counted', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    const l = net.elect();
    const f = ['a', 'b', 'c'].find((x) => x !== l)!;
    const before = net.status(f);
    net.deliver({ type: RaftMessageType.VoteResponse, from: l, to: f, term: 1, granted: true });
    net.deliver({ type: RaftMessageType.HeartbeatResponse, from: l, to: f, term: 1, seq: 5, unverified: false });
    net.queue = [];
    // A stale RequestVote is refused with the current term (Figure 2), never granted.
    net.deliver({ type: RaftMessageType.Vote, from: l, to: f, term: 1, lastLogIndex: 99, lastLogTerm: 1, transfer: false });
    expect(net.queue).toMatchObject([{ type: RaftMessageType.VoteResponse, granted: false, term: before.term }]);
    const after = net.status(f);
    expect(after.droppedMessages).toBe(before.droppedMessages + 2);
    expect(after.term).toBe(before.term);
    expect(after.role).toBe('follower');
    expect(after.leader).toBe(l);
  });

  it('a higher term in any message makes a leader a follower', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    const l = net.elect();
    const f = ['a', 'b', 'c'].find((x) => x !== l)!;
    const t = net.status(l).term;
    net.deliver({ type: RaftMessageType.HeartbeatResponse, from: f, to: l, term: t + 3, seq: 0, unverified: false });
    expect(net.status(l)).toMatchObject({ role: 'follower', term: t + 3, leader: null });
  });

  it('a leader is elected in every seed with pre-vote on, in term 2', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const net = new TestNetwork(['a', 'b', 'c'], { seed });
      const l = net.elect();
      expect(net.leaders()).toEqual([l]);
      expect(net.status(l).term).toBeLessThanOrEqual(3);
    }
  });

  it('elections cost a bounded number of messages, and an idle cluster only heartbeats', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e'], { seed: 3 });
    net.elect();
    const total = [...net.delivered.values()].reduce((a, b) => a + b, 0);
    // pre-vote + vote rounds (2 * 4 requests + replies) plus the no-op round trip and heartbeats.
    expect(total).toBeLessThan(120);
    net.delivered.clear();
    net.tick(10);
    const types = [...net.delivered.keys()].sort();
    expect(types).toEqual([RaftMessageType.Heartbeat, RaftMessageType.HeartbeatResponse].sort());
    expect(net.delivered.get(RaftMessageType.Heartbeat)).toBe(40); // 4 followers x 10 ticks
  });
});
