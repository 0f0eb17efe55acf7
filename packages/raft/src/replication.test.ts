/** Log replication (Raft §5.3) and replication throughput features, on the pure core. */
import { NotLeaderError, UncommittedLogFullError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { type AppendRequest, type AppendResponse, type RaftMessage, RaftMessageType } from './messages.js';
import { cmd, logOf, progressOf, TestNetwork } from './test/network.js';

const noPreVote = { preVote: false };
const isAppend = (m: RaftMessage): m is AppendRequest => m.type === RaftMessageType.Append;
const isAppendResp = (m: RaftMessage): m is AppendResponse => m.type === RaftMessageType.AppendResponse;

/** The leader's log of Figure 7 (paper), with index 1 as our bootstrap entry of term 1. */
const FIG7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const FIG7_FOLLOWERS: Record<string, number[]> = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};

describe('§5.3 log replication', () => {
  it('AppendEntries is rejected when prevLogIndex/prevLogTerm do not match, with a conflict hint', () => {
    const net = new TestNetwork(['l', 'f', 'x'], { options: noPreVote });
    net.setLog('f', [1, 1, 2, 2], 3);
    // prevLogTerm differs at index 4: hint = follower's term there (2) and its first index (3).
    net.deliver({ type: RaftMessageType.Append, from: 'l', to: 'f', term: 3, prevLogIndex: 4, prevLogTerm: 3, entries: [], leaderCommit: 1 });
    // prevLogIndex beyond the follower's log: hint = lastIndex + 1, no term.
    net.deliver({ type: RaftMessageType.Append, from: 'l', to: 'f', term: 3, prevLogIndex: 9, prevLogTerm: 3, entries: [], leaderCommit: 1 });
    const rs = net.queue.filter(isAppendResp);
    expect(rs.map((r) => [r.success, r.index, r.conflictTerm, r.conflictIndex])).toEqual([
      [false, 4, 2, 3],
      [false, 9, 0, 5],
    ]);
    expect(net.terms('f')).toEqual([1, 1, 2, 2]); // nothing changed
  });

  it('a conflicting suffix is truncated (in memory and in storage), then new entries are appended', () => {
    const net = new TestNetwork(['l', 'f', 'x'], { options: noPreVote });
    net.setLog('f', [1, 2, 2, 2], 2);
    const truncs: number[] = [];
    net.node('f').onPersist = (b) => {
      if (b.truncateFrom != null) truncs.push(b.truncateFrom);
    };
    const e = (index: number, term: number) => ({ index, term, type: 0 as const, data: cmd(`${index}@${term}`) });
    net.deliver({ type: RaftMessageType.Append, from: 'l', to: 'f', term: 3, prevLogIndex: 2, prevLogTerm: 2, entries: [e(3, 3), e(4, 3), e(5, 3)], leaderCommit: 1 });
    expect(net.terms('f')).toEqual([1, 2, 3, 3, 3]);
    expect(truncs).toEqual([3]);
    expect(net.node('f').storage.load().entries.map((x) => x.term)).toEqual([1, 2, 3, 3, 3]);
  });

  it('entries already present are not truncated by a stale, shorter AppendEntries', () => {
    const net = new TestNetwork(['l', 'f', 'x'], { options: noPreVote });
    net.setLog('f', [1, 2, 2, 2], 2);
    const e = (index: number, term: number) => ({ index, term, type: 0 as const, data: cmd(`${index}@${term}`) });
    net.deliver({ type: RaftMessageType.Append, from: 'l', to: 'f', term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [e(2, 2)], leaderCommit: 1 });
    expect(net.terms('f')).toEqual([1, 2, 2, 2]);
    const r = net.queue.filter(isAppendResp)[0]!;
    expect(r).toMatchObject({ success: true, index: 2 }); // it acknowledges only what the message covered
  });

  for (const [name, terms] of Object.entries(FIG7_FOLLOWERS)) {
    it(`the leader repairs the divergent follower log (${name}) of Figure 7`, () => {
      const net = new TestNetwork(['l', 'f', 'h'], { options: noPreVote });
      net.setLog('l', FIG7_LEADER, 7);
      net.setLog('h', FIG7_LEADER, 7);
      net.setLog('f', terms, 7);
      net.isolate('f');
      net.campaign('l'); // wins with h's vote (f might hold a "more up-to-date" log, as in (c) and (d))
      expect(net.status('l')).toMatchObject({ role: 'leader', term: 8 });
      net.heal();
      let rejections = 0;
      net.addRule((m) => {
        if (isAppendResp(m) && m.from === 'f' && !m.success) rejections++;
        return false;
      });
      net.tick(3);
      expect(net.terms('f')).toEqual(net.terms('l'));
      expect(net.terms('l')).toEqual([...FIG7_LEADER, 8]);
      // Committing the no-op commits every earlier entry, whatever its term.
      expect(net.status('f').commitIndex).toBe(11);
      expect(net.appliedData('f')).toEqual(FIG7_LEADER.slice(1).map((t, i) => `${i + 2}@${t}`));
      // Fast backtracking: about one round trip per divergent term.
      expect(rejections).toBeLessThanOrEqual(4);
    });
  }

  it('a follower never commits past the last entry it has verified against the leader', () => {
    const net = new TestNetwork(['l', 'f', 'x'], { options: noPreVote });
    net.setLog('f', [1, 1, 1, 2, 2, 2], 2);
    // The leader of term 3 matches f only up to index 3; its commit is 6 (of its own log).
    net.deliver({ type: RaftMessageType.Append, from: 'l', to: 'f', term: 3, prevLogIndex: 3, prevLogTerm: 1, entries: [], leaderCommit: 6 });
    expect(net.status('f').commitIndex).toBe(3);
    expect(net.appliedData('f')).toEqual(['2@1', '3@1']);
    // A heartbeat's commit is capped by what f verified against this leader in this term (3):
    // f's entries 4-6 of term 2 need not be in the leader's log. f says so in its answer.
    net.queue = [];
    net.deliver({ type: RaftMessageType.Heartbeat, from: 'l', to: 'f', term: 3, commit: 50, seq: 1 });
    expect(net.status('f').commitIndex).toBe(3);
    expect(net.queue).toMatchObject([{ type: RaftMessageType.HeartbeatResponse, unverified: true }]);
    // Once an AppendEntries verified 4-6, the heartbeat's commit applies (capped by f's log).
    net.deliver({ type: RaftMessageType.Append, from: 'l', to: 'f', term: 3, prevLogIndex: 6, prevLogTerm: 2, entries: [], leaderCommit: 0 });
    net.deliver({ type: RaftMessageType.Heartbeat, from: 'l', to: 'f', term: 3, commit: 50, seq: 2 });
    expect(net.status('f').commitIndex).toBe(6);
  });

  it('reordered AppendEntries and responses do not corrupt nextIndex/matchIndex', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote, seed: 5 });
    const l = net.elect();
    const [f1, f2] = ['a', 'b', 'c'].filter((x) => x !== l) as [string, string];
    for (let i = 0; i < 5; i++) {
      net.core(l).propose(cmd(`v${i}`));
      net.drainAll();
    }
    // Hold every append to f1, deliver them in reverse order; hold responses and reverse them too.
    const appends = net.hold((m) => isAppend(m) && m.to === f1).reverse();
    net.stabilize();
    for (const m of appends) net.deliver(m);
    const resps = net.hold((m) => isAppendResp(m) && m.from === f1).reverse();
    for (const m of resps) net.deliver(m);
    net.held = [];
    net.stabilize();
    net.tick(2);
    const last = net.status(l).lastIndex;
    expect(progressOf(net.core(l), f1)!.match).toBe(last);
    expect(progressOf(net.core(l), f1)!.next).toBe(last + 1);
    expect(progressOf(net.core(l), f2)!.match).toBe(last);
    for (const id of ['a', 'b', 'c']) expect(net.appliedData(id)).toEqual(['v0', 'v1', 'v2', 'v3', 'v4']);
  });

  it('fast backtracking repairs 50 divergent entries in about one round trip per term (5 nodes)', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e'], { options: noPreVote });
    const base = [1, 1, 1];
    const divergent = [...base, ...Array(50).fill(2), ...Array(20).fill(3)];
    const good = [...base, ...Array(50).fill(4)];
    net.setLog('a', good, 4);
    net.setLog('b', good, 4);
    net.setLog('c', good, 4);
    net.setLog('d', divergent, 4);
    net.setLog('e', divergent, 4);
    net.isolate('d');
    net.isolate('e');
    net.campaign('a');
    expect(net.status('a').role).toBe('leader');
    net.heal();
    let rejections = 0;
    net.addRule((m) => {
      if (isAppendResp(m) && !m.success && (m.from === 'd' || m.from === 'e')) rejections++;
      return false;
    });
    net.tick(3);
    expect(net.terms('d')).toEqual(net.terms('a'));
    expect(net.terms('e')).toEqual(net.terms('a'));
    expect(rejections).toBeLessThanOrEqual(6); // 2 followers x (<= 3 round trips), not 70 each
  });

  it('a proposal on a follower is forwarded to the leader and committed everywhere', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    const l = net.elect();
    const f = ['a', 'b', 'c'].find((x) => x !== l)!;
    net.propose(f, 'via-follower');
    for (const id of ['a', 'b', 'c']) expect(net.appliedData(id)).toEqual(['via-follower']);
    expect(net.delivered.get(RaftMessageType.Propose)).toBe(1);
  });

  it('with forwardProposals off, a follower refuses a proposal with the leader hint', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { ...noPreVote, forwardProposals: false } });
    const l = net.elect();
    const f = ['a', 'b', 'c'].find((x) => x !== l)!;
    const err = (() => {
      try {
        net.core(f).propose(cmd('x'));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).leaderHint).toBe(l);
    expect(net.core(f).hasReady()).toBe(false); // refused changes nothing
  });

  it('a proposal without a known leader is refused with NotLeaderError(null)', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    expect(() => net.core('a').propose(cmd('x'))).toThrow(NotLeaderError);
    try {
      net.core('a').propose(cmd('x'));
    } catch (e) {
      expect((e as NotLeaderError).leaderHint).toBeNull();
    }
  });

  it('several entries travel in one AppendEntries, up to maxSizePerMsg bytes', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { ...noPreVote, maxSizePerMsg: 100 } });
    const l = net.elect();
    net.tick(1);
    const big = 'x'.repeat(30);
    for (let i = 0; i < 9; i++) net.core(l).propose(cmd(big));
    net.drainAll();
    const appends = net.queue.filter(isAppend);
    const sizes = appends.map((m) => m.entries.length);
    expect(Math.max(...sizes)).toBe(3); // 3 x 30 bytes <= 100 < 4 x 30
    for (const m of appends) expect(m.entries.reduce((s, e) => s + e.data.length, 0)).toBeLessThanOrEqual(100);
    net.stabilize();
    for (const id of ['a', 'b', 'c']) expect(net.appliedData(id).length).toBe(9);
  });

  it('pipelining: the leader keeps sending without waiting for answers, up to maxInflightMsgs', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { ...noPreVote, maxSizePerMsg: 1, maxInflightMsgs: 4 } });
    const l = net.elect();
    net.tick(1);
    const f = ['a', 'b', 'c'].find((x) => x !== l)!;
    expect(progressOf(net.core(l), f)!.state).toBe('replicate');
    for (let i = 0; i < 10; i++) net.core(l).propose(cmd(`p${i}`));
    net.drainAll();
    const toF = net.queue.filter((m) => isAppend(m) && m.to === f && m.entries.length > 0);
    expect(toF.length).toBe(4); // four one-entry messages in flight, the rest waits
    net.stabilize();
    for (const id of ['a', 'b', 'c']) expect(net.appliedData(id).length).toBe(10);
  });

  it('flow control bounds the payload bytes in flight to one follower (maxInflightBytes)', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { ...noPreVote, maxSizePerMsg: 10, maxInflightBytes: 25 } });
    const l = net.elect();
    net.tick(1);
    const f = ['a', 'b', 'c'].find((x) => x !== l)!;
    for (let i = 0; i < 10; i++) net.core(l).propose(cmd('0123456789'));
    net.drainAll();
    const toF = net.queue.filter((m) => isAppend(m) && m.to === f && m.entries.length > 0);
    expect(toF.length).toBe(3); // 10 + 10 + 10 >= 25: the third fills the window
    net.stabilize();
    for (const id of ['a', 'b', 'c']) expect(net.appliedData(id).length).toBe(10);
  });

  it('after a rejection the leader probes: one AppendEntries at a time until it finds the match', () => {
    const net = new TestNetwork(['l', 'f', 'h'], { options: noPreVote });
    net.setLog('l', [1, 2, 2, 2], 3);
    net.setLog('h', [1, 2, 2, 2], 3);
    net.setLog('f', [1, 3, 3], 3);
    net.isolate('f');
    net.campaign('l');
    net.heal();
    net.tick(1, undefined, false);
    // Deliver one hop at a time: the leader never has two appends to f outstanding while probing.
    for (let i = 0; i < 10; i++) {
      const out = net.queue.filter((m) => isAppend(m) && m.to === 'f');
      expect(out.length).toBeLessThanOrEqual(1);
      if (progressOf(net.core('l'), 'f')!.state === 'replicate') break;
      net.deliverQueued();
    }
    net.stabilize();
    expect(net.terms('f')).toEqual(net.terms('l'));
  });

  it('a leader without quorum refuses proposals beyond maxUncommittedEntriesSize', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { ...noPreVote, maxUncommittedEntriesSize: 50, checkQuorum: false } });
    const l = net.elect();
    net.isolate(l);
    let accepted = 0;
    let error: unknown = null;
    for (let i = 0; i < 20 && !error; i++) {
      try {
        net.core(l).propose(cmd('0123456789'));
        accepted++;
      } catch (e) {
        error = e;
      }
    }
    expect(error).toBeInstanceOf(UncommittedLogFullError);
    expect(accepted).toBe(5);
    const last = net.status(l).lastIndex;
    expect(() => net.core(l).propose(cmd('z'))).toThrow(UncommittedLogFullError);
    expect(net.status(l).lastIndex).toBe(last); // refused changes nothing
    // Once the leader reaches its quorum again, the entries commit and room frees up.
    net.heal();
    net.tick(2);
    net.core(l).propose(cmd('0123456789'));
    net.stabilize();
    expect(net.appliedData(l).length).toBe(6);
  });

  it('the leader counts its own log toward a quorum only once it is durable', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote });
    const l = net.elect();
    const core = net.core(l);
    core.propose(cmd('x'));
    const rd = core.ready(); // entries handed to "storage" but not yet advanced
    const idx = rd.entries[rd.entries.length - 1]!.index;
    // One follower acknowledges: with the leader's own (undurable) copy that would be 2 of 3.
    const f = ['a', 'b', 'c'].find((x) => x !== l)!;
    core.step({ type: RaftMessageType.AppendResponse, from: f, to: l, term: net.status(l).term, success: true, index: idx, conflictIndex: 0, conflictTerm: 0 });
    expect(core.status().commitIndex).toBeLessThan(idx);
    net.node(l).storage.persist({ entries: rd.entries, hardState: rd.hardState });
    core.advance(rd);
    expect(core.status().commitIndex).toBe(idx);
  });

  it('entry payloads are never copied between leader and follower (same Uint8Array)', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: noPreVote, codec: false });
    const l = net.elect();
    const data = cmd('shared');
    net.core(l).propose(data);
    net.stabilize();
    const f = ['a', 'b', 'c'].find((x) => x !== l)!;
    const e = logOf(net.core(f)).entries.find((x) => x.data.length === data.length && x.type === 0)!;
    expect(e.data).toBe(data);
  });
});
