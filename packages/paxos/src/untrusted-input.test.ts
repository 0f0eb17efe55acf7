/**
 * Input from the wire the core must not trust: rounds near the top of the safe-integer range,
 * configurations that are not valid, and candidates that are not (or no longer) voters. The
 * rule throughout: a message that is dropped or ignored is counted in `droppedMessages` and has
 * no effect on the node's state (promise, highest round seen, log, role, timers).
 */
import { type Configuration, createRandom, encodeConfiguration, type Entry, EntryType, MemoryStorage } from '@synod/log';
import { describe, expect, it } from 'vitest';
import {
  MAX_ROUND,
  type AcceptMessage,
  type NackMessage,
  type PaxosMessage,
  PaxosMessageType as T,
  type PrepareMessage,
  type PromiseMessage,
  type SnapshotMessage,
} from './messages.js';
import { paxos } from './index.js';
import { Cluster, isType } from './test/cluster.js';

const opts = { electionTicks: 6 };

function prepare(from: string, to: string, round: number, commit = 1, extra: Partial<PrepareMessage> = {}): PrepareMessage {
  return { type: T.Prepare, from, to, round, commit, force: false, transferRound: 0, transferOwner: null, ...extra };
}

/** Steps `m` into `id` and checks it was dropped whole: counted, nothing sent, nothing to persist, same status and promise. */
function expectDroppedWhole(c: Cluster, id: string, m: PaxosMessage): void {
  const core = c.core(id);
  c.process(id);
  const before = core.status();
  const promise = core.promise;
  core.step(m);
  expect(core.status().droppedMessages).toBe(before.droppedMessages + 1);
  expect(core.hasReady()).toBe(false);
  expect(core.promise).toEqual(promise);
  expect({ ...core.status(), droppedMessages: 0 }).toEqual({ ...before, droppedMessages: 0 });
}

describe('round (ballot) bound', () => {
  it('a Prepare with round 2^53 - 1, from a member or a stranger, is dropped whole; when the leader fails the cluster elects a new one with an ordinary round', () => {
    const c = new Cluster({ options: opts, seed: 301 });
    const l = c.waitLeader();
    const round = c.core(l).status().term;
    for (const f of c.ids.filter((id) => id !== l)) {
      expectDroppedWhole(c, f, prepare('x9', f, Number.MAX_SAFE_INTEGER));
      expectDroppedWhole(c, f, prepare(l === 'n1' ? 'n2' : 'n1', f, Number.MAX_SAFE_INTEGER, 1000));
    }
    // Before the fix the followers remembered the round and died here on a storage error
    // ("hardState.term must be a non-negative integer, got 9007199254740992").
    c.crash(l);
    const l2 = c.waitLeader();
    expect(c.core(l2).status().term).toBeLessThan(round + 10);
    c.propose(l2, 'alive');
    c.waitApplied('alive');
  });

  it('a Prepare ignored because the leader is alive (stickiness) leaves no trace: its round is not remembered', () => {
    const c = new Cluster({ options: opts, seed: 302 });
    const l = c.waitLeader();
    const round = c.core(l).status().term;
    const [f, g] = c.ids.filter((id) => id !== l) as [string, string];
    expectDroppedWhole(c, f, prepare(g, f, 1_000_000, 1000));
    expectDroppedWhole(c, l, prepare(g, l, 1_000_000, 1000));
    c.crash(l);
    const l2 = c.waitLeader();
    expect(c.core(l2).status().term).toBeLessThan(round + 10);
  });

  it(`every message naming a round above MAX_ROUND (2^52) is dropped whole`, () => {
    const c = new Cluster({ options: opts, seed: 303 });
    const l = c.waitLeader();
    const [f, g] = c.ids.filter((id) => id !== l) as [string, string];
    const over = MAX_ROUND + 1;
    const cfg = { voters: ['n1', 'n2', 'n3'], learners: [] };
    const last = c.core(f).status().lastIndex;
    const bad: PaxosMessage[] = [
      prepare(g, f, over, 1000),
      prepare(g, f, 5, 1000, { force: true, transferRound: over, transferOwner: l }),
      { type: T.Accept, from: l, to: f, round: over, commit: 0, seq: 1, entries: [{ index: last + 1, term: over, type: EntryType.Normal, data: new Uint8Array([1]) }] },
      { type: T.Snapshot, from: l, to: f, round: over, meta: { index: last + 5, term: 1, config: cfg }, offset: 0, total: 1, data: new Uint8Array(1) },
      { type: T.Snapshot, from: l, to: f, round: 5, meta: { index: last + 5, term: over, config: cfg }, offset: 0, total: 1, data: new Uint8Array(1) },
      { type: T.TimeoutNow, from: l, to: f, round: over },
      { type: T.Accepted, from: f, to: l, round: over, match: 1, last: 1, seq: 1 },
      { type: T.SnapshotAck, from: f, to: l, round: over, index: 1, offset: 0, match: 1 },
    ];
    for (const m of bad) expectDroppedWhole(c, m.to, m);
    // A candidate: a Promise with an over-bound round, and one reporting an entry accepted above
    // its own round; a Nack naming an over-bound promise.
    c.expireStickiness();
    c.campaign(f);
    const r = c.core(f).status().term;
    c.drop(() => true);
    const promises: PaxosMessage[] = [
      { type: T.Promise, from: g, to: f, round: over, commit: 1, entries: [] } satisfies PromiseMessage,
      { type: T.Promise, from: g, to: f, round: r, commit: 1, entries: [{ index: 2, term: r + 1, type: EntryType.Normal, data: new Uint8Array([7]) }] },
      { type: T.Nack, from: g, to: f, round: r, promisedRound: over, promisedOwner: g, lagging: false, commit: 1 } satisfies NackMessage,
    ];
    for (const m of promises) expectDroppedWhole(c, f, m);
    expect(c.core(f).status().role).toBe('candidate');
  });

  it('a node promised to MAX_ROUND never campaigns past it: it refuses to start phase 1, never throws, never persists a round above the bound', () => {
    const c = new Cluster({ options: opts, seed: 304 });
    const l = c.waitLeader();
    const [f, g] = c.ids.filter((id) => id !== l) as [string, string];
    c.crash(l);
    c.expireStickiness([f]);
    // A (faulty) member promised at the very top of the range: valid, so f promises it.
    c.core(f).step(prepare(g, f, MAX_ROUND, 1000));
    c.process(f);
    expect(c.core(f).promise).toEqual({ round: MAX_ROUND, owner: g });
    c.crash(g);
    c.recordSent = true;
    for (let t = 0; t < 200; t++) c.tick([f]);
    expect(c.sent.filter(isType(T.Prepare, f))).toHaveLength(0);
    expect(c.core(f).status().role).toBe('follower');
    expect(c.node(f).storage.load().hardState.term).toBe(MAX_ROUND);
    // A transfer naming that ballot does not make it campaign either.
    c.core(f).step({ type: T.TimeoutNow, from: g, to: f, round: MAX_ROUND });
    c.process(f);
    expect(c.sent.filter(isType(T.Prepare, f))).toHaveLength(0);
    // It still follows a leader of that ballot.
    c.core(f).step({ type: T.Accept, from: g, to: f, round: MAX_ROUND, commit: 1, seq: 1, entries: [] } satisfies AcceptMessage);
    c.process(f);
    expect(c.core(f).status().leader).toBe(g);
  });
});

describe('configurations from the wire are validated', () => {
  const noVoters = encodeConfiguration({ voters: [], learners: [] });
  const invalid: Array<[string, Configuration]> = [
    ['no voters', { voters: [], learners: [] }],
    ['duplicate voter', { voters: ['n1', 'n1'], learners: [] }],
    ['voter and learner', { voters: ['n1', 'n2'], learners: ['n2'] }],
    ['invalid id', { voters: ['n1', 'has space'], learners: [] }],
  ];

  it('an Accept carrying a Config entry with zero voters is dropped whole; the remaining majority elects a leader', () => {
    const c = new Cluster({ options: opts, seed: 311 });
    const l = c.waitLeader();
    const [f, g] = c.ids.filter((id) => id !== l) as [string, string];
    const round = c.core(l).status().term;
    const slot = c.core(f).status().lastIndex + 1;
    for (const r of [round, round + 5]) {
      expectDroppedWhole(c, f, { type: T.Accept, from: l, to: f, round: r, commit: 1, seq: 99, entries: [{ index: slot, term: r, type: EntryType.Config, data: noVoters }] });
    }
    expect(c.core(f).entryAt(slot)).toBeUndefined();
    expect(c.core(f).status().config.voters.length).toBe(3);
    // Before the fix f adopted `voters: []`; every candidate then recovered it and waited forever
    // for a phase-1 quorum of an empty configuration.
    c.crash(l);
    const l2 = c.waitLeader();
    expect([f, g]).toContain(l2);
    c.propose(l2, 'elected');
    c.waitApplied('elected', [f, g]);
  });

  it('Accepts, Promises and Snapshots carrying any invalid configuration are dropped whole', () => {
    for (const [what, cfg] of invalid) {
      const data = encodeConfiguration(cfg);
      const c = new Cluster({ options: opts, seed: 312 });
      const l = c.waitLeader();
      const [f, g] = c.ids.filter((id) => id !== l) as [string, string];
      const round = c.core(l).status().term;
      const slot = c.core(f).status().lastIndex + 1;
      const entry: Entry = { index: slot, term: round + 1, type: EntryType.Config, data };
      expectDroppedWhole(c, f, { type: T.Accept, from: l, to: f, round: round + 1, commit: 1, seq: 1, entries: [entry] });
      expectDroppedWhole(c, f, {
        type: T.Snapshot, from: l, to: f, round: round + 1, meta: { index: slot + 3, term: round, config: cfg }, offset: 0, total: 1, data: new Uint8Array(1),
      } satisfies SnapshotMessage);
      // A candidate does not count (nor recover from) a Promise that reports one.
      c.expireStickiness();
      c.campaign(f);
      const r = c.core(f).status().term;
      c.drop(() => true);
      expectDroppedWhole(c, f, { type: T.Promise, from: g, to: f, round: r, commit: 1, entries: [{ ...entry, term: round }] });
      expect(c.core(f).status().role, what).toBe('candidate');
      c.core(f).step({ type: T.Promise, from: g, to: f, round: r, commit: 1, entries: [] });
      c.process(f);
      expect(c.core(f).status().role, what).toBe('leader');
    }
  });

  it('an invalid configuration already in storage (written before validation existed) is loaded as a no-op', () => {
    const storage = new MemoryStorage();
    const valid = encodeConfiguration({ voters: ['n1'], learners: [] });
    storage.persist({
      hardState: { term: 3, vote: 'n1', commit: 1 },
      truncateFrom: null,
      compactTo: null,
      snapshot: null,
      entries: [
        { index: 1, term: 0, type: EntryType.Config, data: valid },
        { index: 2, term: 3, type: EntryType.Config, data: noVoters },
      ],
    });
    const core = paxos(opts).create({ id: 'n1', state: storage.load(), random: createRandom(1) });
    expect(core.status().config.voters).toEqual(['n1']);
  });
});

describe('messages from non-members', () => {
  it('a removed voter that missed its removal keeps campaigning: acceptors that know it was removed drop its Prepares, even with no leader around', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4'], options: opts, seed: 321 });
    let l = c.waitLeader();
    if (l === 'n4') {
      c.core(l).transferLeadership('n1');
      c.process(l);
      c.runUntil(() => c.leader() === 'n1', 50);
      l = 'n1';
    }
    c.isolate('n4'); // it never learns it was removed
    c.core(l).proposeMembershipChange({ type: 'remove', id: 'n4' });
    c.process(l);
    c.runUntil(() => ['n1', 'n2', 'n3'].every((id) => c.applied(id).length >= c.core(l).status().lastIndex), 200);
    const round = c.core(l).status().term;
    c.heal();
    c.recordSent = true;
    // The leader dies: nobody is in contact with a leader, n4's high rounds reach everyone.
    c.crash(l);
    for (let i = 0; i < 5; i++) {
      c.expireStickiness(); // time passes: nobody has heard from a leader lately
      c.campaign('n4');
      c.deliverAll();
    }
    const rest = ['n1', 'n2', 'n3'].filter((id) => id !== l);
    expect(c.sent.filter((m) => m.type === T.Promise && m.to === 'n4')).toHaveLength(0);
    expect(c.sent.filter((m) => m.type === T.Nack && m.to === 'n4')).toHaveLength(0);
    for (const id of rest) expect(c.core(id).promise.round).toBeLessThanOrEqual(round);
    // The two remaining voters of {n1, n2, n3} elect a leader with an ordinary round.
    c.runUntil(() => c.leader() !== null && rest.includes(c.leader()!), 300, 'a leader among the remaining voters');
    const l2 = c.leader()!;
    expect(c.core(l2).status().term).toBeLessThan(round + 10);
    c.propose(l2, 'without-n4');
    c.waitApplied('without-n4', rest);
  });

  it('a new voter that never learned anything answers a candidate (it cannot judge membership yet), so the new configuration can elect', () => {
    const c = new Cluster({ ids: ['n1', 'n2'], options: opts, seed: 322, joiners: ['n3'] });
    const l = c.waitLeader();
    const other = l === 'n1' ? 'n2' : 'n1';
    c.block(l, 'n3'); // n3 hears nothing before the leader dies
    c.core(l).proposeMembershipChange({ type: 'addVoter', id: 'n3' });
    c.process(l);
    c.runUntil(() => c.applied(other).length >= c.core(l).status().lastIndex, 100);
    expect(c.core('n3').status().config.voters).toEqual([]);
    c.crash(l);
    // {other, n3} is a phase-1 quorum of {n1, n2, n3}; n3 knows no configuration at all.
    c.runUntil(() => c.leader() === other, 300, `${other} leads`);
    c.propose(other, 'with-n3');
    c.waitApplied('with-n3', [other, 'n3']);
  });

  it('a candidate ahead of a lagging acceptor is answered even if the acceptor does not know it as a voter yet', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: opts, seed: 323, joiners: ['n4'] });
    const l = c.waitLeader();
    const lag = c.ids.find((id) => id !== l && id !== 'n4')!;
    c.isolate(lag);
    c.core(l).proposeMembershipChange({ type: 'addVoter', id: 'n4' });
    c.process(l);
    c.runUntil(() => c.applied('n4').length >= c.core(l).status().lastIndex, 200);
    expect(c.core(lag).status().config.voters).not.toContain('n4');
    c.heal();
    c.drop(() => true);
    c.expireStickiness([lag]);
    const commit = c.core('n4').status().commitIndex;
    expect(commit).toBeGreaterThan(c.core(lag).status().commitIndex);
    c.core(lag).step(prepare('n4', lag, 1000, commit));
    c.process(lag);
    expect(c.queue.some(isType(T.Promise, lag, 'n4'))).toBe(true);
    // The same candidate with a watermark not ahead of the acceptor's is a stranger to it: dropped.
    const c2 = new Cluster({ ids: ['n1', 'n2', 'n3'], options: opts, seed: 324 });
    c2.waitLeader();
    c2.expireStickiness();
    expectDroppedWhole(c2, 'n2', prepare('n4', 'n2', 1000, c2.core('n2').status().commitIndex));
  });
});
