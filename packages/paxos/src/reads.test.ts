/**
 * Reads (Raft thesis §6.4 adapted to Paxos): a read index confirmed by a phase-2 quorum of
 * heartbeat acknowledgements, served only once a new leader's recovered slots are chosen; leader
 * leases (§6.4.1) resting on acceptors' leader stickiness; follower reads through the leader.
 */
import { LeaseExpiredError, NotLeaderError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { PaxosMessageType as T } from './messages.js';
import { Cluster, isType } from './test/cluster.js';

const opts = { electionTicks: 6 };

describe('linearizable reads (read index)', () => {
  it('a read index is answered only after a phase-2 quorum confirmed the leadership', () => {
    const c = new Cluster({ options: opts, seed: 80 });
    const l = c.waitLeader();
    c.propose(l, 'a');
    c.waitApplied('a');
    c.core(l).read(1, 'linearizable');
    c.process(l);
    expect(c.node(l).reads).toEqual([]);
    // The confirmation round went out; without acknowledgements there is no answer.
    expect(c.queue.filter(isType(T.Accept, l)).length).toBe(2);
    c.deliverWhere(isType(T.Accept, l));
    c.hold(isType(T.Accepted));
    expect(c.node(l).reads).toEqual([]);
    c.release();
    c.deliverOne(isType(T.Accepted)); // one follower + the leader: a quorum of 3
    expect(c.node(l).reads).toEqual([{ id: 1, index: c.core(l).status().commitIndex }]);
  });

  it('a new leader serves no read index before its recovered slots are chosen', () => {
    const c = new Cluster({ options: opts, seed: 81 });
    const l = c.waitLeader();
    const [f1, f2] = c.ids.filter((id) => id !== l) as [string, string];
    c.propose(l, 'base');
    c.waitApplied('base');
    c.propose(l, 'x'); // accepted by f1 only, never known chosen
    c.deliverWhere(isType(T.Accept, l, f1));
    c.drop(() => true);
    const slot = c.core(f1).status().lastIndex;
    c.crash(l);
    c.isolate(f2);
    // f1 alone cannot win; let f2 win with f1's promise (f1 reports x).
    c.heal();
    c.isolate(l);
    c.expireStickiness([f1, f2]);
    c.campaign(f2);
    c.deliverWhere((m) => m.type === T.Prepare || m.type === T.Promise);
    expect(c.core(f2).status().role).toBe('leader');
    c.core(f2).read(9, 'linearizable');
    c.process(f2);
    // Heartbeats alone cannot answer it: recovery (slot `slot`) is not chosen yet.
    c.deliverWhere((m) => m.type === T.Accept && m.entries.length === 0);
    expect(c.node(f2).reads.filter((r) => r.id === 9)).toEqual([]);
    c.deliverAll();
    c.run(2);
    const r = c.node(f2).reads.find((x) => x.id === 9);
    expect(r?.index).toBeGreaterThanOrEqual(slot);
    expect(c.commands(f2)).toEqual(['base', 'x']);
  });

  it('a follower gets a read index from the leader', () => {
    const c = new Cluster({ options: opts, seed: 82 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    c.propose(l, 'a');
    c.waitApplied('a');
    c.core(f).read(5, 'linearizable');
    c.process(f);
    expect(c.queue.some(isType(T.ReadIndex, f, l))).toBe(true);
    c.deliverAll();
    c.run(1);
    expect(c.node(f).reads).toEqual([{ id: 5, index: c.core(l).status().commitIndex }]);
  });

  it('reads on a node that knows no leader, and lease reads on a follower, are refused with NotLeaderError', () => {
    const c = new Cluster({ options: opts, seed: 83 });
    c.core('n1').read(1, 'linearizable');
    c.process('n1');
    expect(c.node('n1').reads[0]?.error).toBeInstanceOf(NotLeaderError);
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    c.core(f).read(2, 'lease');
    c.process(f);
    const r = c.node(f).reads.find((x) => x.id === 2);
    expect(r?.error).toBeInstanceOf(NotLeaderError);
    expect((r?.error as NotLeaderError).leaderHint).toBe(l);
  });

  it('a pending read is refused with NotLeaderError when the leader steps down', () => {
    const c = new Cluster({ options: opts, seed: 84 });
    const l = c.waitLeader();
    c.isolate(l);
    c.core(l).read(3, 'linearizable');
    c.process(l);
    c.runUntil(() => c.core(l).status().role !== 'leader', 50);
    expect(c.node(l).reads.find((x) => x.id === 3)?.error).toBeInstanceOf(NotLeaderError);
  });
});

describe('lease reads', () => {
  it('a lease read is served at once within the lease, and refused once the lease may have expired', () => {
    // Without check-quorum the isolated leader keeps its role, so only the lease says no.
    const c = new Cluster({ options: { ...opts, checkQuorum: false }, seed: 90 });
    const l = c.waitLeader();
    c.propose(l, 'a');
    c.waitApplied('a');
    c.run(1);
    const queued = c.queue.length;
    c.core(l).read(1, 'lease');
    c.process(l);
    expect(c.node(l).reads).toEqual([{ id: 1, index: c.core(l).status().commitIndex }]);
    expect(c.queue.length).toBe(queued); // no round trip
    for (const id of c.ids) if (id !== l) c.isolate(id);
    let refused = false;
    for (let t = 1; t <= 12 && c.core(l).status().role === 'leader'; t++) {
      c.tick([l]);
      c.core(l).read(100 + t, 'lease');
      c.process(l);
      const r = c.node(l).reads.find((x) => x.id === 100 + t)!;
      if (t >= 5) {
        // leaseTicks = electionTicks - 1 = 5 ticks after the last acknowledged heartbeat
        expect(r.error).toBeInstanceOf(LeaseExpiredError);
        refused = true;
      }
    }
    expect(refused).toBe(true);
  });

  it('lease safety: a new leader is elected only after the old lease surely expired, and serves lease reads only after its own', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 900 + seed });
      const old = c.waitLeader();
      c.propose(old, 'a');
      c.waitApplied('a');
      c.run(2);
      c.isolate(old);
      let id = 1000;
      let oldServed = 0;
      for (let t = 0; t < 60; t++) {
        c.tick();
        c.deliverAll();
        const leaders = c.upIds().filter((x) => c.core(x).status().role === 'leader');
        const servers = leaders.filter((x) => {
          c.core(x).read(++id, 'lease');
          c.process(x);
          return c.node(x).reads.find((r) => r.id === id)?.index !== undefined;
        });
        if (servers.includes(old)) oldServed++;
        // Two leases never overlap.
        expect(servers.length).toBeLessThanOrEqual(1);
        const others = leaders.filter((x) => x !== old);
        if (others.length > 0 && leaders.includes(old)) expect(servers).not.toContain(old);
      }
      // The old leader kept serving from its lease for a while after the partition...
      expect(oldServed).toBeGreaterThan(0);
      // ...and the majority side did elect a new leader that serves lease reads.
      const nl = c.leader();
      expect(nl).not.toBe(old);
      c.core(nl!).read(1, 'lease');
      c.process(nl!);
      expect(c.node(nl!).reads.find((r) => r.id === 1)?.index).toBeGreaterThan(0);
    }
  });

  it('lease safety with an eager candidate: acceptors that heard from the leader ignore it until the lease surely expired', () => {
    const c = new Cluster({ ids: ['n1', 'n2', 'n3', 'n4', 'n5'], options: opts, seed: 95 });
    const old = c.waitLeader();
    c.propose(old, 'a');
    c.waitApplied('a');
    c.run(2);
    // The old leader holds a fresh lease; it is cut off at once and another node campaigns now.
    const eager = c.ids.find((x) => x !== old)!;
    c.core(old).read(1, 'lease');
    c.process(old);
    expect(c.node(old).reads.find((r) => r.id === 1)?.index).toBeDefined();
    c.isolate(old);
    c.expireStickiness([eager]);
    c.campaign(eager);
    c.deliverAll();
    expect(c.core(eager).status().role).toBe('candidate');
    // Lock-step ticks: whenever anyone else leads, the old leader's lease has expired.
    let id = 100;
    for (let t = 0; t < 40; t++) {
      c.tick();
      c.deliverAll();
      const other = c.upIds().find((x) => x !== old && c.core(x).status().role === 'leader');
      c.core(old).read(++id, 'lease');
      c.process(old);
      const oldServes = c.node(old).reads.find((r) => r.id === id)?.index !== undefined;
      if (other) expect(oldServes).toBe(false);
    }
    expect(c.leader()).not.toBe(old);
  });

  it('a restarted acceptor waits out a possible lease before promising a new candidate', () => {
    const c = new Cluster({ options: opts, seed: 91 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    c.reboot(f);
    c.core(f).step({ type: T.Prepare, from: 'n9', to: f, round: 999, commit: 1, force: false, transferRound: 0, transferOwner: null });
    c.process(f);
    expect(c.queue.some(isType(T.Promise, f, 'n9'))).toBe(false);
    expect(c.core(f).promise.round).toBeLessThan(999);
  });
});
