/** Snapshots and log compaction (Raft §7, thesis ch. 5). */
import { InvalidArgumentError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { type InstallSnapshotRequest, type RaftMessage, RaftMessageType } from './messages.js';
import { cmd, logOf, progressOf, TestNetwork } from './test/network.js';

const ids = ['a', 'b', 'c'];
const isChunk = (m: RaftMessage): m is InstallSnapshotRequest => m.type === RaftMessageType.InstallSnapshot;

/** Elects a leader, writes `n` commands with `lagger` cut off, then compacts the leader's log. */
function lagBehindSnapshot(n: number, options = {}) {
  const net = new TestNetwork(ids, { options: { trailingEntries: 5, snapshotChunkBytes: 64, ...options }, seed: 3 });
  const l = net.elect();
  const lagger = ids.find((x) => x !== l)!;
  net.isolate(lagger);
  for (let i = 0; i < n; i++) net.core(l).propose(cmd(`cmd-${i}`));
  net.stabilize();
  net.tick(1);
  const applied = net.status(l).appliedIndex;
  net.core(l).compact(applied, net.snapshotData(net.node(l)));
  net.drainAll();
  return { net, l, lagger, applied };
}

describe('§7 snapshots', () => {
  it('compact() records a snapshot, keeps trailingEntries below it, and persists both', () => {
    const { net, l, applied } = lagBehindSnapshot(30);
    const st = net.status(l);
    expect(st.snapshotIndex).toBe(applied);
    expect(logOf(net.core(l)).offset).toBe(applied - 5);
    const stored = net.node(l).storage.load();
    expect(stored.snapshot!.meta.index).toBe(applied);
    expect(stored.snapshot!.meta.config.voters).toEqual(['a', 'b', 'c']);
    expect(stored.entries[0]!.index).toBe(applied - 4);
  });

  it('compact() refuses an index above the applied index and is idempotent', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    net.propose(l, 'x');
    const applied = net.status(l).appliedIndex;
    expect(() => net.core(l).compact(applied + 1, new Uint8Array(1))).toThrow(InvalidArgumentError);
    expect(() => net.core(l).compact(-1, new Uint8Array(1))).toThrow(InvalidArgumentError);
    net.core(l).compact(applied, new Uint8Array([1]));
    net.drainAll();
    net.core(l).compact(applied, new Uint8Array([2])); // same index again: nothing to do
    expect(net.core(l).hasReady()).toBe(false);
    expect(net.status(l).snapshotIndex).toBe(applied);
  });

  it('a follower behind the compaction point catches up from a chunked snapshot, then from entries', () => {
    const { net, l, lagger } = lagBehindSnapshot(40);
    net.heal();
    let chunks = 0;
    net.addRule((m) => {
      if (isChunk(m)) chunks++;
      return false;
    });
    net.tick(3);
    net.propose(l, 'after-snapshot');
    net.tick(1);
    expect(chunks).toBeGreaterThan(3); // data > 64 bytes per chunk
    expect(net.status(lagger).snapshotIndex).toBeGreaterThan(0);
    expect(net.appliedData(lagger)).toEqual(net.appliedData(l));
    expect(net.appliedData(lagger).at(-1)).toBe('after-snapshot');
    expect(progressOf(net.core(l), lagger)!.state).toBe('replicate');
  });

  it('a lost snapshot chunk is retransmitted and the transfer completes', () => {
    const { net, l, lagger } = lagBehindSnapshot(40);
    net.heal();
    let dropped = 0;
    net.addRule((m) => {
      if (isChunk(m) && m.offset === 128 && dropped < 2) {
        dropped++;
        return true;
      }
      return false;
    });
    net.tick(20);
    expect(dropped).toBe(2);
    expect(net.appliedData(lagger)).toEqual(net.appliedData(l));
  });

  it('installing a snapshot discards a conflicting log suffix', () => {
    const net = new TestNetwork(ids, { options: { trailingEntries: 0, preVote: false } });
    // c holds uncommitted entries of an old term that the leader never had.
    net.setLog('c', [1, 2, 2, 2, 2, 2], 2);
    net.isolate('c');
    net.campaign('a');
    for (let i = 0; i < 10; i++) net.core('a').propose(cmd(`n${i}`));
    net.stabilize();
    net.core('a').compact(net.status('a').appliedIndex, net.snapshotData(net.node('a')));
    net.drainAll();
    const truncs: (number | null | undefined)[] = [];
    net.node('c').onPersist = (b) => truncs.push(b.truncateFrom);
    net.heal();
    net.tick(3);
    expect(net.status('c').snapshotIndex).toBe(net.status('a').snapshotIndex);
    expect(net.terms('c')).toEqual(net.terms('a'));
    expect(truncs.some((t) => t !== null && t !== undefined)).toBe(true);
    const stored = net.node('c').storage.load();
    expect(stored.entries.every((e) => e.index > stored.snapshot!.meta.index)).toBe(true);
    expect(stored.entries.some((e) => e.term === 2)).toBe(false);
    expect(net.appliedData('c')).toEqual(net.appliedData('a'));
  });

  it('a snapshot the follower already covers is answered with its commit and not installed', () => {
    const net = new TestNetwork(ids);
    const l = net.elect();
    net.propose(l, 'x');
    net.tick(1);
    const f = ids.find((x) => x !== l)!;
    const commit = net.status(f).commitIndex;
    net.queue = [];
    net.deliver({
      type: RaftMessageType.InstallSnapshot,
      from: l,
      to: f,
      term: net.status(l).term,
      meta: { index: 1, term: 1, config: { voters: ids, learners: [] } },
      size: 1,
      offset: 0,
      data: new Uint8Array([0]),
    });
    expect(net.queue).toMatchObject([{ type: RaftMessageType.AppendResponse, success: true, index: commit }]);
    expect(net.status(f).snapshotIndex).toBe(0);
  });

  it('a restart never moves a node backwards (snapshot, commit and applied state survive)', () => {
    const { net, l, lagger } = lagBehindSnapshot(30);
    net.heal();
    net.tick(3);
    const before = net.status(lagger);
    const appliedBefore = net.appliedData(lagger);
    net.crash(lagger);
    net.restart(lagger);
    const after = net.status(lagger);
    expect(after.snapshotIndex).toBe(before.snapshotIndex);
    expect(after.commitIndex).toBeGreaterThanOrEqual(before.snapshotIndex);
    expect(after.lastIndex).toBe(before.lastIndex);
    net.tick(2);
    expect(net.appliedData(lagger)).toEqual(appliedBefore);
    expect(net.status(lagger).commitIndex).toBeGreaterThanOrEqual(before.commitIndex);
    // The leader restarting from its own snapshot is not set back either.
    const lb = net.status(l);
    net.crash(l);
    net.restart(l);
    expect(net.status(l).snapshotIndex).toBe(lb.snapshotIndex);
    expect(net.status(l).appliedIndex).toBe(lb.snapshotIndex);
    expect(net.status(l).lastIndex).toBe(lb.lastIndex);
  });

  it('a newer snapshot taken during a transfer replaces the one being sent', () => {
    const { net, l, lagger } = lagBehindSnapshot(40);
    net.heal();
    // Deliver only the first chunk, then take a newer snapshot on the leader.
    net.tick(1, undefined, false);
    net.deliverQueued((m) => isChunk(m));
    net.dropQueued();
    for (let i = 0; i < 10; i++) net.core(l).propose(cmd(`more-${i}`));
    net.isolate(lagger);
    net.stabilize();
    net.tick(1, ids.filter((x) => x !== lagger));
    net.core(l).compact(net.status(l).appliedIndex, net.snapshotData(net.node(l)));
    net.drainAll();
    net.heal();
    net.tick(20);
    expect(net.status(lagger).snapshotIndex).toBe(net.status(l).snapshotIndex);
    expect(net.appliedData(lagger)).toEqual(net.appliedData(l));
  });

  it('a snapshot smaller than snapshotChunkBytes travels in a single InstallSnapshot', () => {
    const { net, l, lagger } = lagBehindSnapshot(10, { snapshotChunkBytes: 1 << 20 });
    void l;
    net.heal();
    let chunks = 0;
    net.addRule((m) => {
      if (isChunk(m)) chunks++;
      return false;
    });
    net.tick(3);
    expect(chunks).toBe(1);
    expect(net.appliedData(lagger)).toEqual(net.appliedData(l));
  });
});
