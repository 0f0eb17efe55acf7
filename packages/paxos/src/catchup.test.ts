/**
 * Learning and catching up (PMMC §3 "learners"; SCENARIOS Multi-Paxos): lagging replicas catch
 * up from entries or a chunked snapshot, compaction, failed storage writes, lost messages of
 * every type, invalid input.
 */
import { EntryType, InvalidArgumentError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { messageTypeName, PaxosMessageType as T, type PaxosMessage, type SnapshotMessage } from './messages.js';
import { Cluster, isType } from './test/cluster.js';

const opts = { electionTicks: 6 };

describe('catch-up and snapshots', () => {
  it('a lagging replica catches up from entries', () => {
    const c = new Cluster({ options: opts, seed: 40 });
    const l = c.waitLeader();
    const lag = c.ids.find((id) => id !== l)!;
    c.isolate(lag);
    for (let i = 0; i < 30; i++) c.propose(l, `e${i}`);
    c.run(3);
    expect(c.commands(lag)).toEqual([]);
    c.heal();
    c.waitApplied('e29', [lag]);
    expect(c.commands(lag)).toEqual(c.commands(l));
  });

  it('a replica behind the compaction point catches up by snapshot, then by entries', () => {
    const c = new Cluster({ options: opts, seed: 41 });
    const l = c.waitLeader();
    const lag = c.ids.find((id) => id !== l)!;
    c.isolate(lag);
    for (let i = 0; i < 20; i++) c.propose(l, `s${i}`);
    c.run(3);
    c.compact(l);
    const snapIndex = c.core(l).status().snapshotIndex;
    expect(snapIndex).toBeGreaterThan(20);
    for (let i = 20; i < 25; i++) c.propose(l, `s${i}`); // the suffix past the snapshot
    c.recordSent = true;
    c.heal();
    c.waitApplied('s24', [lag]);
    expect(c.sent.filter(isType(T.Snapshot, l, lag)).length).toBeGreaterThan(0);
    expect(c.core(lag).status().snapshotIndex).toBe(snapIndex);
    expect(c.node(lag).storage.load().snapshot?.meta.index).toBe(snapIndex);
    expect(c.commands(lag)).toEqual(c.commands(l));
  });

  it('snapshots travel in chunks; a lost chunk is resent and the transfer resumes', () => {
    const c = new Cluster({ options: { ...opts, snapshotChunkBytes: 16 }, seed: 42 });
    const l = c.waitLeader();
    const lag = c.ids.find((id) => id !== l)!;
    c.isolate(lag);
    for (let i = 0; i < 10; i++) c.propose(l, `chunky-value-${i}`);
    c.run(3);
    c.compact(l);
    c.heal();
    c.recordSent = true;
    // Lose the third chunk once.
    let seen = 0;
    let lost = false;
    for (let t = 0; t < 200 && !c.commands(lag).includes('chunky-value-9'); t++) {
      c.tick();
      while (c.queue.length > 0) {
        const m = c.queue.shift()!;
        if (m.type === T.Snapshot && m.to === lag && ++seen === 3 && !lost) {
          lost = true;
          continue;
        }
        c.deliverMessage(m);
      }
    }
    expect(lost).toBe(true);
    const chunks = c.sent.filter(isType(T.Snapshot, l, lag)) as SnapshotMessage[];
    const total = chunks[0]!.total;
    expect(chunks.length).toBeGreaterThan(Math.ceil(total / 16)); // one resent
    expect(chunks.every((m) => m.data.length <= 16)).toBe(true);
    expect(c.commands(lag)).toEqual(c.commands(l));
  });

  it('installing a snapshot keeps accepted slots above it and a restart never goes backwards', () => {
    const c = new Cluster({ options: opts, seed: 43 });
    const l = c.waitLeader();
    const lag = c.ids.find((id) => id !== l)!;
    c.isolate(lag);
    for (let i = 0; i < 8; i++) c.propose(l, `k${i}`);
    c.run(3);
    c.compact(l);
    c.heal();
    c.waitApplied('k7', [lag]);
    const st = c.core(lag).status();
    c.reboot(lag);
    const st2 = c.core(lag).status();
    expect(st2.snapshotIndex).toBe(st.snapshotIndex);
    expect(st2.commitIndex).toBeGreaterThanOrEqual(st.commitIndex);
    expect(c.commands(lag)).toEqual(c.commands(l));
  });

  it('compaction above the chosen watermark is refused; compaction twice is idempotent', () => {
    const c = new Cluster({ options: opts, seed: 44 });
    const l = c.waitLeader();
    for (let i = 0; i < 5; i++) c.propose(l, `c${i}`);
    c.waitApplied('c4');
    const st = c.core(l).status();
    expect(() => c.core(l).compact(st.commitIndex + 1, new Uint8Array(1))).toThrow(InvalidArgumentError);
    expect(() => c.core(l).compact(-1, new Uint8Array(1))).toThrow(InvalidArgumentError);
    expect(c.core(l).hasReady()).toBe(false);
    c.compact(l, st.appliedIndex - 1);
    const persists = c.node(l).persists;
    expect(c.core(l).status().snapshotIndex).toBe(st.appliedIndex - 1);
    c.core(l).compact(st.appliedIndex - 1, new Uint8Array(1)); // again: nothing to do
    c.core(l).compact(2, new Uint8Array(1)); // below: nothing to do
    expect(c.core(l).hasReady()).toBe(false);
    expect(c.node(l).persists).toBe(persists);
    expect(c.core(l).status().snapshotIndex).toBe(st.appliedIndex - 1);
  });

  it('a restart re-emits committed but unapplied slots, in order', () => {
    const c = new Cluster({ options: opts, seed: 45 });
    const l = c.waitLeader();
    for (let i = 0; i < 5; i++) c.propose(l, `r${i}`);
    c.waitApplied('r4');
    c.compact(l, 3);
    c.reboot(l);
    // The state machine came back from the snapshot (3 slots); the rest is re-applied.
    expect(c.commands(l)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
  });
});

describe('storage failures and lost messages', () => {
  it('a failed storage write sends no reply and leaves no partial state', () => {
    const c = new Cluster({ options: opts, seed: 50 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    const before = c.node(f).storage.load();
    c.node(f).failNextPersist = true;
    c.propose(l, 'w');
    c.deliverWhere(isType(T.Accept, l, f));
    expect(c.isUp(f)).toBe(false); // fail-stop
    expect(c.queue.some(isType(T.Accepted, f))).toBe(false);
    expect(c.node(f).storage.load()).toEqual(before);
    c.restart(f);
    c.waitApplied('w');
  });

  it('a leader whose write fails sends none of that Ready', () => {
    const c = new Cluster({ options: opts, seed: 51 });
    const l = c.waitLeader();
    c.node(l).failNextPersist = true;
    const queued = c.queue.length;
    c.propose(l, 'never');
    expect(c.isUp(l)).toBe(false);
    expect(c.queue.length).toBe(queued);
    c.waitLeader();
    c.restart(l);
    c.run(20);
    for (const id of c.ids) expect(c.commands(id)).not.toContain('never');
  });

  const types = [T.Prepare, T.Promise, T.Accept, T.Accepted, T.Forward, T.Snapshot, T.SnapshotAck, T.Nack];
  for (const type of types) {
    it(`dropping the first ${messageTypeName(type)} message: the protocol resends and makes progress`, () => {
      const c = new Cluster({ options: { ...opts, snapshotChunkBytes: 8 }, seed: 60 + type });
      let dropped = false;
      const deliverDroppingOnce = () => {
        while (c.queue.length > 0) {
          const m = c.queue.shift()!;
          if (!dropped && m.type === type) {
            dropped = true;
            continue;
          }
          c.deliverMessage(m);
        }
      };
      const step = (n: number) => {
        for (let i = 0; i < n; i++) {
          c.tick();
          deliverDroppingOnce();
        }
      };
      let l: string | null = null;
      for (let t = 0; t < 300 && !l; t++) {
        step(1);
        l = c.leader();
      }
      expect(l).not.toBeNull();
      for (let t = 0; t < 50 && !c.ids.every((id) => c.core(id).status().leader === l); t++) step(1);
      const f = c.ids.find((id) => id !== l)!;
      // Make every kind of message flow: a forwarded proposal, a lagging follower's snapshot,
      // and a stale leader's Nack.
      c.isolate(f);
      c.propose(f, 'from-follower'); // buffered for forwarding
      for (let i = 0; i < 5; i++) c.propose(l!, `d${i}`);
      step(3);
      c.compact(l!);
      c.heal();
      step(1);
      c.propose(f, 'forwarded');
      step(5);
      c.core(f).step({ type: T.Accept, from: 'n9', to: f, round: 0, commit: 0, seq: 0, entries: [] }); // a Nack back to n9
      c.process(f);
      c.drop((m) => m.to === 'n9');
      for (let t = 0; t < 300 && !c.ids.every((id) => c.commands(id).includes('forwarded') && c.commands(id).includes('d4')); t++) step(1);
      for (const id of c.ids) {
        expect(c.commands(id)).toContain('d4');
        expect(c.commands(id)).toContain('forwarded');
      }
      if (type !== T.Nack) expect(dropped).toBe(true);
      c.checkPrefixes();
    });
  }

  it('dropping the first ReadIndex and the first ReadIndexResponse: a follower read is asked again and answered', () => {
    for (const type of [T.ReadIndex, T.ReadIndexResponse]) {
      const c = new Cluster({ options: opts, seed: 75 + type });
      const l = c.waitLeader();
      const f = c.ids.find((id) => id !== l)!;
      c.propose(l, 'a');
      c.waitApplied('a');
      c.core(f).read(7, 'linearizable');
      c.process(f);
      let dropped = false;
      for (let t = 0; t < 20 && !c.node(f).reads.some((r) => r.id === 7); t++) {
        c.tick();
        while (c.queue.length > 0) {
          const m = c.queue.shift()!;
          if (!dropped && m.type === type) {
            dropped = true;
            continue;
          }
          c.deliverMessage(m);
        }
      }
      expect(dropped).toBe(true);
      expect(c.node(f).reads.find((r) => r.id === 7)?.index).toBeGreaterThanOrEqual(2);
    }
  });

  it('dropping the first TimeoutNow: the leader repeats it and the transfer completes', () => {
    const c = new Cluster({ options: opts, seed: 77 });
    const l = c.waitLeader();
    const to = c.ids.find((id) => id !== l)!;
    c.core(l).transferLeadership(to);
    c.process(l);
    expect(c.drop(isType(T.TimeoutNow))).toBe(1);
    c.runUntil(() => c.leader() === to, 5);
  });

  it('invalid messages are dropped and counted, never thrown', () => {
    const c = new Cluster({ options: opts, seed: 70 });
    const l = c.waitLeader();
    const f = c.ids.find((id) => id !== l)!;
    const core = c.core(f);
    const before = core.status();
    const bad: unknown[] = [
      null,
      42,
      { type: 99, from: l, to: f },
      { type: T.Accept, from: l, to: 'someone-else', round: 1, commit: 0, seq: 0, entries: [] },
      { type: T.Accept, from: l, to: f, round: -1, commit: 0, seq: 0, entries: [] },
      { type: T.Accept, from: l, to: f, round: 1.5, commit: 0, seq: 0, entries: [] },
      { type: T.Accept, from: l, to: f, round: 1, commit: 0, seq: 0, entries: [{ index: 3, type: 0, data: 'x' }] },
      { type: T.Accept, from: l, to: f, round: 1, commit: 0, seq: 0, entries: [{ index: 3, type: 0, data: new Uint8Array() }, { index: 3, type: 0, data: new Uint8Array() }] },
      { type: T.Accept, from: l, to: f, round: 99, commit: 0, seq: 0, entries: [{ index: 9, type: EntryType.Config, data: new Uint8Array([255, 255]) }] },
      { type: T.Prepare, from: 'has space', to: f, round: 1, commit: 0, force: false, transferRound: 0, transferOwner: null },
      { type: T.Promise, from: l, to: f, round: 1, commit: 0 },
      { type: T.Snapshot, from: l, to: f, round: 1, meta: { index: 1, term: 1, config: { voters: [], learners: [] } }, offset: 0, total: 1, data: new Uint8Array(1) },
      { type: T.Accepted, from: l, to: f, round: 1, match: 0, last: 0, seq: 0 }, // not a leader: stale
      { type: T.ReadIndexResponse, from: l, to: f, ctx: 5, ok: true, index: 1 }, // unknown ctx
      { type: T.Accept, from: f, to: f, round: 99, commit: 0, seq: 0, entries: [] }, // from itself
    ];
    for (const m of bad) expect(() => core.step(m as PaxosMessage)).not.toThrow();
    c.process(f);
    const after = core.status();
    expect(after.droppedMessages - before.droppedMessages).toBe(bad.length);
    expect(after.term).toBe(before.term);
    expect(after.lastIndex).toBe(before.lastIndex);
    c.propose(l, 'still-fine');
    c.waitApplied('still-fine');
  });
});
