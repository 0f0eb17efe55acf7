/**
 * What `step()` accepts, and from whom (Raft Figure 2 "Rules for Servers", §5.1-§5.3, thesis
 * §3.10, §4.2.3, §6.4): a dropped message has no effect at all; terms are bounded by MAX_TERM;
 * messages from servers outside the configuration, from a second "leader" of the same term, or
 * from a node other than the one a request went to are dropped and counted; a follower commits
 * on a heartbeat only what it verified against that leader.
 */
import { createRandom, EntryType, MemoryStorage, StorageError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { MAX_TERM, type RaftMessage, RaftMessageType, ReadStatus } from './messages.js';
import { raft } from './index.js';
import type { RaftCore } from './raft.js';
import { cmd, logOf, TestNetwork } from './test/network.js';

const ids = ['a', 'b', 'c'];
const others = (l: string, all: readonly string[] = ids) => all.filter((x) => x !== l);

/** Volatile state `status()` does not show: a message with no effect leaves it alone too. */
function internals(core: RaftCore) {
  const c = core as unknown as { electionElapsed: number; vote: string | null; role: string; leader: string | null };
  return { electionElapsed: c.electionElapsed, vote: c.vote, role: c.role, leader: c.leader };
}

/** Steps `m` into `id` and checks it was dropped, counted, and changed nothing. */
function expectDroppedWithoutEffect(net: TestNetwork, id: string, m: RaftMessage): void {
  net.drainAll();
  const core = net.core(id);
  const before = core.status();
  const inner = internals(core);
  expect(() => core.step(m)).not.toThrow();
  const after = core.status();
  expect(after.droppedMessages, `${JSON.stringify(m)} is counted`).toBe(before.droppedMessages + 1);
  expect({ ...after, droppedMessages: 0 }).toEqual({ ...before, droppedMessages: 0 });
  expect(internals(core)).toEqual(inner);
  expect(core.hasReady(), 'no message, no hard state, nothing to apply').toBe(false);
}

function liveTerms(net: TestNetwork): number[] {
  return [...net.nodes.values()].filter((n) => n.alive).map((n) => n.core.status().term);
}

describe('Figure 2 / §5.1 terms are bounded by MAX_TERM, and a dropped message has no effect', () => {
  it('a message with a term above MAX_TERM is dropped and counted with no effect, from members and non-members alike', () => {
    const net = new TestNetwork(ids, { seed: 2 });
    const l = net.elect();
    net.propose(l, 'x');
    const [f, g] = others(l) as [string, string];
    for (const term of [MAX_TERM + 1, Number.MAX_SAFE_INTEGER]) {
      for (const from of [g, 'stranger']) {
        // The breaker's probe: an AppendEntries response to the leader.
        expectDroppedWithoutEffect(net, l, { type: RaftMessageType.AppendResponse, from, to: l, term, success: false, index: 0, conflictIndex: 0, conflictTerm: 0 });
        expectDroppedWithoutEffect(net, l, { type: RaftMessageType.HeartbeatResponse, from, to: l, term, seq: 1, unverified: false });
        expectDroppedWithoutEffect(net, f, { type: RaftMessageType.Heartbeat, from, to: f, term, commit: 0, seq: 1 });
        expectDroppedWithoutEffect(net, f, { type: RaftMessageType.Append, from, to: f, term, prevLogIndex: 0, prevLogTerm: 0, entries: [], leaderCommit: 0 });
        expectDroppedWithoutEffect(net, f, { type: RaftMessageType.Vote, from, to: f, term, lastLogIndex: 99, lastLogTerm: 9, transfer: true });
        expectDroppedWithoutEffect(net, f, { type: RaftMessageType.TimeoutNow, from, to: f, term });
      }
    }
  });

  it('the breaker probe: a stranger\'s AppendEntries response with term 2^53-1 leaves the cluster able to elect leaders', () => {
    const net = new TestNetwork(ids, { seed: 3 });
    const l = net.elect();
    for (let i = 0; i < 3; i++) net.propose(l, `v${i}`);
    const term = net.status(l).term;
    expectDroppedWithoutEffect(net, l, { type: RaftMessageType.AppendResponse, from: 'stranger', to: l, term: Number.MAX_SAFE_INTEGER, success: false, index: 0, conflictIndex: 0, conflictTerm: 0 });
    net.tick(30);
    expect(net.leader()).toBe(l);
    expect(net.status(l).term).toBe(term);
    expect(net.node(l).storage.load().hardState.term).toBe(term);
    net.crash(l);
    const rest = others(l);
    net.tickUntil(() => rest.some((x) => net.status(x).role === 'leader'), 300);
    const l2 = net.leader()!;
    net.propose(l2, 'after');
    expect(net.appliedData(l2)).toEqual(['v0', 'v1', 'v2', 'after']);
    expect(Math.max(...liveTerms(net))).toBeLessThan(term + 5);
  });

  it('a message at exactly MAX_TERM is still valid and processed', () => {
    const net = new TestNetwork(ids, { seed: 2 });
    const l = net.elect();
    const [f] = others(l) as [string];
    net.deliver({ type: RaftMessageType.Heartbeat, from: l, to: f, term: MAX_TERM, commit: 0, seq: 1 });
    expect(net.status(f)).toMatchObject({ term: MAX_TERM, leader: l, role: 'follower' });
  });

  it('a cluster at MAX_TERM refuses to campaign rather than overflow: no node or message ever goes above it', () => {
    const net = new TestNetwork(ids, { seed: 5 });
    for (const id of ids) net.setLog(id, [1], MAX_TERM);
    let above = 0;
    net.addRule((m) => {
      if (m.term > MAX_TERM) above++;
      return false;
    });
    net.tick(200);
    expect(above).toBe(0);
    expect(liveTerms(net)).toEqual([MAX_TERM, MAX_TERM, MAX_TERM]);
    expect(net.leaders()).toEqual([]);
    expect(net.node('a').storage.load().hardState.term).toBe(MAX_TERM);
  });

  it('a cluster one below MAX_TERM elects a last leader at MAX_TERM, which serves; after it fails none follows', () => {
    for (const options of [{}, { preVote: false, checkQuorum: false }]) {
      const net = new TestNetwork(ids, { seed: 6, options });
      for (const id of ids) net.setLog(id, [1], MAX_TERM - 1);
      const l = net.elect();
      expect(net.status(l).term).toBe(MAX_TERM);
      net.propose(l, 'last');
      expect(net.appliedData(others(l)[0]!)).toEqual(['last']);
      // Leadership transfer needs a new term too: the target refuses the TimeoutNow.
      net.core(l).transferLeadership(others(l)[0]!);
      net.tick(20);
      expect(net.leader()).toBe(l);
      net.crash(l);
      net.tick(200);
      expect(net.leaders()).toEqual([]);
      expect(Math.max(...liveTerms(net))).toBe(MAX_TERM);
    }
  });

  it('a stored term above MAX_TERM (written by an unbounded version) is refused at start-up with StorageError', () => {
    const storage = new MemoryStorage();
    storage.persist({ entries: [], hardState: { term: Number.MAX_SAFE_INTEGER, vote: null, commit: 0 } });
    expect(() => raft().create({ id: 'a', state: storage.load(), bootstrap: { voters: ids, learners: [] }, random: createRandom(1) })).toThrow(StorageError);
  });

  it('an AppendEntries contradicting the committed log is dropped before its term is adopted (no term, leader or timer change)', () => {
    const net = new TestNetwork(ids, { seed: 3 });
    const l = net.elect();
    net.propose(l, 'a');
    net.propose(l, 'b');
    net.tick(2);
    const [f, g] = others(l) as [string, string];
    const { commitIndex: commit, term } = net.status(f);
    const prevTerm = logOf(net.core(f)).term(commit - 1)!;
    expectDroppedWithoutEffect(net, f, {
      type: RaftMessageType.Append,
      from: g,
      to: f,
      term: term + 1,
      prevLogIndex: commit - 1,
      prevLogTerm: prevTerm,
      entries: [{ index: commit, term: term + 1, type: EntryType.Normal, data: cmd('evil') }],
      leaderCommit: commit,
    });
  });

  it('a forwarded proposal batch that does not fit maxUncommittedEntriesSize is dropped whole, not half appended', () => {
    const net = new TestNetwork(ids, { seed: 2, options: { maxUncommittedEntriesSize: 50, checkQuorum: false } });
    const l = net.elect();
    const [f] = others(l) as [string];
    net.isolate(l); // nothing commits: the uncommitted log only grows
    net.core(l).propose(new Uint8Array(30));
    const term = net.status(l).term;
    expectDroppedWithoutEffect(net, l, { type: RaftMessageType.Propose, from: f, to: l, term, commands: [new Uint8Array(10), new Uint8Array(20)] });
    const last = net.status(l).lastIndex;
    net.core(l).step({ type: RaftMessageType.Propose, from: f, to: l, term, commands: [new Uint8Array(10), new Uint8Array(10)] });
    expect(net.status(l).lastIndex).toBe(last + 2);
  });
});

describe('thesis §4.2.3 servers outside the configuration', () => {
  it('responses from a non-member are dropped before term handling, on the leader and on followers', () => {
    const net = new TestNetwork(ids, { seed: 2 });
    const l = net.elect();
    const [f] = others(l) as [string];
    const term = net.status(l).term + 5;
    for (const to of [l, f]) {
      const from = 'stranger';
      expectDroppedWithoutEffect(net, to, { type: RaftMessageType.AppendResponse, from, to, term, success: true, index: 1, conflictIndex: 0, conflictTerm: 0 });
      expectDroppedWithoutEffect(net, to, { type: RaftMessageType.HeartbeatResponse, from, to, term, seq: 1, unverified: false });
      expectDroppedWithoutEffect(net, to, { type: RaftMessageType.SnapshotResponse, from, to, term, index: 1, offset: 0 });
      expectDroppedWithoutEffect(net, to, { type: RaftMessageType.VoteResponse, from, to, term, granted: false });
      expectDroppedWithoutEffect(net, to, { type: RaftMessageType.PreVoteResponse, from, to, term, granted: false });
    }
    // A member's higher term still deposes the leader (Figure 2), and that is not a drop.
    const dropped = net.status(l).droppedMessages;
    net.deliver({ type: RaftMessageType.AppendResponse, from: f, to: l, term, success: false, index: 0, conflictIndex: 0, conflictTerm: 0 });
    expect(net.status(l)).toMatchObject({ role: 'follower', term, droppedMessages: dropped });
  });

  it('a removed server that missed its removal cannot disrupt the cluster, even without pre-vote and check-quorum', () => {
    const all = ['a', 'b', 'c', 'd'];
    const net = new TestNetwork(all, { seed: 7, options: { preVote: false, checkQuorum: false } });
    net.campaign('a');
    net.propose('a', 'x');
    net.isolate('d');
    net.core('a').proposeMembershipChange({ type: 'remove', id: 'd' });
    net.tick(5, ['a', 'b', 'c']);
    expect([...net.status('a').config.voters].sort()).toEqual(['a', 'b', 'c']);
    expect(net.status('a').commitIndex).toBe(net.status('a').lastIndex);
    expect(net.status('d').config.voters).toContain('d'); // d never heard of its removal
    const term = net.status('a').term;
    net.tick(60, ['d']);
    expect(net.status('d').term).toBeGreaterThan(term); // it campaigns while cut off
    net.heal();
    const dropped = net.status('b').droppedMessages;
    net.tick(60);
    expect(net.leader()).toBe('a');
    expect(liveTerms(net).filter((_, i) => all[i] !== 'd')).toEqual([term, term, term]);
    expect(net.status('b').droppedMessages).toBeGreaterThan(dropped); // d's vote requests
    net.propose('a', 'y');
    expect(net.appliedData('b')).toEqual(['x', 'y']);
  });

  it('a vote request from a server outside the configuration is still considered when its log is up to date (a lagging voter keeps the cluster live)', () => {
    const net = new TestNetwork(ids, { options: { preVote: false, checkQuorum: false } });
    net.drainAll();
    // c does not know d (its configuration is older than the one that added d), but d's log is
    // ahead: c must be able to vote for it, or a cluster whose other old voters failed is stuck.
    net.deliver({ type: RaftMessageType.Vote, from: 'd', to: 'c', term: 5, lastLogIndex: 10, lastLogTerm: 4, transfer: false });
    expect(net.queue).toMatchObject([{ type: RaftMessageType.VoteResponse, from: 'c', to: 'd', granted: true, term: 5 }]);
    expect(net.status('c').term).toBe(5);
    // A non-member whose log is behind could never get our vote: its term is not adopted.
    expectDroppedWithoutEffect(net, 'b', { type: RaftMessageType.Vote, from: 'd', to: 'b', term: 9, lastLogIndex: 0, lastLogTerm: 0, transfer: false });
    expectDroppedWithoutEffect(net, 'b', { type: RaftMessageType.PreVote, from: 'd', to: 'b', term: 9, lastLogIndex: 0, lastLogTerm: 0, transfer: false });
    // A member whose log is behind is refused with our term, as Figure 2 says (and its term is adopted).
    net.queue = [];
    net.deliver({ type: RaftMessageType.Vote, from: 'a', to: 'b', term: 9, lastLogIndex: 0, lastLogTerm: 0, transfer: false });
    expect(net.queue).toMatchObject([{ type: RaftMessageType.VoteResponse, from: 'b', granted: false, term: 9 }]);
  });

  it('only a voter of the configuration may bypass check-quorum stickiness with a transfer vote', () => {
    const net = new TestNetwork(ids, { seed: 2 });
    const l = net.elect();
    const [f, g] = others(l) as [string, string];
    const term = net.status(f).term;
    expectDroppedWithoutEffect(net, f, { type: RaftMessageType.Vote, from: 'stranger', to: f, term: term + 1, lastLogIndex: 1000, lastLogTerm: term, transfer: true });
    net.deliver({ type: RaftMessageType.Vote, from: g, to: f, term: term + 1, lastLogIndex: 1000, lastLogTerm: term, transfer: true });
    expect(net.status(f).term).toBe(term + 1);
    expect(net.queue).toMatchObject([{ type: RaftMessageType.VoteResponse, from: f, to: g, granted: true }]);
  });

  it('a node with an empty configuration still follows a leader it does not know, and a lagging one a leader of a newer configuration', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'x'], { joiners: ['x'] });
    net.drainAll();
    expect(net.status('x').config.voters).toEqual([]);
    const conf = { index: 1, term: 1, type: EntryType.Config, data: logOf(net.core('a')).entries[0]!.data };
    net.deliver({ type: RaftMessageType.Append, from: 'z', to: 'x', term: 4, prevLogIndex: 0, prevLogTerm: 0, entries: [conf], leaderCommit: 1 });
    expect(net.status('x')).toMatchObject({ term: 4, leader: 'z', commitIndex: 1, lastIndex: 1 });
    // 'y' is in none of x's configurations, but leads a later term.
    net.deliver({ type: RaftMessageType.Heartbeat, from: 'y', to: 'x', term: 5, commit: 0, seq: 1 });
    expect(net.status('x')).toMatchObject({ term: 5, leader: 'y' });
  });
});

describe('§5.2 Election Safety: one leader per term', () => {
  it('leader messages from another node than the known leader of the current term are dropped with no effect', () => {
    const net = new TestNetwork(ids, { seed: 2 });
    const l = net.elect();
    net.propose(l, 'x');
    const [f, g] = others(l) as [string, string];
    const { term, lastIndex } = net.status(f);
    const lastTerm = logOf(net.core(f)).lastTerm();
    const config = net.status(f).config;
    for (const from of [g, 'stranger']) {
      expectDroppedWithoutEffect(net, f, { type: RaftMessageType.Heartbeat, from, to: f, term, commit: lastIndex, seq: 1 });
      expectDroppedWithoutEffect(net, f, { type: RaftMessageType.Append, from, to: f, term, prevLogIndex: lastIndex, prevLogTerm: lastTerm, entries: [], leaderCommit: lastIndex });
      expectDroppedWithoutEffect(net, f, { type: RaftMessageType.InstallSnapshot, from, to: f, term, meta: { index: lastIndex + 50, term, config }, size: 1, offset: 0, data: new Uint8Array(1) });
    }
    net.tick(5);
    expect(net.status(f)).toMatchObject({ leader: l, term });
  });
});

describe('thesis §3.10 TimeoutNow only from the current leader', () => {
  it('a TimeoutNow from a non-member, from another follower, or from the leader in another term is dropped; the leader stays', () => {
    const net = new TestNetwork(ids, { seed: 2 });
    const l = net.elect();
    const [f, g] = others(l) as [string, string];
    const term = net.status(l).term;
    expectDroppedWithoutEffect(net, f, { type: RaftMessageType.TimeoutNow, from: 'stranger', to: f, term });
    expectDroppedWithoutEffect(net, f, { type: RaftMessageType.TimeoutNow, from: g, to: f, term });
    expectDroppedWithoutEffect(net, f, { type: RaftMessageType.TimeoutNow, from: l, to: f, term: term + 1 });
    expectDroppedWithoutEffect(net, l, { type: RaftMessageType.TimeoutNow, from: f, to: l, term });
    net.tick(30);
    expect(net.leader()).toBe(l);
    expect(net.status(l).term).toBe(term);
    // The leader's own TimeoutNow still works.
    net.deliver({ type: RaftMessageType.TimeoutNow, from: l, to: f, term });
    net.stabilize();
    expect(net.leader()).toBe(f);
    expect(net.status(f).term).toBe(term + 1);
  });
});

describe('thesis §6.4 a forwarded read is answered only by the leader it went to', () => {
  it('a ReadIndexResponse from another node than the current leader is dropped, even with the right nonce', () => {
    const net = new TestNetwork(ids, { seed: 2 });
    const l = net.elect();
    net.propose(l, 'x');
    const [f, g] = others(l) as [string, string];
    net.core(f).read(7, 'linearizable');
    const [req] = net.hold((m) => m.type === RaftMessageType.ReadIndex) as [Extract<RaftMessage, { type: 13 }>];
    expect(req.to).toBe(l);
    const term = net.status(f).term;
    for (const from of [g, 'stranger']) {
      expectDroppedWithoutEffect(net, f, { type: RaftMessageType.ReadIndexResponse, from, to: f, term, ids: [7], status: ReadStatus.Ok, index: 0, leaderHint: from, nonce: req.nonce });
    }
    expect(net.node(f).reads).toEqual([]);
    net.release();
    net.stabilize();
    expect(net.node(f).reads).toEqual([{ id: 7, index: net.status(l).commitIndex }]);
  });
});

describe('§5.3 a follower never commits past what it verified against its leader (heartbeats)', () => {
  it('the breaker probe: an old leader hearing a heartbeat with a huge commit does not apply its own un-replicated entries', () => {
    const net = new TestNetwork(ids, { seed: 4 });
    const l1 = net.elect();
    net.propose(l1, 'x');
    net.isolate(l1);
    net.core(l1).propose(cmd('stale1'));
    net.core(l1).propose(cmd('stale2'));
    net.drainAll();
    const staleIndex = net.status(l1).lastIndex - 1;
    const rest = others(l1);
    net.tickUntil(() => rest.some((x) => net.status(x).role === 'leader'));
    const l2 = rest.find((x) => net.status(x).role === 'leader')!;
    for (let i = 0; i < 4; i++) net.propose(l2, `new${i}`);
    net.tick(2);
    const s2 = net.status(l2);
    expect(s2.commitIndex).toBeGreaterThan(staleIndex + 1);
    for (const commit of [2 ** 40, s2.commitIndex]) {
      net.queue = [];
      net.deliver({ type: RaftMessageType.Heartbeat, from: l2, to: l1, term: s2.term, commit, seq: 1 });
      expect(net.status(l1)).toMatchObject({ term: s2.term, leader: l2 });
      expect(net.status(l1).commitIndex).toBeLessThan(staleIndex);
      expect(net.appliedData(l1)).toEqual(['x']);
      // It tells the leader it could not commit that far, so the leader can verify its log.
      expect(net.queue).toMatchObject([{ type: RaftMessageType.HeartbeatResponse, from: l1, to: l2, unverified: true }]);
    }
    net.heal();
    net.tick(5);
    expect(net.appliedData(l1)).toEqual(['x', 'new0', 'new1', 'new2', 'new3']);
    expect(net.terms(l1)).toEqual(net.terms(l2));
  });

  it('honest traffic: an up-to-date follower whose commit-carrying AppendEntries was lost learns the commit from the next heartbeat', () => {
    const net = new TestNetwork(ids, { seed: 5 });
    const l = net.elect();
    const [f] = others(l) as [string];
    net.propose(l, 'a');
    net.addRule((m) => m.type === RaftMessageType.Append && m.to === f && m.entries.length === 0);
    net.propose(l, 'b');
    expect(net.status(f).lastIndex).toBe(net.status(l).lastIndex);
    expect(net.status(f).commitIndex).toBe(net.status(l).commitIndex - 1);
    net.delivered.clear();
    net.tick(1);
    expect(net.status(f).commitIndex).toBe(net.status(l).commitIndex);
    expect(net.appliedData(f)).toEqual(['a', 'b']);
  });

  it('honest traffic: a follower restarted in an idle cluster still catches up its commit index (it asks for verification)', () => {
    const net = new TestNetwork(ids, { seed: 6 });
    const l = net.elect();
    const [f] = others(l) as [string];
    const stop = net.addRule((m) => m.to === f && ((m.type === RaftMessageType.Append && m.entries.length === 0) || m.type === RaftMessageType.Heartbeat));
    net.propose(l, 'a');
    net.propose(l, 'b');
    expect(net.status(f).lastIndex).toBe(net.status(l).lastIndex);
    expect(net.status(f).commitIndex).toBeLessThan(net.status(l).commitIndex);
    net.crash(f);
    net.restart(f);
    stop();
    net.tick(3); // no proposal: only heartbeats, unless f asks
    expect(net.status(f).commitIndex).toBe(net.status(l).commitIndex);
    expect(net.appliedData(f)).toEqual(['a', 'b']);
  });
});
