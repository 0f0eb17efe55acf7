/**
 * The Raft core under the real runtime: three `ReplicatedLog`s over `MemoryStorage`, a
 * `MemoryNetwork` on `VirtualScheduler` (1 ms latency; every message goes through the binary
 * codec), and a counter state machine. A crash isolates the node on the network and crashes its
 * runtime (which closes its endpoint); a restart rejoins it with a new endpoint.
 */
import {
  MemoryStorage,
  NotLeaderError,
  ReplicatedLog,
  type StateMachine,
  VirtualScheduler,
  utf8Decode,
  utf8Encode,
} from '@synod/log';
import { runUntil, settle } from '@synod/log/testing';
import { MemoryNetwork } from '@synod/transport-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { raft } from './index.js';
import type { RaftMessage } from './messages.js';

const enc = { encode: utf8Encode };
const dec = { decode: utf8Decode };

class Counter implements StateMachine<number, 'total', number> {
  total = 0;
  log: string[] = [];
  apply(cmd: Uint8Array): number {
    const s = dec.decode(cmd);
    this.log.push(s);
    const [op, n] = s.split(':');
    if (op === 'add') this.total += Number(n);
    return this.total;
  }
  query(): number {
    return this.total;
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify({ total: this.total, log: this.log }));
  }
  restore(data: Uint8Array): void {
    const s = JSON.parse(dec.decode(data)) as { total: number; log: string[] };
    this.total = s.total;
    this.log = s.log;
  }
  encodeResult(r: number): Uint8Array {
    return enc.encode(String(r));
  }
  decodeResult(b: Uint8Array): number {
    return Number(dec.decode(b));
  }
}

// The network counts a message that fails to encode or decode instead of throwing: every test
// checks that none did, so a codec bug still fails it.
const networks: Pick<MemoryNetwork, 'stats'>[] = [];
afterEach(() => {
  for (const n of networks.splice(0)) {
    expect(n.stats().encodeErrors).toBe(0);
    expect(n.stats().malformed).toBe(0);
  }
});

function cluster(ids = ['n1', 'n2', 'n3'], snapshotEntries = 0) {
  const scheduler = new VirtualScheduler(1_000_000);
  const net = new MemoryNetwork<RaftMessage>({ scheduler, minDelayMs: 1, serialize: true });
  networks.push(net);
  const storages = new Map(ids.map((id) => [id, new MemoryStorage()]));
  const sms = new Map<string, Counter>();
  const logs = new Map<string, ReplicatedLog<number, 'total', number>>();
  let seed = 1;
  const make = (id: string) => {
    const sm = new Counter();
    sms.set(id, sm);
    const log = new ReplicatedLog<number, 'total', number>({
      id,
      protocol: raft(),
      storage: storages.get(id)!,
      transport: net.connect(id),
      stateMachine: sm,
      bootstrap: ids,
      scheduler,
      tickMs: 10,
      seed: seed++,
      snapshotThreshold: { entries: snapshotEntries },
    });
    logs.set(id, log);
    return log;
  };
  const leader = () => [...logs.values()].find((l) => l.running && l.status().role === 'leader') ?? null;
  return { scheduler, net, storages, sms, logs, make, leader };
}

describe('Raft under ReplicatedLog (3 nodes, MemoryStorage, virtual time)', () => {
  it('elects a leader, commits and applies proposals on all three, survives a leader crash', async () => {
    const c = cluster();
    for (const id of ['n1', 'n2', 'n3']) await c.make(id).start();
    await runUntil(c.scheduler, () => c.leader() !== null);
    const l1 = c.leader()!;
    expect(await settle(c.scheduler, l1.propose(enc.encode('add:5')))).toBe(5);
    expect(await settle(c.scheduler, l1.propose(enc.encode('add:2')))).toBe(7);
    // A proposal on a follower is forwarded to the leader and resolves there too.
    const follower = [...c.logs.values()].find((l) => l !== l1)!;
    expect(await settle(c.scheduler, follower.propose(enc.encode('add:1')))).toBe(8);
    await runUntil(c.scheduler, () => [...c.sms.values()].every((sm) => sm.total === 8));
    for (const sm of c.sms.values()) expect(sm.log).toEqual(['add:5', 'add:2', 'add:1']);

    // Linearizable read on the leader and on a follower (ReadIndex through the leader).
    expect(await settle(c.scheduler, l1.read('total'))).toBe(8);
    expect(await settle(c.scheduler, follower.read('total'))).toBe(8);

    // Crash the leader: the other two elect a new one and keep committing.
    const oldId = l1.id;
    c.net.isolate(oldId);
    l1.crash();
    await runUntil(c.scheduler, () => {
      const l = c.leader();
      return l !== null && l.id !== oldId;
    });
    const l2 = c.leader()!;
    expect(l2.status().term).toBeGreaterThan(1);
    expect(await settle(c.scheduler, l2.propose(enc.encode('add:10')))).toBe(18);

    // The crashed node restarts from its storage and catches up.
    c.net.rejoin(oldId);
    const back = c.make(oldId);
    await back.start();
    await runUntil(c.scheduler, () => c.sms.get(oldId)!.total === 18);
    expect(c.sms.get(oldId)!.log).toEqual(['add:5', 'add:2', 'add:1', 'add:10']);
  });

  it('a session command retried after a failover applies once and returns the cached result (thesis §6.3)', async () => {
    const c = cluster();
    for (const id of ['n1', 'n2', 'n3']) await c.make(id).start();
    await runUntil(c.scheduler, () => c.leader() !== null);
    const l1 = c.leader()!;
    const sid = await settle(c.scheduler, l1.openSession());
    expect(await settle(c.scheduler, l1.propose(enc.encode('add:7'), { session: { id: sid, seq: 1 } }))).toBe(7);
    await runUntil(c.scheduler, () => [...c.sms.values()].every((sm) => sm.total === 7));
    // The leader dies; the client did not see the answer and retries on the new leader.
    c.net.isolate(l1.id);
    l1.crash();
    await runUntil(c.scheduler, () => {
      const l = c.leader();
      return l !== null && l !== l1;
    });
    const l2 = c.leader()!;
    expect(await settle(c.scheduler, l2.propose(enc.encode('add:7'), { session: { id: sid, seq: 1 } }))).toBe(7);
    expect(await settle(c.scheduler, l2.propose(enc.encode('add:1'), { session: { id: sid, seq: 2 } }))).toBe(8);
    for (const [id, sm] of c.sms) if (id !== l1.id) expect(sm.log.filter((x) => x === 'add:7')).toHaveLength(1);
  });

  it('changes membership through the runtime: adds a voter (learner first) and removes one', async () => {
    const c = cluster(['n1', 'n2', 'n3']);
    for (const id of ['n1', 'n2', 'n3']) await c.make(id).start();
    await runUntil(c.scheduler, () => c.leader() !== null);
    await settle(c.scheduler, c.leader()!.propose(enc.encode('add:3')));
    // n4 starts empty (no bootstrap): it waits to be added.
    c.storages.set('n4', new MemoryStorage());
    const n4 = new ReplicatedLog<number, 'total', number>({
      id: 'n4', protocol: raft(), storage: c.storages.get('n4')!, transport: c.net.connect('n4'),
      stateMachine: (() => { const sm = new Counter(); c.sms.set('n4', sm); return sm; })(),
      scheduler: c.scheduler, tickMs: 10, seed: 44, snapshotThreshold: { entries: 0 },
    });
    c.logs.set('n4', n4);
    await n4.start();
    const cfg = await settle(c.scheduler, c.leader()!.changeMembership({ type: 'addVoter', id: 'n4' }));
    expect([...cfg.voters].sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
    await runUntil(c.scheduler, () => c.sms.get('n4')!.total === 3);
    const victim = [...c.logs.values()].find((l) => l.running && l !== c.leader() && l.id !== 'n4')!;
    const cfg2 = await settle(c.scheduler, c.leader()!.changeMembership({ type: 'remove', id: victim.id }));
    expect(cfg2.voters).not.toContain(victim.id);
    expect(await settle(c.scheduler, c.leader()!.propose(enc.encode('add:1')))).toBe(4);
  });

  it('transfers leadership through the runtime', async () => {
    const c = cluster();
    for (const id of ['n1', 'n2', 'n3']) await c.make(id).start();
    await runUntil(c.scheduler, () => c.leader() !== null);
    const l = c.leader()!;
    const target = [...c.logs.values()].find((x) => x !== l)!;
    await settle(c.scheduler, l.transferLeadership(target.id));
    expect(c.leader()).toBe(target);
    expect(await settle(c.scheduler, target.propose(enc.encode('add:2')))).toBe(2);
  });

  it('refuses a proposal with NotLeaderError when no leader is known', async () => {
    const c = cluster();
    const only = c.make('n1');
    await only.start();
    const err = await only.propose(enc.encode('add:1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).leaderHint).toBeNull();
  });

  it('takes snapshots, compacts, and a restarted node catches up through InstallSnapshot', async () => {
    const c = cluster(['n1', 'n2', 'n3'], 20);
    for (const id of ['n1', 'n2', 'n3']) await c.make(id).start();
    await runUntil(c.scheduler, () => c.leader() !== null);
    const l = c.leader()!;
    const lagger = [...c.logs.values()].find((x) => x !== l)!;
    const lagId = lagger.id;
    c.net.isolate(lagId);
    lagger.crash();
    let total = 0;
    for (let i = 0; i < 1200; i++) {
      total += 1;
      void l.propose(enc.encode('add:1'));
      if (i % 100 === 99) await settle(c.scheduler, l.propose(enc.encode('add:0')));
    }
    await settle(c.scheduler, l.propose(enc.encode('add:0')));
    expect(l.status().snapshotIndex).toBeGreaterThan(1024);
    c.net.rejoin(lagId);
    c.storages.set(lagId, c.storages.get(lagId)!.reopen());
    const back = c.make(lagId);
    await back.start();
    await runUntil(c.scheduler, () => c.sms.get(lagId)!.total === total);
    expect(back.status().snapshotIndex).toBeGreaterThan(0);
  });
});
