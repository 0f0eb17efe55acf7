/**
 * Scenario tests of the Paxos core's phases on the deterministic test network, named after what
 * they verify and where it comes from (PMS = Lamport, "Paxos Made Simple"; PMMC = Van Renesse &
 * Altinbuken, "Paxos Made Moderately Complex"; SCENARIOS = /shared/SCENARIOS.md, Multi-Paxos).
 */
import { EntryType, NotLeaderError, UncommittedLogFullError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { PaxosMessageType as T, type AcceptMessage, type NackMessage, type PromiseMessage } from './messages.js';
import { Cluster, cmd, isType } from './test/cluster.js';

const opts = { electionTicks: 6 };

describe('phase 1 and leader election (PMS §2.2, §3)', () => {
  it('a single voter elects itself once its promise is durable and commits alone', () => {
    const c = new Cluster({ ids: ['n1'], options: opts });
    const l = c.waitLeader();
    expect(l).toBe('n1');
    c.propose('n1', 'a');
    c.propose('n1', 'b');
    expect(c.commands('n1')).toEqual(['a', 'b']);
  });

  it('a candidate wins with a phase-1 quorum of promises and every node follows it', () => {
    const c = new Cluster({ options: opts, seed: 3 });
    const l = c.waitLeader();
    for (const id of c.ids) expect(c.core(id).status().leader).toBe(l);
    expect(c.core(l).status().role).toBe('leader');
    // The promise is durable as HardState {term: round, vote: owner}.
    for (const id of c.ids) {
      expect(c.node(id).storage.load().hardState).toMatchObject({ term: c.core(l).status().term, vote: l });
    }
  });

  it('phase 1 runs once per leadership, not per slot: 30 proposals send no Prepare', () => {
    const c = new Cluster({ options: opts, seed: 4 });
    const l = c.waitLeader();
    c.recordSent = true;
    for (let i = 0; i < 30; i++) {
      c.propose(l, `x${i}`);
      c.deliverAll();
    }
    c.waitApplied('x29');
    expect(c.sent.filter((m) => m.type === T.Prepare)).toHaveLength(0);
    expect(c.sent.filter((m) => m.type === T.Accept).length).toBeGreaterThan(0);
  });

  it('promises from an older ballot never count toward a quorum (stale promise replies)', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 5 });
    c.expireStickiness(); // past the start-up window in which acceptors ignore candidates
    c.campaign('n1');
    const first = c.core('n1').status().term;
    c.deliverWhere(isType(T.Prepare, 'n1'));
    const stale = c.hold(isType(T.Promise, undefined, 'n1'));
    expect(stale.length).toBe(4);
    // n1 starts over with a higher round, whose prepares get lost.
    c.campaign('n1');
    c.drop(() => true);
    const second = c.core('n1').status().term;
    expect(second).toBeGreaterThan(first);
    // The old promises arrive now: they are for round `first`, so they count for nothing.
    const droppedBefore = c.core('n1').status().droppedMessages;
    c.release();
    c.deliverAll();
    expect(c.core('n1').status().role).toBe('candidate');
    expect(c.core('n1').status().droppedMessages - droppedBefore).toBe(stale.length);
  });

  it('duplicate promises count once', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 6 });
    c.expireStickiness();
    c.campaign('n1');
    // Only n2 hears the prepare; its promise arrives four times. 1 (self) + 1 < 3.
    c.drop((m) => m.type === T.Prepare && m.to !== 'n2');
    c.deliverWhere(isType(T.Prepare, 'n1', 'n2'));
    c.duplicate(isType(T.Promise, 'n2', 'n1'));
    c.duplicate(isType(T.Promise, 'n2', 'n1'));
    expect(c.queue.filter(isType(T.Promise, 'n2', 'n1'))).toHaveLength(4);
    c.deliverAll();
    expect(c.core('n1').status().role).toBe('candidate');
  });

  it('an acceptor refuses a ballot below its promise with a Nack naming its promise', () => {
    const c = new Cluster({ options: opts, seed: 7 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    const round = c.core(l).status().term;
    const before = c.node(f).storage.load();
    c.core(f).step({ type: T.Accept, from: l, to: f, round: round - 1, commit: 0, seq: 0, entries: [{ index: 99, term: round - 1, type: EntryType.Normal, data: cmd('old') }] } satisfies AcceptMessage);
    c.core(f).step({ type: T.Prepare, from: l, to: f, round: round - 1, commit: 0, force: false, transferRound: 0, transferOwner: null });
    c.process(f);
    const nacks = c.queue.filter(isType(T.Nack, f)) as NackMessage[];
    expect(nacks).toHaveLength(2);
    expect(nacks[0]).toMatchObject({ round: round - 1, promisedRound: round, promisedOwner: l });
    expect(c.core(f).entryAt(99)).toBeUndefined();
    expect(c.node(f).storage.load().entries).toEqual(before.entries);
  });

  it('an acceptor promises one owner per round: a second proposer in the same round is refused', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: opts, seed: 8 });
    c.expireStickiness();
    const n3 = c.core('n3');
    const r = n3.status().term + 5;
    n3.step({ type: T.Prepare, from: 'n1', to: 'n3', round: r, commit: 1, force: false, transferRound: 0, transferOwner: null });
    n3.step({ type: T.Prepare, from: 'n2', to: 'n3', round: r, commit: 1, force: false, transferRound: 0, transferOwner: null });
    c.process('n3');
    expect(c.queue.filter(isType(T.Promise, 'n3', 'n1'))).toHaveLength(1);
    expect(c.queue.filter(isType(T.Nack, 'n3', 'n2'))).toHaveLength(1);
    expect(n3.promise).toEqual({ round: r, owner: 'n1' });
  });

  it('an acceptor accepts a higher ballot and raises its promise', () => {
    const c = new Cluster({ options: opts, seed: 9 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    const round = c.core(l).status().term;
    const commit = c.core(f).status().commitIndex;
    c.core(f).step({ type: T.Accept, from: 'n9', to: f, round: round + 3, commit: 0, seq: 1, entries: [{ index: commit + 1, term: round + 3, type: EntryType.Normal, data: cmd('hi') }] } satisfies AcceptMessage);
    c.process(f);
    expect(c.core(f).promise).toEqual({ round: round + 3, owner: 'n9' });
    expect(c.node(f).storage.load().hardState).toMatchObject({ term: round + 3, vote: 'n9' });
    expect(c.core(f).entryAt(commit + 1)).toMatchObject({ term: round + 3 });
    expect(c.core(f).status().leader).toBe('n9');
  });

  it('a restart keeps the promise and accepted values (they were durable before the reply left)', () => {
    const c = new Cluster({ options: opts, seed: 10 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    c.propose(l, 'kept');
    // Deliver the Accept to f only; f's Accepted reply is in flight when f crashes.
    c.deliverWhere(isType(T.Accept, l, f));
    expect(c.queue.some(isType(T.Accepted, f, l))).toBe(true);
    const promise = c.core(f).promise;
    const slot = c.core(f).status().lastIndex;
    c.reboot(f);
    expect(c.core(f).promise).toEqual(promise);
    expect(c.core(f).entryAt(slot)?.data).toEqual(cmd('kept'));
    // A lower ballot is still refused after the restart.
    const g = c.ids.find((id) => id !== l && id !== f)!;
    c.core(f).step({ type: T.Prepare, from: g, to: f, round: promise.round - 1, commit: 0, force: false, transferRound: 0, transferOwner: null });
    c.process(f);
    expect(c.queue.some(isType(T.Nack, f, g))).toBe(true);
    c.waitApplied('kept');
  });

  it('an acceptor that crashes between promise and accept still refuses lower ballots after restart', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: opts, seed: 11 });
    c.expireStickiness();
    const n2 = c.core('n2');
    const r = n2.status().term + 2;
    n2.step({ type: T.Prepare, from: 'n1', to: 'n2', round: r, commit: 1, force: false, transferRound: 0, transferOwner: null });
    c.process('n2');
    expect(c.queue.some(isType(T.Promise, 'n2', 'n1'))).toBe(true);
    c.reboot('n2'); // before any Accept of round r
    const n2b = c.core('n2');
    expect(n2b.promise).toEqual({ round: r, owner: 'n1' });
    n2b.step({ type: T.Accept, from: 'n3', to: 'n2', round: r - 1, commit: 0, seq: 0, entries: [{ index: 2, term: r - 1, type: EntryType.Normal, data: cmd('low') }] });
    c.process('n2');
    expect(n2b.entryAt(2)).toBeUndefined();
    expect(c.queue.some(isType(T.Nack, 'n2', 'n3'))).toBe(true);
    // The ballot it promised is still accepted.
    n2b.step({ type: T.Accept, from: 'n1', to: 'n2', round: r, commit: 0, seq: 0, entries: [{ index: 2, term: r, type: EntryType.Normal, data: cmd('ok') }] });
    c.process('n2');
    expect(n2b.entryAt(2)?.data).toEqual(cmd('ok'));
  });

  it('a restarted proposer never reuses a ballot', () => {
    const c = new Cluster({ options: opts, seed: 12 });
    const l = c.waitLeader();
    const used = c.core(l).status().term;
    c.reboot(l);
    c.isolate(l);
    // Alone, it campaigns again: with a round above every round it used before the crash.
    c.runUntil(() => c.core(l).status().role === 'candidate', 100);
    expect(c.core(l).status().term).toBeGreaterThan(used);
    expect(c.core(l).promise.owner).toBe(l);
  });

  it('a candidate waits for its own promise to be durable; a failed write sends no Prepare', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: opts, seed: 13 });
    c.node('n1').failNextPersist = true;
    c.recordSent = true;
    c.runUntil(() => !c.isUp('n1') || c.leader() !== null, 200);
    if (c.isUp('n1')) return expect.unreachable('n1 should have campaigned and failed its write') as never;
    expect(c.sent.filter(isType(T.Prepare, 'n1'))).toHaveLength(0);
    c.restart('n1');
    expect(c.node('n1').storage.load().hardState.vote).not.toBe('n1');
  });

  it('dueling proposers converge through randomized backoff (50 seeds, both campaign at once)', () => {
    let totalTicks = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const c = new Cluster({ ids: ['n1', 'n2', 'n3'], options: opts, seed: 100 + seed });
      c.expireStickiness();
      // Force a duel: n1 and n2 campaign in the same instant, every prepare crossing.
      const a = c.core('n1') as unknown as { campaign(f: null): void };
      const b = c.core('n2') as unknown as { campaign(f: null): void };
      a.campaign(null);
      b.campaign(null);
      c.process('n1');
      c.process('n2');
      c.reorder();
      let t = 0;
      c.runUntil(() => {
        t++;
        return c.leader() !== null && c.ids.every((id) => c.core(id).status().leader === c.leader());
      }, 400);
      totalTicks += t;
      c.propose(c.leader()!, 'after-duel');
      c.waitApplied('after-duel');
    }
    // Convergence is fast on average: a few election timeouts at most.
    expect(totalTicks / 50).toBeLessThan(6 * 6);
  });

  it('Accepted replies from an older ballot of the same leader never count', () => {
    const c = new Cluster({ options: opts, seed: 16 });
    const l = c.waitLeader();
    c.propose(l, 'base');
    c.waitApplied('base');
    c.propose(l, 'x');
    c.deliverWhere(isType(T.Accept, l));
    const old = c.hold(isType(T.Accepted, undefined, l));
    expect(old).toHaveLength(2);
    // The same node leads again under a new round; its new messages are lost.
    c.expireStickiness();
    c.campaign(l);
    c.deliverWhere((m) => m.type === T.Prepare || m.type === T.Promise);
    expect(c.core(l).status().role).toBe('leader');
    c.drop(() => true);
    const commit = c.core(l).status().commitIndex;
    const dropped = c.core(l).status().droppedMessages;
    c.release();
    c.deliverAll();
    expect(c.core(l).status().commitIndex).toBe(commit);
    expect(c.core(l).status().droppedMessages - dropped).toBe(2);
    c.waitApplied('x');
  });

  it('a voter back from a partition with a higher round: the leader re-runs phase 1 at once and keeps leading', () => {
    const c = new Cluster({ options: opts, seed: 17 });
    const l = c.waitLeader();
    const lone = c.ids.find((id) => id !== l)!;
    c.isolate(lone);
    c.runUntil(() => c.core(lone).status().term > c.core(l).status().term + 2, 300);
    c.heal();
    // The first heartbeat meets the lone candidate's higher promise: Nack, and the leader answers
    // with a phase 1 above it (its followers stay with it), instead of an election timeout.
    c.run(3);
    expect(c.leader()).toBe(l);
    expect(c.core(l).status().term).toBeGreaterThan(c.core(lone).status().term - 1);
    for (const id of c.ids) expect(c.core(id).status().leader).toBe(l);
    c.propose(l, 'go-on');
    c.waitApplied('go-on');
  });

  it('a Nack with a higher ballot makes the leader step down', () => {
    const c = new Cluster({ options: opts, seed: 14 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    const round = c.core(l).status().term;
    c.core(l).step({ type: T.Nack, from: f, to: l, round, promisedRound: round + 4, promisedOwner: 'n9', lagging: false, commit: 0 } satisfies NackMessage);
    expect(c.core(l).status().role).toBe('follower');
    expect(c.core(l).status().leader).toBeNull();
  });

  it('a lagging candidate (watermark below an acceptor snapshot) is refused; an up-to-date node wins', () => {
    const c = new Cluster({ options: opts, seed: 15 });
    const l = c.waitLeader();
    const lag = c.ids.find((id) => id !== l)!;
    c.isolate(lag);
    for (let i = 0; i < 10; i++) c.propose(l, `w${i}`);
    c.run(3);
    for (const id of c.ids) if (id !== lag) c.compact(id);
    c.crash(l);
    c.heal();
    // The lagging node's prepares meet acceptors whose snapshots it cannot match.
    const lagCore = c.core(lag) as unknown as { campaign(f: null): void };
    lagCore.campaign(null);
    c.process(lag);
    c.deliverAll();
    expect(c.core(lag).status().role).not.toBe('leader');
    const nl = c.waitLeader();
    expect(nl).not.toBe(lag);
    c.restart(l);
    c.waitApplied('w9', c.ids);
    c.checkPrefixes();
  });
});

describe('phase 2: pipelined, batched accepts and learning (PMMC §3, SCENARIOS)', () => {
  it('happy path: every replica applies an identical prefix and its log only grows', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 20 });
    const l = c.waitLeader();
    const lastSeen = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      c.propose(l, `h${i}`);
      if (i % 3 === 0) c.run(1);
      for (const id of c.ids) {
        const last = c.core(id).status().lastIndex;
        expect(last).toBeGreaterThanOrEqual(lastSeen.get(id) ?? 0);
        lastSeen.set(id, last);
      }
    }
    c.waitApplied('h39');
    const expected = Array.from({ length: 40 }, (_, i) => `h${i}`);
    for (const id of c.ids) expect(c.commands(id)).toEqual(expected);
  });

  it('proposals made in one turn leave in one Accept per follower (batching)', () => {
    const c = new Cluster({ options: opts, seed: 21 });
    const l = c.waitLeader();
    c.deliverAll();
    for (let i = 0; i < 50; i++) c.core(l).propose(cmd(`b${i}`));
    c.process(l);
    const accepts = c.queue.filter(isType(T.Accept, l)) as AcceptMessage[];
    expect(accepts).toHaveLength(2);
    for (const a of accepts) expect(a.entries).toHaveLength(50);
    // The payloads are the proposer's own buffers: never copied on the way.
    c.waitApplied('b49');
  });

  it('phase 2 is pipelined: a second batch leaves before the first is acknowledged', () => {
    const c = new Cluster({ options: opts, seed: 22 });
    const l = c.waitLeader();
    c.propose(l, 'warm');
    c.waitApplied('warm');
    c.propose(l, 'p1');
    c.deliverWhere(isType(T.Accept, l)); // followers accept; their Accepted replies stay in flight
    c.hold(isType(T.Accepted));
    c.propose(l, 'p2');
    const second = c.queue.filter(isType(T.Accept, l)) as AcceptMessage[];
    expect(second.length).toBe(2);
    expect(second.every((a) => a.entries.length === 1 && a.entries[0]!.data.length > 0)).toBe(true);
    c.release();
    c.waitApplied('p2');
    expect(c.commands(l)).toEqual(['warm', 'p1', 'p2']);
  });

  it('duplicate Accepted replies count once toward a phase-2 quorum', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 23 });
    const l = c.waitLeader();
    const [f1] = c.ids.filter((id) => id !== l) as [string];
    c.propose(l, 'dup');
    const commit = c.core(l).status().commitIndex;
    c.deliverWhere(isType(T.Accept, l, f1));
    c.drop(isType(T.Accept, l));
    c.duplicate(isType(T.Accepted, f1, l));
    c.duplicate(isType(T.Accepted, f1, l));
    c.deliverAll();
    // Leader + f1 = 2 < 3, however often f1's reply arrives.
    expect(c.core(l).status().commitIndex).toBe(commit);
    c.waitApplied('dup');
  });

  it('committed slots are applied in slot order even when accepts arrive reordered', () => {
    const c = new Cluster({ options: opts, seed: 24 });
    const l = c.waitLeader();
    c.propose(l, 'warm');
    c.waitApplied('warm');
    for (let i = 0; i < 20; i++) {
      c.propose(l, `o${i}`);
      if (i % 4 === 0) c.reorder();
    }
    c.reorder();
    c.deliverAll();
    c.waitApplied('o19');
    for (const id of c.ids) expect(c.commands(id)).toEqual(['warm', ...Array.from({ length: 20 }, (_, i) => `o${i}`)]);
  });

  it('a new leader re-proposes the value with the highest accepted ballot, even when two values were accepted at different ballots', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 25 });
    c.run(7);
    const slot = 2;
    const core = (id: string) => c.core(id);
    // Ballot (3, n1) got value A accepted by n2 only; ballot (4, n5) got value B accepted by n3 only.
    core('n2').step({ type: T.Accept, from: 'n1', to: 'n2', round: 3, commit: 1, seq: 0, entries: [{ index: slot, term: 3, type: EntryType.Normal, data: cmd('A') }] });
    core('n3').step({ type: T.Accept, from: 'n5', to: 'n3', round: 4, commit: 1, seq: 0, entries: [{ index: slot, term: 4, type: EntryType.Normal, data: cmd('B') }] });
    c.process('n2');
    c.process('n3');
    c.drop(() => true);
    // Any leader now needs a quorum of {n2, n3, n4}: it sees (3, A) and (4, B) and must pick B.
    c.isolate('n1');
    c.isolate('n5');
    c.runUntil(() => ['n2', 'n3', 'n4'].some((id) => core(id).status().role === 'leader' && core(id).status().commitIndex >= slot), 200);
    for (const id of ['n2', 'n3', 'n4']) {
      c.runUntil(() => c.applied(id).length >= slot, 50);
      expect(c.commands(id)).toEqual(['B']);
    }
  });

  it('a slot that never reached a quorum is filled with a no-op by the next leader; a minority-accepted value after it is kept', () => {
    const c = new Cluster({ options: opts, seed: 26 });
    const l = c.waitLeader();
    const [f1, f2] = c.ids.filter((id) => id !== l) as [string, string];
    c.propose(l, 'base');
    c.waitApplied('base');
    // Three proposals; the Accept carrying the middle one is lost everywhere, so f1 holds slots
    // s and s+2 only (s+1 is a gap there).
    const s = c.core(l).status().lastIndex + 1;
    c.propose(l, 'first');
    c.deliverWhere(isType(T.Accept, l, f1));
    c.drop(() => true);
    c.propose(l, 'lost');
    c.drop(() => true);
    c.propose(l, 'third');
    const a = c.queue.find(isType(T.Accept, l, f1)) as AcceptMessage;
    expect(a.entries.map((e) => e.index)).toEqual([s + 2]); // pipelined: s + 1 went before
    c.deliverOne((m) => m === a);
    c.drop(() => true);
    expect(c.core(f1).entryAt(s + 1)).toBeUndefined();
    expect(c.core(f1).entryAt(s + 2)?.data).toEqual(cmd('third'));
    // The leader dies; f1 and f2 elect a new leader that recovers slots s..s+2.
    c.crash(l);
    const nl = c.waitLeader();
    expect([f1, f2]).toContain(nl);
    c.runUntil(() => c.core(nl).status().commitIndex >= s + 2, 50);
    expect(c.applied(nl).slice(s - 1, s + 2)).toEqual(['v:first', 'noop', 'v:third']);
    c.restart(l);
    c.runUntil(() => c.applied(l).length >= s + 2, 100);
    expect(c.commands(l)).toEqual(['base', 'first', 'third']);
  });

  it("a deposed leader's entries made while partitioned are overwritten and never executed", () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 27 });
    const old = c.waitLeader();
    c.propose(old, 'before');
    c.waitApplied('before');
    const buddy = c.ids.find((id) => id !== old)!;
    // old + one follower on one side (a minority), the other three on the other.
    for (const x of c.ids) for (const y of c.ids) if ((x === old || x === buddy) !== (y === old || y === buddy)) c.block(x, y);
    for (let i = 0; i < 5; i++) c.propose(old, `ghost${i}`);
    c.run(2);
    expect(c.core(buddy).status().lastIndex).toBeGreaterThan(c.core(buddy).status().commitIndex);
    const majority = c.ids.filter((id) => id !== old && id !== buddy);
    c.runUntil(() => majority.some((id) => c.core(id).status().role === 'leader'), 200);
    const nl = majority.find((id) => c.core(id).status().role === 'leader')!;
    c.propose(nl, 'real');
    c.waitApplied('real', majority);
    c.heal();
    c.waitApplied('real', c.ids, 300);
    for (const id of c.ids) {
      expect(c.commands(id).some((x) => x.startsWith('ghost'))).toBe(false);
      expect(c.commands(id)).toEqual(['before', 'real']);
    }
  });

  it('a minority partition cannot choose anything', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 28 });
    const l = c.waitLeader();
    const commit = c.core(l).status().commitIndex;
    const buddy = c.ids.find((id) => id !== l)!;
    for (const x of c.ids) for (const y of c.ids) if ((x === l || x === buddy) !== (y === l || y === buddy)) c.block(x, y);
    for (let i = 0; i < 5; i++) {
      try {
        c.propose(l, `m${i}`);
      } catch {
        // once check-quorum deposes it, proposals are refused
      }
    }
    c.run(30);
    expect(c.core(l).status().commitIndex).toBe(commit);
    expect(c.core(buddy).status().commitIndex).toBe(commit);
    expect(c.core(l).status().role).not.toBe('leader'); // check-quorum
    for (const id of c.ids) expect(c.commands(id).some((x) => x.startsWith('m'))).toBe(false);
  });

  it('a write accepted on a minority only is never read two different ways', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 29 });
    const l = c.waitLeader();
    const buddy = c.ids.find((id) => id !== l)!;
    c.propose(l, 'x=1');
    c.waitApplied('x=1');
    for (const x of c.ids) for (const y of c.ids) if ((x === l || x === buddy) !== (y === l || y === buddy)) c.block(x, y);
    c.propose(l, 'x=2'); // reaches the minority only
    c.run(2);
    // A linearizable read on the old leader cannot be confirmed: no answer at all.
    c.core(l).read(1, 'linearizable');
    c.run(3);
    expect(c.node(l).reads.filter((r) => r.id === 1 && r.index !== undefined)).toHaveLength(0);
    const majority = c.ids.filter((id) => id !== l && id !== buddy);
    c.runUntil(() => majority.some((id) => c.core(id).status().role === 'leader'), 200);
    const nl = majority.find((id) => c.core(id).status().role === 'leader')!;
    c.core(nl).read(2, 'linearizable');
    c.process(nl);
    c.run(3);
    const answer = c.node(nl).reads.find((r) => r.id === 2);
    expect(answer?.index).toBeDefined();
    // Reads are served at the read index: x=2 is not in anyone's state there, and never will be.
    expect(c.applied(nl).slice(0, answer!.index!)).not.toContain('v:x=2');
    c.heal();
    c.run(30);
    for (const id of c.ids) expect(c.commands(id)).not.toContain('x=2');
  });
});

describe('proposals and refusals', () => {
  it('a proposal on a follower is forwarded to the leader', () => {
    const c = new Cluster({ options: opts, seed: 30 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    c.propose(f, 'fwd');
    expect(c.queue.some(isType(T.Forward, f, l))).toBe(true);
    c.waitApplied('fwd');
  });

  it('without forwarding, a follower refuses with NotLeaderError naming the leader; a candidate names none', () => {
    const c = new Cluster({ options: { ...opts, forwardProposals: false }, seed: 31 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    let err: unknown;
    try {
      c.core(f).propose(cmd('x'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).leaderHint).toBe(l);
    c.isolate(f);
    c.runUntil(() => c.core(f).status().role === 'candidate', 100);
    expect(() => c.core(f).propose(cmd('y'))).toThrow(NotLeaderError);
    try {
      c.core(f).propose(cmd('y'));
    } catch (e) {
      expect((e as NotLeaderError).leaderHint).toBeNull();
    }
  });

  it('the leader refuses proposals with UncommittedLogFullError past maxUncommittedEntries, changing nothing', () => {
    const c = new Cluster({ options: { ...opts, maxUncommittedEntries: 5 }, seed: 32 });
    const l = c.waitLeader();
    for (const id of c.ids) if (id !== l) c.isolate(id);
    for (let i = 0; i < 5; i++) c.propose(l, `u${i}`);
    const last = c.core(l).status().lastIndex;
    expect(() => c.core(l).propose(cmd('u5'))).toThrow(UncommittedLogFullError);
    expect(c.core(l).status().lastIndex).toBe(last);
  });

  it('Promise reports only the values above the candidate watermark', () => {
    const c = new Cluster({ options: opts, seed: 33 });
    const l = c.waitLeader();
    for (let i = 0; i < 5; i++) c.propose(l, `r${i}`);
    c.waitApplied('r4');
    const f = c.ids.find((id) => id !== l)!;
    const g = c.ids.find((id) => id !== l && id !== f)!;
    c.run(8);
    const commit = c.core(f).status().commitIndex;
    c.core(f).step({ type: T.Prepare, from: g, to: f, round: 1000, commit: commit - 2, force: false, transferRound: 0, transferOwner: null });
    // f still hears from its leader: a foreign prepare is ignored (stickiness)...
    c.process(f);
    expect(c.queue.some(isType(T.Promise, f, g))).toBe(false);
    // ...until the leader has been silent for electionTicks (g is down too: f cannot win meanwhile).
    c.crash(l);
    c.crash(g);
    c.run(6);
    c.drop(() => true);
    c.core(f).step({ type: T.Prepare, from: g, to: f, round: 1000, commit: commit - 2, force: false, transferRound: 0, transferOwner: null });
    c.process(f);
    const p = c.queue.find(isType(T.Promise, f, g)) as PromiseMessage;
    expect(p.entries.map((e) => e.index)).toEqual([commit - 1, commit]);
  });
});

describe('early sends (Raft thesis §10.2.1, applied to phase 2)', () => {
  it('only a leader with a durable promise sends before persisting', () => {
    const c = new Cluster({ options: opts, seed: 4 });
    const seen: { role: string; early: boolean; promiseChanged: boolean }[] = [];
    for (const id of c.ids) {
      const core = c.core(id);
      const orig = core.ready.bind(core);
      core.ready = () => {
        const before = c.node(id).storage.load().hardState;
        const rd = orig();
        const changed = rd.hardState !== null && (rd.hardState.term !== before.term || rd.hardState.vote !== before.vote);
        seen.push({ role: core.status().role, early: rd.sendBeforePersist === true, promiseChanged: changed });
        return rd;
      };
    }
    const l = c.waitLeader();
    c.propose(l, 'a');
    c.waitApplied('a');
    expect(seen.some((r) => r.early)).toBe(true);
    for (const r of seen) if (r.early) expect([r.role, r.promiseChanged]).toEqual(['leader', false]);
  });

  it('a leader that crashes after its Accepts left but before its own write loses nothing chosen', () => {
    const c = new Cluster({ options: opts, seed: 6 });
    const l = c.waitLeader();
    c.propose(l, 'a');
    c.waitApplied('a');
    const core = c.core(l);
    core.propose(cmd('b'));
    const rd = core.ready();
    expect(rd.sendBeforePersist).toBe(true);
    for (const m of rd.messages) c.queue.push(m); // sent early; the leader's write never happens
    c.crash(l);
    c.expireStickiness();
    c.runUntil(() => c.leader() !== null && c.leader() !== l, 500, 'a new leader');
    c.restart(l);
    c.waitApplied('a');
    c.propose(c.waitLeader(), 'c');
    c.waitApplied('c');
    const logs = c.ids.map((id) => c.commands(id).join(','));
    expect(new Set(logs).size).toBe(1);
    expect(c.commands(c.ids[0]!)[0]).toBe('a');
  });
});
