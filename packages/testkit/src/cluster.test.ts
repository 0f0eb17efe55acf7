/**
 * Cluster-level scenarios (the classic ones of etcd/raft and hashicorp/raft, in the style of the
 * MIT 6.824 3A/3B/3C tests) for both protocols: whole ReplicatedLog replicas over @synod/transport-memory on virtual
 * time, invariants checked after every event, and at the end identical logs and state machines
 * with every acknowledged write present.
 */
import { toText } from '@synod/kv';
import type { NodeId } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { type ProtocolName, SimCluster } from './cluster.js';
import { HistoryRecorder } from './history.js';
import { type KvInput, type KvOutput, kvModel } from './kv-model.js';
import { checkLinearizability } from './linearizability.js';

async function started(protocol: ProtocolName, nodes: number, seed: number, extra: Partial<ConstructorParameters<typeof SimCluster>[0]> = {}) {
  const c = new SimCluster({ protocol, nodes, seed, ...extra });
  await c.start();
  const leader = await c.waitForLeader(3_000);
  expect(leader, `no leader: ${c.describe()}`).toBeDefined();
  return c;
}

/** Puts through `via` (default: the current leader) and runs until it settles. */
async function put(c: SimCluster, key: string, value: string, via?: NodeId, timeoutMs = 1_000) {
  const id = via ?? c.leader()?.id ?? c.ids()[0]!;
  return c.settle(c.client(id).put(key, value, { timeoutMs }), timeoutMs + 500);
}

/** Every member's state machine holds `expected` (stale read = its own applied state). */
function expectState(c: SimCluster, expected: Record<string, string>) {
  for (const id of c.members()) {
    const sm = c.replica(id).sm;
    for (const [k, v] of Object.entries(expected)) {
      const r = sm.query({ type: 'get', key: k });
      expect(r.type === 'get' && r.value ? toText(r.value) : null, `${id} ${k}`).toBe(v);
    }
  }
}

async function convergeAndCheck(c: SimCluster) {
  const ok = await c.converge(20_000);
  expect(ok, `not converged: ${c.describe()}`).toBe(true);
  expect(c.finalCheck()).toBeNull();
  expect(c.violation).toBeNull();
}

describe.each(['raft', 'paxos'] as const)('%s cluster scenarios', (protocol) => {
  it('initial election: exactly one leader, every replica agrees on it', async () => {
    const c = await started(protocol, 5, 1);
    expect(c.checker.leaderships).toBe(1);
    await c.runFor(500);
    const leaders = c.upReplicas().filter((r) => r.log.status().role === 'leader');
    expect(leaders).toHaveLength(1);
    for (const r of c.upReplicas()) expect(r.log.status().leader).toBe(leaders[0]!.id);
    expect(c.violation).toBeNull();
  });

  it('re-election after the leader is disconnected; the old leader rejoins as a follower', async () => {
    const c = await started(protocol, 5, 2);
    const old = c.leader()!.id;
    c.net.isolate(old);
    const ok = await c.runUntil(() => {
      const l = c.leader();
      return l !== undefined && l.id !== old && l.log.status().term > c.replica(old).log.status().term;
    }, 5_000);
    expect(ok, c.describe()).toBe(true);
    expect((await put(c, 'a', '1')).ok).toBe(true);
    c.net.rejoin(old);
    await c.runUntil(() => c.replica(old).log.status().role !== 'leader', 5_000);
    expect(c.replica(old).log.status().role).not.toBe('leader');
    await convergeAndCheck(c);
    expectState(c, { a: '1' });
  });

  it('many elections with random disconnects (7 nodes) keep at most one leader per term', async () => {
    const c = await started(protocol, 7, 3);
    let value = 0;
    for (let round = 0; round < 8; round++) {
      const ids = c.ids();
      const cut = new Set<NodeId>();
      while (cut.size < 3) cut.add(ids[c.rng.int(0, ids.length - 1)]!);
      for (const id of cut) c.net.isolate(id);
      await c.runFor(300);
      // A majority is connected, so a write eventually commits.
      const r = await put(c, 'k', String(++value), undefined, 2_000);
      if (!r.ok) value--;
      c.net.heal();
      await c.runFor(100);
    }
    expect(c.checker.leaderships).toBeGreaterThan(1);
    await convergeAndCheck(c);
  });

  it('agreement with a follower down, and the follower catches up after restart', async () => {
    const c = await started(protocol, 5, 4);
    const follower = c.ids().find((id) => id !== c.leader()!.id)!;
    c.crash(follower);
    for (let i = 0; i < 10; i++) expect((await put(c, `k${i}`, `v${i}`)).ok).toBe(true);
    c.restart(follower);
    await convergeAndCheck(c);
    expectState(c, Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, `v${i}`])));
  });

  it('no agreement without a quorum; progress resumes once a quorum is back', async () => {
    const c = await started(protocol, 5, 5);
    const leader = c.leader()!.id;
    const others = c.ids().filter((id) => id !== leader);
    for (const id of others.slice(0, 3)) c.crash(id);
    const commitBefore = c.replica(leader).log.status().commitIndex;
    const r = await put(c, 'x', 'lost?', leader, 500);
    expect(r.ok).toBe(false);
    await c.runFor(500);
    expect(Math.max(...c.upReplicas().map((x) => x.log.status().commitIndex))).toBe(commitBefore);
    for (const id of others.slice(0, 3)) c.restart(id);
    await c.waitForLeader(5_000);
    expect((await put(c, 'y', '1', undefined, 2_000)).ok).toBe(true);
    await convergeAndCheck(c);
    expectState(c, { y: '1' });
  });

  it('concurrent proposals from every replica all commit once, in one order', async () => {
    const c = await started(protocol, 5, 6);
    await c.runFor(200); // followers learn the leader (else they refuse: no leader known)
    const ps = [];
    for (let i = 0; i < 25; i++) {
      const via = c.ids()[i % 5]!;
      ps.push(c.client(via).put(`c${i}`, `v${i}`, { timeoutMs: 3_000 }));
    }
    const all = await c.settle(Promise.all(ps), 5_000);
    expect(all.ok, String(!all.ok && all.error)).toBe(true);
    await convergeAndCheck(c);
    expectState(c, Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`c${i}`, `v${i}`])));
  });

  it('a partitioned leader rejoins; its uncommitted writes (over 50 divergent entries) are discarded', async () => {
    const c = await started(protocol, 5, 7);
    const old = c.leader()!.id;
    c.net.isolate(old);
    const stale = [];
    for (let i = 0; i < 60; i++) stale.push(c.client(old).put(`d${i}`, 'stale', { timeoutMs: 300 }).catch(() => 'failed'));
    await c.runUntil(() => c.leader() !== undefined && c.leader()!.id !== old, 5_000);
    for (let i = 0; i < 55; i++) expect((await put(c, `d${i}`, 'new')).ok).toBe(true);
    expect(await c.settle(Promise.all(stale), 2_000)).toMatchObject({ ok: true, value: Array(60).fill('failed') });
    c.net.rejoin(old);
    await convergeAndCheck(c);
    expectState(c, Object.fromEntries(Array.from({ length: 55 }, (_, i) => [`d${i}`, 'new'])));
    expect(c.replica(old).sm.query({ type: 'get', key: 'd59' })).toMatchObject({ value: null });
  });

  it('bounded message counts: an idle cluster sends a steady heartbeat load, no more', async () => {
    const c = await started(protocol, 5, 8);
    await c.runFor(200);
    const before = c.net.stats().sent;
    await c.runFor(1_000);
    const sent = c.net.stats().sent - before;
    // 100 ticks of 10 ms; heartbeats go leader → 4 followers and back at most every tick.
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThanOrEqual(100 * 4 * 2 * 1.5);
    expect(c.checker.leaderships).toBe(1);
  });

  it('persistence across a full restart of every replica', async () => {
    const c = await started(protocol, 3, 9);
    for (let i = 0; i < 5; i++) expect((await put(c, `p${i}`, `v${i}`)).ok).toBe(true);
    for (const id of c.ids()) c.crash(id);
    await c.runFor(100);
    for (const id of c.ids()) c.restart(id);
    await c.waitForLeader(5_000);
    const after = await put(c, 'after', 'restart', undefined, 2_000);
    expect(after.ok, `${String(!after.ok && after.error)} ${c.describe()}`).toBe(true);
    await convergeAndCheck(c);
    expectState(c, { p0: 'v0', p4: 'v4', after: 'restart' });
  });

  it('unreliable network (drop, duplicate, reorder, delay): acknowledged writes survive', async () => {
    const c = await started(protocol, 5, 10);
    c.net.setFaults({ dropRate: 0.2, duplicateRate: 0.1, reorderRate: 0.3, reorderMaxMs: 20, minDelayMs: 1, maxDelayMs: 20 });
    const acked: Record<string, string> = {};
    for (let i = 0; i < 30; i++) {
      const r = await put(c, `u${i % 6}`, `v${i}`, undefined, 1_500);
      if (r.ok) acked[`u${i % 6}`] = `v${i}`;
      else delete acked[`u${i % 6}`]; // outcome unknown: do not assert on that key
    }
    expect(Object.keys(acked).length).toBeGreaterThan(0);
    await convergeAndCheck(c);
    expectState(c, acked);
  });

  it('snapshot install after a disconnection and a crash', async () => {
    const c = await started(protocol, 3, 11, { snapshotEntries: 20 });
    const follower = c.ids().find((id) => id !== c.leader()!.id)!;
    c.net.isolate(follower);
    await c.runFor(50);
    c.crash(follower);
    for (let i = 0; i < 120; i++) expect((await put(c, `s${i % 10}`, `v${i}`)).ok).toBe(true);
    const restoresBefore = c.snapshotRestores;
    c.net.rejoin(follower);
    c.restart(follower);
    await convergeAndCheck(c);
    // The follower was behind the leader's compaction point: it caught up from a snapshot.
    expect(c.snapshotRestores).toBeGreaterThan(restoresBefore);
    expect(c.replica(follower).storage.snapshotIndex).toBeGreaterThan(0);
    expectState(c, Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`s${i}`, `v${110 + i}`])));
  });

  it('membership churn under load: remove a voter, add a fresh one', async () => {
    const c = await started(protocol, 3, 12);
    const leader = c.leader()!;
    const victim = c.ids().find((id) => id !== leader.id)!;
    const writes = [];
    for (let i = 0; i < 10; i++) writes.push(c.client(leader.id).put(`m${i}`, `v${i}`, { timeoutMs: 3_000 }));
    await c.runFor(200); // a new leader first commits an entry of its term (thesis §4.1)
    const removed = await c.settle(leader.log.changeMembership({ type: 'remove', id: victim }, { timeoutMs: 5_000 }), 6_000);
    expect(removed.ok, String(!removed.ok && removed.error)).toBe(true);
    c.retire(victim);
    const added = c.addNode();
    const l2 = c.leader()!;
    const joined = await c.settle(l2.log.changeMembership({ type: 'addVoter', id: added }, { timeoutMs: 8_000 }), 9_000);
    expect(joined.ok, String(!joined.ok && joined.error)).toBe(true);
    expect((await c.settle(Promise.all(writes), 3_000)).ok).toBe(true);
    expect(c.voters().sort()).toEqual([...c.ids()].sort());
    expect(c.voters()).toContain(added);
    await convergeAndCheck(c);
    expectState(c, Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`m${i}`, `v${i}`])));
  });

  it.each([
    { drift: 'within the drift bound', leaderRate: 0.96, othersRate: 1.04, stale: false },
    { drift: 'beyond the drift bound (leader clock 5x slow, others 3x fast)', leaderRate: 0.2, othersRate: 3, stale: true },
  ])('lease reads from an isolated old leader, clocks $drift', async ({ leaderRate, othersRate, stale }) => {
    const c = await started(protocol, 3, 13, { raftOptions: { leaseRead: true } });
    const old = c.leader()!.id;
    const h = new HistoryRecorder<KvInput, KvOutput>();
    const w1 = h.invoke(0, { f: 'put', key: 'k', value: 'v1' }, c.sched.now());
    expect((await put(c, 'k', 'v1', old)).ok).toBe(true);
    h.ok(w1, {}, c.sched.now());
    await c.runFor(100);
    c.replica(old).clock.setRate(leaderRate);
    for (const id of c.ids()) if (id !== old) c.replica(id).clock.setRate(othersRate);
    await c.runFor(15);
    c.net.isolate(old);
    expect(await c.runUntil(() => (c.leader()?.id ?? old) !== old, 5_000)).toBe(true);
    const w2 = h.invoke(1, { f: 'put', key: 'k', value: 'v2' }, c.sched.now());
    expect((await put(c, 'k', 'v2', c.leader()!.id)).ok).toBe(true);
    h.ok(w2, {}, c.sched.now());
    const rd = h.invoke(0, { f: 'get', key: 'k' }, c.sched.now());
    const r = await c.settle(c.client(old).get('k', { consistency: 'lease', timeoutMs: 500 }));
    if (r.ok) h.ok(rd, { value: r.value ? toText(r.value) : null }, c.sched.now());
    else h.fail(rd, c.sched.now());
    const verdict = checkLinearizability(kvModel, h.history()).outcome;
    // Within the bound the old leader's lease ran out before anyone else could lead: the read is
    // refused. Beyond it, the stale read happens and the checker flags it.
    expect(verdict).toBe(stale ? 'illegal' : 'ok');
    expect(r.ok).toBe(stale);
    expect(c.violation).toBeNull();
  });
});
