/** Reads: ReadIndex (thesis §6.4) and leader leases (thesis §6.4.1). */
import { LeaseExpiredError, NotLeaderError, UnsupportedError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { RaftMessageType } from './messages.js';
import { leaseTicksOf, resolveRaftOptions } from './options.js';
import { TestNetwork } from './test/network.js';

const ids = ['a', 'b', 'c'];
const others = (l: string) => ids.filter((x) => x !== l);

describe('thesis §6.4 ReadIndex', () => {
  it('a leader answers a linearizable read with its commit index after one heartbeat round', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    net.propose(l, 'x');
    const commit = net.status(l).commitIndex;
    net.delivered.clear();
    net.core(l).read(1, 'linearizable');
    net.drainAll();
    expect(net.node(l).reads).toEqual([]); // not before a quorum confirmed leadership
    net.stabilize();
    expect(net.node(l).reads).toEqual([{ id: 1, index: commit }]);
    expect(net.delivered.get(RaftMessageType.Heartbeat)).toBe(2);
  });

  it('reads made together share one heartbeat round', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    net.delivered.clear();
    for (let i = 1; i <= 10; i++) net.core(l).read(i, 'linearizable');
    net.stabilize();
    expect(net.node(l).reads.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(net.delivered.get(RaftMessageType.Heartbeat)).toBe(2);
  });

  it('a new leader serves reads only after committing an entry of its own term', () => {
    const net = new TestNetwork(ids, { options: { preVote: false } });
    const stop = net.addRule((m) => m.type === RaftMessageType.AppendResponse);
    net.campaign('a');
    expect(net.status('a').role).toBe('leader');
    net.core('a').read(7, 'linearizable');
    net.tick(3);
    expect(net.node('a').reads).toEqual([]); // its no-op is not committed yet
    stop();
    net.tick(2);
    const st = net.status('a');
    expect(net.node('a').reads).toEqual([{ id: 7, index: st.commitIndex }]);
    expect(st.commitIndex).toBeGreaterThanOrEqual(2); // includes the no-op of its term
  });

  it('a follower read gets the read index from the leader', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    const [f] = others(l) as [string];
    net.propose(l, 'x');
    net.core(f).read(3, 'linearizable');
    net.stabilize();
    expect(net.node(f).reads).toEqual([{ id: 3, index: net.status(l).commitIndex }]);
    expect(net.delivered.get(RaftMessageType.ReadIndex)).toBe(1);
  });

  it('a leader cut off from its quorum never answers a linearizable read; it fails when it steps down', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    net.isolate(l);
    net.core(l).read(5, 'linearizable');
    net.tick(5, [l]);
    expect(net.node(l).reads).toEqual([]);
    net.tick(10, [l]); // check-quorum deposes it
    expect(net.node(l).reads).toHaveLength(1);
    expect(net.node(l).reads[0]!.error).toBeInstanceOf(NotLeaderError);
  });

  it('a deposed leader in a minority cannot serve a stale read after the majority moved on', () => {
    const net = new TestNetwork(['a', 'b', 'c', 'd', 'e'], { options: { checkQuorum: false } });
    const l = net.elect();
    const rest = ['a', 'b', 'c', 'd', 'e'].filter((x) => x !== l);
    net.partition([l, rest[0]!], rest.slice(1));
    net.tickUntil(() => rest.slice(1).some((x) => net.status(x).role === 'leader'));
    const l2 = rest.slice(1).find((x) => net.status(x).role === 'leader')!;
    net.propose(l2, 'new-write');
    net.core(l).read(9, 'linearizable');
    net.tick(30, [l, rest[0]!]);
    expect(net.node(l).reads).toEqual([]); // no quorum, no answer (the write would be missing)
  });

  it('a read on a node that knows no leader fails with NotLeaderError(null)', () => {
    const net = new TestNetwork(ids);
    net.core('a').read(1, 'linearizable');
    net.drainAll();
    expect(net.node('a').reads).toHaveLength(1);
    expect(net.node('a').reads[0]!.error).toBeInstanceOf(NotLeaderError);
    expect((net.node('a').reads[0]!.error as NotLeaderError).leaderHint).toBeNull();
  });

  it('an answer delayed across a follower restart cannot answer a new read with the same id', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    const [f] = others(l) as [string];
    net.core(f).read(1, 'linearizable');
    net.stabilize();
    const old = net.node(f).reads[0]!;
    expect(old.index).toBeGreaterThan(0);
    const oldAnswer = { type: RaftMessageType.ReadIndexResponse, from: l, to: f, term: net.status(l).term, ids: [1], status: 0, index: 1, leaderHint: l, nonce: 0 } as const;
    // Capture a real answer's nonce, then restart f and reuse read id 1.
    net.core(f).read(2, 'linearizable');
    net.drainAll();
    const req = net.queue.find((m) => m.type === RaftMessageType.ReadIndex)!;
    net.queue = [];
    net.crash(f);
    net.restart(f);
    net.node(f).reads = [];
    net.tick(1);
    net.core(f).read(1, 'linearizable');
    const dropped = net.status(f).droppedMessages;
    net.deliver({ ...oldAnswer, nonce: (req as { nonce: number }).nonce });
    expect(net.status(f).droppedMessages).toBe(dropped + 1);
    expect(net.node(f).reads).toEqual([]);
    net.stabilize();
    expect(net.node(f).reads).toEqual([{ id: 1, index: net.status(l).commitIndex }]);
  });

  it('a forwarded read fails fast when the follower sees the leader change', () => {
    const net = new TestNetwork(ids, { options: { preVote: false } });
    const l = net.elect();
    const [f] = others(l) as [string];
    net.cutLink(f, l);
    net.core(f).read(4, 'linearizable');
    net.stabilize();
    expect(net.node(f).reads).toEqual([]);
    net.deliver({ type: RaftMessageType.Heartbeat, from: others(l)[1]!, to: f, term: net.status(f).term + 1, commit: 0, seq: 1 });
    expect(net.node(f).reads[0]!.error).toBeInstanceOf(NotLeaderError);
  });
});

describe('thesis §6.4.1 leader lease', () => {
  const lease = { leaseRead: true };

  it('a lease read is served at once, without a heartbeat round, while the lease holds', () => {
    const net = new TestNetwork(ids, { options: lease });
    const l = net.elect();
    net.tick(1);
    net.delivered.clear();
    net.core(l).read(1, 'lease');
    net.drainAll();
    expect(net.node(l).reads).toEqual([{ id: 1, index: net.status(l).commitIndex }]);
    expect(net.queue.filter((m) => m.type === RaftMessageType.Heartbeat)).toEqual([]);
  });

  it('a lease read is refused with LeaseExpiredError once the lease may have expired', () => {
    const opts = resolveRaftOptions(lease);
    const net = new TestNetwork(ids, { options: lease });
    const l = net.elect();
    net.tick(1);
    net.isolate(l);
    let served = 0;
    let ticks = 0;
    for (;;) {
      net.node(l).reads = [];
      net.core(l).read(100 + ticks, 'lease');
      net.drainAll();
      const r = net.node(l).reads[0]!;
      if (r.error) {
        expect(r.error).toBeInstanceOf(LeaseExpiredError);
        break;
      }
      served++;
      net.tick(1, [l]);
      ticks++;
    }
    expect(served).toBeGreaterThan(0);
    expect(ticks).toBeLessThanOrEqual(leaseTicksOf(opts));
    // And the lease ends before any other node may be elected (electionTicks after last contact).
    expect(ticks).toBeLessThan(opts.electionTicks);
  });

  it('no new leader can be elected while the old leader still serves lease reads', () => {
    const net = new TestNetwork(ids, { options: lease, seed: 12 });
    const l = net.elect();
    net.tick(2);
    net.isolate(l);
    let leaseEnd = -1;
    let newLeaderAt = -1;
    for (let t = 0; t < 100 && newLeaderAt < 0; t++) {
      net.node(l).reads = [];
      net.core(l).read(t + 1, 'lease');
      net.drainAll();
      if (!net.node(l).reads[0]?.error) leaseEnd = t;
      net.tick(1);
      if (others(l).some((x) => net.status(x).role === 'leader')) newLeaderAt = t;
    }
    expect(newLeaderAt).toBeGreaterThan(leaseEnd);
  });

  it('a new leader refuses lease reads until it has committed an entry of its term', () => {
    const net = new TestNetwork(ids, { options: lease });
    const l = net.elect();
    net.crash(l);
    net.addRule((m) => m.type === RaftMessageType.AppendResponse);
    net.tickUntil(() => others(l).some((x) => net.status(x).role === 'leader'));
    const l2 = others(l).find((x) => net.status(x).role === 'leader')!;
    net.tick(1);
    net.core(l2).read(1, 'lease');
    net.drainAll();
    expect(net.node(l2).reads[0]!.error).toBeInstanceOf(LeaseExpiredError);
  });

  it('a follower lease read asks the leader, which answers from its lease', () => {
    const net = new TestNetwork(ids, { options: lease });
    const l = net.elect();
    net.tick(1);
    const [f] = others(l) as [string];
    net.delivered.clear();
    net.core(f).read(2, 'lease');
    net.stabilize();
    expect(net.node(f).reads).toEqual([{ id: 2, index: net.status(l).commitIndex }]);
    expect(net.delivered.get(RaftMessageType.Heartbeat) ?? 0).toBe(0);
  });

  it('lease reads are disabled by default: read(…, "lease") throws UnsupportedError', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    expect(() => net.core(l).read(1, 'lease')).toThrow(UnsupportedError);
  });

  it('a leader transferring leadership stops serving lease reads', () => {
    const net = new TestNetwork(ids, { options: lease });
    const l = net.elect();
    net.tick(1);
    const [f] = others(l) as [string];
    net.cutLink(l, f); // the transfer cannot complete
    net.core(l).transferLeadership(f);
    net.core(l).read(1, 'lease');
    net.drainAll();
    expect(net.node(l).reads[0]!.error).toBeInstanceOf(LeaseExpiredError);
  });

  it('after sending TimeoutNow a leader serves no lease read for the rest of its term (a delayed TimeoutNow may still elect the target)', () => {
    const net = new TestNetwork(ids, { options: lease });
    const l = net.elect();
    net.tick(1);
    const [f] = others(l) as [string];
    net.core(l).transferLeadership(f);
    const held = net.hold((m) => m.type === RaftMessageType.TimeoutNow);
    expect(held).toHaveLength(1);
    const dropRepeats = net.addRule((m) => m.type === RaftMessageType.TimeoutNow); // and its repeats
    net.tick(12); // the transfer aborts; l keeps leading
    dropRepeats();
    expect(net.status(l)).toMatchObject({ role: 'leader', transferring: false });
    net.core(l).read(2, 'lease');
    net.drainAll();
    expect(net.node(l).reads[0]!.error).toBeInstanceOf(LeaseExpiredError);
    net.core(l).read(3, 'linearizable'); // ReadIndex still works
    net.stabilize();
    expect(net.node(l).reads[1]).toMatchObject({ id: 3 });
    // The delayed TimeoutNow arrives: f takes over despite the voters' stickiness.
    net.release();
    net.stabilize();
    expect(net.leader()).toBe(f);
  });
});
