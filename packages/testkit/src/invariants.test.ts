import { type CoreStatus, type Entry, EntryType, utf8Encode, VirtualScheduler } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { InvariantChecker, type ReplicaView } from './invariants.js';
import { SimStorage } from './sim-storage.js';
import { SkewedScheduler } from './skewed-scheduler.js';
import { renderTimeline } from './timeline.js';
import type { KvOperation } from './kv-model.js';

const enc = { encode: utf8Encode };
const entry = (index: number, term: number, data = `e${index}`): Entry => ({ index, term, type: EntryType.Normal, data: enc.encode(data) });

function status(over: Partial<CoreStatus> & { id: string }): CoreStatus {
  return {
    role: 'follower',
    term: 1,
    leader: null,
    commitIndex: 0,
    appliedIndex: 0,
    lastIndex: 0,
    snapshotIndex: 0,
    config: { voters: ['a', 'b', 'c'], learners: [] },
    transferring: false,
    droppedMessages: 0,
    ...over,
  };
}

function view(id: string, s: () => CoreStatus, log = new Map<number, Entry>(), snapshotIndex = 0): ReplicaView {
  return { id, up: true, status: s, log, snapshotIndex };
}

describe('InvariantChecker', () => {
  it('election safety: two leaders in one term', () => {
    const c = new InvariantChecker('raft');
    expect(c.afterEvent([view('a', () => status({ id: 'a', role: 'leader', term: 3 }))], 1)).toBeNull();
    expect(c.afterEvent([view('b', () => status({ id: 'b', role: 'leader', term: 4 }))], 2)).toBeNull();
    expect(c.afterEvent([view('c', () => status({ id: 'c', role: 'leader', term: 3 }))], 3)?.invariant).toBe('election-safety');
  });

  it('applied <= committed <= last, commit and term only advance, persisted snapshot <= applied', () => {
    const c = new InvariantChecker('paxos');
    expect(c.afterEvent([view('a', () => status({ id: 'a', appliedIndex: 3, commitIndex: 2, lastIndex: 5 }))], 1)?.invariant).toBe('applied<=committed<=last');
    expect(c.afterEvent([view('b', () => status({ id: 'b', appliedIndex: 1, commitIndex: 6, lastIndex: 5 }))], 1)?.invariant).toBe('applied<=committed<=last');
    let commit = 4;
    const v = view('d', () => status({ id: 'd', commitIndex: commit, lastIndex: 9 }));
    expect(c.afterEvent([v], 1)).toBeNull();
    commit = 3;
    expect(c.afterEvent([v], 2)?.invariant).toBe('commit-only-advances');
    let term = 5;
    const w = view('e', () => status({ id: 'e', term }));
    expect(c.afterEvent([w], 1)).toBeNull();
    term = 4;
    expect(c.afterEvent([w], 2)?.invariant).toBe('term-only-advances');
    expect(c.afterEvent([view('f', () => status({ id: 'f', appliedIndex: 2, commitIndex: 2, lastIndex: 2 }), new Map(), 5)], 1)?.invariant).toBe('snapshot<=applied');
  });

  it('a restart resets per-incarnation tracking but not durable state', () => {
    const c = new InvariantChecker('raft');
    let commit = 5;
    const v = view('a', () => status({ id: 'a', commitIndex: commit, lastIndex: 9 }));
    c.afterEvent([v], 1);
    c.onRestart('a');
    commit = 2; // a restarted node may know less than it did in memory
    expect(c.afterEvent([v], 2)).toBeNull();
  });

  it('leader append-only: a leader never truncates or overwrites its log', () => {
    const c = new InvariantChecker('raft');
    const before = new Map([[1, entry(1, 1)], [2, entry(2, 1)]]);
    const leader = () => status({ id: 'a', role: 'leader', term: 2 });
    expect(c.onPersist('a', { entries: [entry(3, 2)] }, leader, before, 1)).toBeNull();
    expect(c.onPersist('a', { truncateFrom: 2, entries: [entry(2, 2)] }, leader, before, 1)?.invariant).toBe('leader-append-only');
    expect(c.onPersist('a', { entries: [entry(2, 2, 'other')] }, leader, before, 1)?.invariant).toBe('leader-append-only');
    // A follower may truncate a conflicting suffix.
    expect(c.onPersist('b', { truncateFrom: 2, entries: [entry(2, 2, 'x')] }, () => status({ id: 'b' }), before, 1)).toBeNull();
  });

  it('log matching: one entry per (index, term) across replicas', () => {
    const c = new InvariantChecker('raft');
    const st = () => status({ id: 'a' });
    expect(c.onPersist('a', { entries: [entry(4, 2, 'x')] }, st, new Map(), 1)).toBeNull();
    expect(c.onPersist('b', { entries: [entry(4, 2, 'x')] }, st, new Map(), 1)).toBeNull();
    expect(c.onPersist('c', { entries: [entry(4, 2, 'y')] }, st, new Map(), 1)?.invariant).toBe('log-matching');
  });

  it('state machine safety / one value per slot: never two committed entries at an index', () => {
    for (const profile of ['raft', 'paxos'] as const) {
      const c = new InvariantChecker(profile);
      expect(c.onPersisted('a', new Map([[1, entry(1, 1, 'v')]]), 0, 1, 1)).toBeNull();
      expect(c.onPersisted('b', new Map([[1, entry(1, profile === 'paxos' ? 7 : 1, 'v')]]), 0, 1, 1)).toBeNull();
      expect(c.onPersisted('c', new Map([[1, entry(1, 1, 'w')]]), 0, 1, 1)?.invariant).toBe(profile === 'paxos' ? 'one-value-per-slot' : 'state-machine-safety');
    }
  });

  it('identical applied prefixes: replicas apply the same command at each index', () => {
    const c = new InvariantChecker('paxos');
    expect(c.onApply('a', 3, enc.encode('x'), 1)).toBeNull();
    expect(c.onApply('b', 3, enc.encode('x'), 1)).toBeNull();
    expect(c.onApply('c', 3, enc.encode('y'), 1)?.invariant).toBe('state-machine-safety');
  });

  it('leader completeness: a new leader holds every committed entry of earlier terms', () => {
    const c = new InvariantChecker('raft');
    c.onPersisted('a', new Map([[1, entry(1, 1)], [2, entry(2, 1)]]), 0, 2, 1);
    const complete = view('b', () => status({ id: 'b', role: 'leader', term: 2, lastIndex: 2, commitIndex: 0 }), new Map([[1, entry(1, 1)], [2, entry(2, 1)]]));
    expect(c.afterEvent([complete], 2)).toBeNull();
    const lacking = view('c', () => status({ id: 'c', role: 'leader', term: 3, lastIndex: 1 }), new Map([[1, entry(1, 1)]]));
    expect(c.afterEvent([lacking], 3)?.invariant).toBe('leader-completeness');
  });

  it('durable state: the persisted vote of a term never changes, the persisted term never goes back', () => {
    const c = new InvariantChecker('raft');
    const st = () => status({ id: 'a' });
    expect(c.onPersist('a', { hardState: { term: 3, vote: 'b', commit: 0 } }, st, new Map(), 1)).toBeNull();
    expect(c.onPersist('a', { hardState: { term: 3, vote: 'b', commit: 2 } }, st, new Map(), 1)).toBeNull();
    expect(c.onPersist('a', { hardState: { term: 3, vote: null, commit: 2 } }, st, new Map(), 1)?.invariant).toBe('vote-durability');
    const p = new InvariantChecker('paxos');
    expect(p.onPersist('a', { hardState: { term: 9, vote: 'x', commit: 0 } }, st, new Map(), 1)).toBeNull();
    expect(p.onPersist('a', { hardState: { term: 4, vote: 'x', commit: 0 } }, st, new Map(), 1)?.invariant).toBe('term-durability');
    // Off when asked (to measure how soon a durability bug shows in its consequences).
    const off = new InvariantChecker('raft', false);
    off.onPersist('a', { hardState: { term: 3, vote: 'b', commit: 0 } }, st, new Map(), 1);
    expect(off.onPersist('a', { hardState: { term: 3, vote: null, commit: 0 } }, st, new Map(), 1)).toBeNull();
  });

  it('paxos: an acceptor never accepts below its promise', () => {
    const c = new InvariantChecker('paxos');
    const st = () => status({ id: 'a' });
    expect(c.onPersist('a', { hardState: { term: 5, vote: 'b', commit: 0 }, entries: [entry(1, 5)] }, st, new Map(), 1)).toBeNull();
    expect(c.onPersist('a', { entries: [entry(2, 7)] }, st, new Map(), 1)).toBeNull();
    expect(c.onPersist('a', { entries: [entry(3, 4)] }, st, new Map(), 1)?.invariant).toBe('accept-below-promise');
  });

  it('final check: committed logs identical, acknowledged writes committed', () => {
    const c = new InvariantChecker('raft');
    const s = (id: string) => () => status({ id, commitIndex: 2, lastIndex: 2, appliedIndex: 2 });
    const same = new Map([[1, entry(1, 1)], [2, entry(2, 1)]]);
    expect(c.finalCheck([view('a', s('a'), same), view('b', s('b'), new Map(same))], [1, 2], 1)).toBeNull();
    expect(c.finalCheck([view('a', s('a'), same), view('b', s('b'), new Map([[1, entry(1, 1)], [2, entry(2, 2)]]))], [], 1)?.invariant).toBe('log-matching');
    expect(c.finalCheck([view('a', s('a'), same)], [3], 1)?.invariant).toBe('acknowledged-write-lost');
  });
});

describe('SimStorage', () => {
  it('keeps what was persisted across a crash and mirrors the log', () => {
    const s = new SimStorage();
    s.persist({ hardState: { term: 2, vote: 'b', commit: 1 }, entries: [entry(1, 1), entry(2, 2)] });
    s.persist({ truncateFrom: 2, entries: [entry(2, 3)] });
    s.crash();
    const st = s.load();
    expect(st.hardState).toEqual({ term: 2, vote: 'b', commit: 1 });
    expect(st.entries.map((e) => e.term)).toEqual([1, 3]);
    expect([...s.shadow.keys()]).toEqual([1, 2]);
    expect(s.lastIndex()).toBe(2);
  });

  it('the forget-vote bug loses the vote (and, for Paxos, the promise) on crash only', () => {
    const s = new SimStorage(undefined, undefined, 'forget-vote');
    s.persist({ hardState: { term: 2, vote: 'b', commit: 1 } });
    expect(s.load().hardState.vote).toBe('b'); // no crash: intact
    s.crash();
    expect(s.load().hardState).toEqual({ term: 2, vote: null, commit: 1 });
    const p = new SimStorage(undefined, undefined, 'forget-vote');
    p.forgetPromise = true;
    p.persist({ hardState: { term: 9, vote: 'x', commit: 4 } });
    p.crash();
    expect(p.load().hardState).toEqual({ term: 0, vote: null, commit: 4 });
  });
});

describe('SkewedScheduler', () => {
  it('runs its clock and timers at its rate, continuously across rate changes', () => {
    const base = new VirtualScheduler(1000);
    const fired: number[] = [];
    const s = new SkewedScheduler(base, 50, () => fired.push(-1));
    expect(s.now()).toBe(1050);
    s.setRate(2);
    base.advance(100);
    expect(s.now()).toBe(1250);
    s.setTimer(100, () => fired.push(base.now())); // 100 local ms = 50 base ms at rate 2
    base.advance(60);
    expect(fired).toEqual([-1, 1150]);
    s.setRate(0.5);
    const before = s.now();
    base.advance(10);
    expect(s.now()).toBe(before + 5);
    s.jump(100);
    expect(s.now()).toBe(before + 105);
    expect(() => s.setRate(0)).toThrow();
    expect(() => s.jump(-1)).toThrow();
  });
});

describe('renderTimeline', () => {
  it('renders one bar per operation, highlights, and escapes text', () => {
    const ops: KvOperation[] = [
      { id: 0, client: 0, input: { f: 'put', key: 'x', value: '<1>' }, output: {}, status: 'ok', call: 1, return: 2, callTime: 0, returnTime: 5 },
      { id: 1, client: 1, input: { f: 'get', key: 'x' }, output: undefined, status: 'unknown', call: 3, return: Infinity, callTime: 2, returnTime: Infinity },
    ];
    const html = renderTimeline({ title: 'seed 1 & co', history: ops, events: [[3, 'crash n1']], highlight: new Set([1]), linearized: [0] });
    expect(html).toContain('<title>seed 1 &amp; co</title>');
    expect(html.match(/<rect /g)).toHaveLength(2);
    expect(html).toContain('class="unknown hl"');
    expect(html).toContain('put(x, &lt;1&gt;)');
    expect(html).toContain('3 ms: crash n1');
    expect(html).toContain('#1 ');
  });
});
