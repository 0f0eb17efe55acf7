/**
 * Cluster-level runs in the style of the MIT 6.824 Raft labs (3A/3B/3C), on the pure cores over
 * the deterministic test network: whole-cluster behaviour under disconnections and restarts.
 */
import { createRandom } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { cmd, TestNetwork } from './test/network.js';

const five = ['a', 'b', 'c', 'd', 'e'];

describe('cluster runs (3A/3B/3C style)', () => {
  it('re-elects after the leader disconnects, and the old leader rejoins as a follower', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { seed: 21 });
    const l1 = net.elect();
    net.isolate(l1);
    net.tickUntil(() => ['a', 'b', 'c'].some((x) => x !== l1 && net.status(x).role === 'leader'));
    const l2 = net.leader()!;
    expect(l2).not.toBe(l1);
    net.propose(l2, 'while-partitioned');
    net.heal();
    net.tick(5);
    expect(net.leaders()).toEqual([l2]);
    expect(net.status(l1)).toMatchObject({ role: 'follower', leader: l2 });
    expect(net.appliedData(l1)).toEqual(['while-partitioned']);
  });

  it('many elections with random disconnects (7 nodes): at most one leader per term, always a leader with a quorum', () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const net = new TestNetwork(ids, { seed: 5 });
    const rng = createRandom(99);
    const leaderOf = new Map<number, string>();
    for (let round = 0; round < 10; round++) {
      net.heal();
      const down = new Set<string>();
      while (down.size < 3) down.add(ids[rng.int(0, 6)]!);
      for (const d of down) net.isolate(d);
      const up = ids.filter((x) => !down.has(x));
      net.tickUntil(() => up.some((x) => net.status(x).role === 'leader'), 400);
      for (const id of ids) {
        const st = net.status(id);
        if (st.role !== 'leader') continue;
        const prev = leaderOf.get(st.term);
        expect(prev === undefined || prev === id).toBe(true);
        leaderOf.set(st.term, id);
      }
    }
    expect(leaderOf.size).toBeGreaterThanOrEqual(3);
  });

  it('agreement with a follower down, and no agreement without a quorum', () => {
    const net = new TestNetwork(five, { seed: 8 });
    const l = net.elect();
    const [f1, f2, f3] = five.filter((x) => x !== l) as [string, string, string];
    net.crash(f1);
    net.propose(l, 'one-down');
    net.tick(1);
    expect(net.appliedData(l)).toEqual(['one-down']);
    net.crash(f2);
    net.crash(f3);
    const commit = net.status(l).commitIndex;
    try {
      net.core(l).propose(cmd('no-quorum'));
    } catch {
      /* it may already have stepped down */
    }
    net.tick(3, five.filter((x) => net.node(x).alive));
    expect(net.status(l).commitIndex).toBe(commit);
    net.restart(f1);
    net.restart(f2);
    net.restart(f3);
    net.tick(40);
    const l2 = net.leader()!;
    for (const id of five) expect(net.appliedData(id)).toEqual(net.appliedData(l2));
    expect(net.appliedData(l2)[0]).toBe('one-down');
  });

  it('concurrent proposals on every node all commit once, in one order everywhere', () => {
    const net = new TestNetwork(five, { seed: 13 });
    net.elect();
    for (let i = 0; i < 20; i++) for (const id of five) net.core(id).propose(cmd(`${id}-${i}`));
    net.tick(3);
    const ref = net.appliedData(net.leader()!);
    expect(ref.length).toBe(100);
    expect(new Set(ref).size).toBe(100);
    for (const id of five) expect(net.appliedData(id)).toEqual(ref);
  });

  it('a partitioned leader that accepted writes rejoins: its uncommitted writes are discarded', () => {
    const net = new TestNetwork(five, { seed: 17, options: { checkQuorum: false } });
    const l1 = net.elect();
    const mate = five.find((x) => x !== l1)!;
    net.partition([l1, mate], five.filter((x) => x !== l1 && x !== mate));
    for (let i = 0; i < 5; i++) net.core(l1).propose(cmd(`lost-${i}`));
    net.stabilize();
    const majority = five.filter((x) => x !== l1 && x !== mate);
    net.tickUntil(() => majority.some((x) => net.status(x).role === 'leader'));
    const l2 = majority.find((x) => net.status(x).role === 'leader')!;
    net.propose(l2, 'kept');
    net.heal();
    net.tick(10);
    for (const id of five) {
      expect(net.appliedData(id)).toEqual(['kept']);
      expect(net.terms(id)).toEqual(net.terms(l2));
    }
  });

  it('persistence across full restarts: every node crashes and restarts, nothing committed is lost', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { seed: 31 });
    const l = net.elect();
    for (let i = 0; i < 10; i++) net.propose(l, `w${i}`);
    net.tick(1);
    for (const id of ['a', 'b', 'c']) net.crash(id);
    for (const id of ['a', 'b', 'c']) net.restart(id);
    const l2 = net.elect();
    net.propose(l2, 'after-restart');
    net.tick(1);
    const expected = [...Array.from({ length: 10 }, (_, i) => `w${i}`), 'after-restart'];
    for (const id of ['a', 'b', 'c']) expect(net.appliedData(id)).toEqual(expected);
  });

  it('snapshot install after a disconnection and a crash', () => {
    const net = new TestNetwork(['a', 'b', 'c'], { seed: 41, options: { trailingEntries: 2, snapshotChunkBytes: 100 } });
    const l = net.elect();
    const f = ['a', 'b', 'c'].find((x) => x !== l)!;
    net.isolate(f);
    for (let i = 0; i < 30; i++) net.core(l).propose(cmd(`s${i}`));
    net.stabilize();
    net.tick(1);
    for (const id of ['a', 'b', 'c'].filter((x) => x !== f)) net.core(id).compact(net.status(id).appliedIndex, net.snapshotData(net.node(id)));
    net.crash(f);
    net.heal();
    net.restart(f);
    net.tick(10);
    expect(net.status(f).snapshotIndex).toBeGreaterThan(0);
    expect(net.appliedData(f)).toEqual(net.appliedData(l));
    net.crash(f);
    net.restart(f);
    net.tick(2);
    expect(net.appliedData(f)).toEqual(net.appliedData(l));
  });

  it('unreliable network (drops and reordering): the cluster still agrees and makes progress', () => {
    const net = new TestNetwork(five, { seed: 77 });
    const rng = createRandom(7);
    net.addRule(() => rng.next() < 0.1);
    net.elect(1000);
    let proposed = 0;
    for (let round = 0; round < 40; round++) {
      const l = net.leader();
      if (l) {
        try {
          net.core(l).propose(cmd(`u${proposed}`));
          proposed++;
        } catch {
          /* refused */
        }
      }
      net.shuffle();
      net.tick(1);
    }
    net.heal();
    net.tick(20);
    const ref = net.appliedData(net.leader()!);
    expect(ref.length).toBeGreaterThan(proposed / 2);
    for (const id of five) expect(net.appliedData(id)).toEqual(ref);
  });
});
