/** Safety (Raft §5.4): the commit rule of Figure 8, Leader Completeness, durability. */
import type { HardState } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { type AppendRequest, type RaftMessage, RaftMessageType } from './messages.js';
import { cmd, progressOf, TestNetwork } from './test/network.js';

const ids = ['s1', 's2', 's3', 's4', 's5'];
const isAppend = (m: RaftMessage): m is AppendRequest => m.type === RaftMessageType.Append;

describe('§5.4 safety', () => {
  it('Figure 8: an old-term entry stored on a majority is not committed by counting replicas', () => {
    // One entry per AppendEntries so that index 2 and index 3 can be delivered separately.
    const net = new TestNetwork(ids, { options: { preVote: false, checkQuorum: false, maxSizePerMsg: 1 } });
    net.setLog('s1', [1, 2], 3);
    net.setLog('s2', [1, 2], 3);
    net.setLog('s3', [1], 3);
    net.setLog('s4', [1], 3);
    net.setLog('s5', [1, 3], 3);
    // (c) s1 leads term 4 (s5 is down). Its no-op (index 3) never reaches anyone: every
    // AppendEntries carrying it is replaced by the same message without entries, so s2 and
    // s3 acknowledge index 2 (s3 after being repaired) but never index 3.
    net.crash('s5');
    net.addRule((m) => {
      if (isAppend(m) && m.entries.some((e) => e.index === 3)) {
        net.queue.push({ ...m, entries: m.entries.filter((e) => e.index < 3) });
        return true;
      }
      return false;
    });
    net.campaign('s1');
    expect(net.status('s1')).toMatchObject({ role: 'leader', term: 4 });
    net.tick(3, ['s1', 's2', 's3', 's4']);
    expect(net.terms('s2')).toEqual([1, 2]);
    expect(net.terms('s3')).toEqual([1, 2]);
    expect(progressOf(net.core('s1'), 's2')!.match).toBe(2);
    expect(progressOf(net.core('s1'), 's3')!.match).toBe(2);
    // Index 2 (term 2) is on s1, s2, s3: a majority, but not of the current term.
    expect(net.status('s1').commitIndex).toBe(1);
    // (d) s1 crashes; s5 (last term 3) wins with s2, s3, s4 and overwrites index 2.
    net.crash('s1');
    net.heal();
    net.restart('s5');
    net.campaign('s5'); // term 4: refused (everyone voted in term 4), s5 learns the term
    net.campaign('s5'); // term 5: s2, s3, s4 vote for it (its last term 3 > 2)
    expect(net.status('s5')).toMatchObject({ role: 'leader', term: 5 });
    net.tick(2, ['s2', 's3', 's4', 's5']);
    for (const id of ['s2', 's3', 's4', 's5']) expect(net.terms(id).slice(0, 2)).toEqual([1, 3]);
    for (const id of ids) expect(net.appliedData(id)).not.toContain('2@2');
  });

  it('Figure 8 (e): once a current-term entry is on a majority, the older entries below it commit', () => {
    const net = new TestNetwork(ids, { options: { preVote: false } });
    net.setLog('s1', [1, 2], 3);
    net.setLog('s2', [1, 2], 3);
    net.setLog('s3', [1], 3);
    net.setLog('s4', [1], 3);
    net.setLog('s5', [1, 3], 3);
    net.isolate('s5');
    net.isolate('s4');
    net.campaign('s1');
    net.tick(2, ['s1', 's2', 's3']);
    expect(net.status('s1').commitIndex).toBe(3); // the no-op of term 4 commits index 2 with it
    expect(net.appliedData('s1')).toEqual(['2@2']);
    // s5 can no longer win: a majority holds a log more up to date than its own.
    net.crash('s1');
    net.heal();
    net.tick(40, ['s2', 's3', 's4', 's5']);
    const l = net.leader()!;
    expect(l).not.toBe('s5');
    for (const id of ['s2', 's3', 's4', 's5']) expect(net.appliedData(id)).toEqual(['2@2']);
  });

  it('older entries commit through the new leader no-op, not by themselves', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false } });
    net.setLog('a', [1, 2, 2, 2], 2);
    net.setLog('b', [1, 2, 2, 2], 2);
    net.setLog('c', [1], 2);
    net.campaign('a');
    expect(net.status('a').role).toBe('leader');
    net.stabilize();
    const log = net.terms('a');
    expect(log).toEqual([1, 2, 2, 2, 3]);
    expect(net.status('a').commitIndex).toBe(5);
    for (const id of ['a', 'b', 'c']) expect(net.appliedData(id)).toEqual(['2@2', '3@2', '4@2']);
  });

  it('a new leader lacking the highest-term uncommitted entries overwrites them on followers', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false } });
    net.setLog('a', [1, 2], 3);
    net.setLog('b', [1, 2], 3);
    net.setLog('c', [1, 2, 3, 3, 3], 3);
    net.isolate('c');
    net.campaign('a');
    net.core('a').propose(cmd('new'));
    net.stabilize();
    net.heal();
    net.tick(2);
    expect(net.terms('c')).toEqual(net.terms('a'));
    expect(net.terms('c')).toEqual([1, 2, 4, 4]);
    expect(net.appliedData('c')).toEqual(['2@2', 'new']);
  });

  it('term and vote are durable before any message of that term leaves (over many elections)', () => {
    const net = new TestNetwork(ids, { seed: 11 });
    const violations: string[] = [];
    const durable = new Map<string, HardState>();
    for (const id of ids) {
      const node = net.node(id);
      node.onPersist = (b, msgs) => {
        if (b.hardState) durable.set(id, b.hardState);
        check(id, msgs);
      };
    }
    // Messages of a Ready that persisted nothing must depend only on earlier durable state.
    const check = (id: string, msgs: readonly RaftMessage[]) => {
      const hs = durable.get(id) ?? net.node(id).storage.load().hardState;
      for (const m of msgs) {
        if (m.type === RaftMessageType.Propose || m.type === RaftMessageType.ReadIndex || m.type === RaftMessageType.ReadIndexResponse) continue;
        if (m.type === RaftMessageType.PreVote || (m.type === RaftMessageType.PreVoteResponse && m.granted)) {
          if (m.term > hs.term + 1) violations.push(`${id}: ${m.type} term ${m.term} > durable ${hs.term}+1`);
          continue;
        }
        if (m.type === RaftMessageType.VoteResponse && m.granted) {
          if (hs.term !== m.term || hs.vote !== m.to) violations.push(`${id}: vote for ${m.to} at ${m.term} not durable`);
          continue;
        }
        if (m.type === RaftMessageType.Vote && (hs.term !== m.term || hs.vote !== id)) violations.push(`${id}: own vote at ${m.term} not durable`);
        if (m.term > hs.term) violations.push(`${id}: message type ${m.type} of term ${m.term} before durable term ${hs.term}`);
      }
    };
    for (let round = 0; round < 8; round++) {
      const l = net.elect();
      net.propose(l, `r${round}`);
      net.crash(l);
      net.tick(1);
      net.restart(l);
    }
    expect(violations).toEqual([]);
  });

  it('a crash right after voting cannot lead to two leaders in one term', () => {
    // c votes for a in term 2, crashes and restarts; b asks c in the same term and is refused.
    const net = new TestNetwork(['a', 'b', 'c'], { options: { preVote: false } });
    net.isolate('b');
    net.cutLink('c', 'a'); // a never hears c's vote: a stays candidate
    net.campaign('a');
    expect(net.status('a').role).toBe('candidate');
    net.crash('c');
    net.restart('c');
    net.heal();
    net.isolate('a');
    // b campaigns in term 2 too (its timer fires before hearing of term 2)
    net.node('b').core.tick();
    for (let i = 0; i < 40 && net.status('b').role === 'follower'; i++) net.core('b').tick();
    net.stabilize();
    expect(net.status('b').term).toBe(2);
    expect(net.status('b').role).not.toBe('leader');
  });
});

describe('§5.4 safety with early sends (thesis §10.2.1)', () => {
  it('a leader with a durable term sends before persisting; a candidate or a term change never does', () => {
    const net = new TestNetwork(['s1', 's2', 's3']);
    const readies: { id: string; role: string; early: boolean; termChanged: boolean }[] = [];
    for (const id of ['s1', 's2', 's3']) {
      const core = net.core(id);
      const orig = core.ready.bind(core);
      let last: HardState | null = null;
      core.ready = () => {
        const rd = orig();
        const changed = rd.hardState !== null && last !== null && (rd.hardState.term !== last.term || rd.hardState.vote !== last.vote);
        if (rd.hardState) last = rd.hardState;
        readies.push({ id, role: core.status().role, early: rd.sendBeforePersist === true, termChanged: changed });
        return rd;
      };
    }
    const leader = net.elect();
    for (let i = 0; i < 5; i++) net.propose(leader, `x${i}`);
    net.stabilize();
    expect(readies.some((r) => r.early && r.id === leader)).toBe(true);
    for (const r of readies) {
      if (r.early) {
        expect(r.role).toBe('leader');
        expect(r.termChanged).toBe(false);
      }
    }
    expect(readies.some((r) => r.role !== 'leader' && r.early)).toBe(false);
  });

  it('a leader that crashes after sending but before persisting loses only uncommitted entries; the rest survive', () => {
    const net = new TestNetwork(['s1', 's2', 's3'], { asyncStorage: true });
    const tick = () => {
      net.tick(1);
      for (const id of ['s1', 's2', 's3']) while (net.completeIo(id));
      net.stabilize();
    };
    let leader: string | null = null;
    for (let i = 0; i < 200 && !leader; i++) {
      tick();
      leader = net.leader();
    }
    expect(leader).not.toBeNull();
    for (let i = 0; i < 3; i++) tick();
    const committedBefore = net.status(leader!).commitIndex;
    const appliedBefore = net.appliedData(leader!);
    // A proposal whose Ready is in flight (not yet persisted) on the leader; its messages left early.
    net.core(leader!).propose(cmd('in-flight'));
    net.drain(leader!);
    expect(net.ioPending(leader!)).toBe(true);
    expect(net.queue.some((m) => m.type === RaftMessageType.Append && m.from === leader && m.entries.length > 0)).toBe(true);
    net.crash(leader!);
    // The followers receive the entry, a new leader is elected, and the cluster agrees.
    for (let i = 0; i < 300 && (net.leader() === null || net.leader() === leader); i++) tick();
    net.restart(leader!);
    for (let i = 0; i < 50; i++) tick();
    const ids = ['s1', 's2', 's3'];
    const logs = ids.map((id) => net.appliedData(id).join(','));
    expect(new Set(logs).size).toBe(1);
    expect(net.appliedData(ids[0]!).slice(0, appliedBefore.length)).toEqual(appliedBefore);
    expect(net.status(ids[0]!).commitIndex).toBeGreaterThanOrEqual(committedBefore);
    // The entry reached the followers before the leader's crash, so the new leader commits it.
    expect(net.appliedData(ids[0]!)).toContain('in-flight');
  });
});
