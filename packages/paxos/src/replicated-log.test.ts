/**
 * Integration: three `ReplicatedLog`s driven by `paxos()`, each with a `MemoryStorage`, over a
 * `MemoryNetwork` (messages go through the binary codec, with seeded delays of 1-3 ms that may
 * reorder them) on one `VirtualScheduler`. Nothing Paxos-specific is needed in the runtime.
 */
import {
  createRandom,
  MemoryStorage,
  type Message,
  type NodeId,
  ReplicatedLog,
  type StateMachine,
  VirtualScheduler,
  utf8Decode,
  utf8Encode,
} from '@synod/log';
import { runUntil, settle } from '@synod/log/testing';
import { MemoryNetwork } from '@synod/transport-memory';
import { afterEach, describe, expect, it } from 'vitest';
import { paxos } from './index.js';

const enc = { encode: utf8Encode };
const dec = { decode: utf8Decode };

/** A tiny key-value state machine: "set k v" returns the previous value; query k returns the value. */
class Kv implements StateMachine<string | null, string, string | null> {
  map = new Map<string, string>();
  applied = 0;
  apply(cmd: Uint8Array): string | null {
    this.applied++;
    const [, k, v] = dec.decode(cmd).split(' ');
    const prev = this.map.get(k!) ?? null;
    this.map.set(k!, v!);
    return prev;
  }
  query(k: string): string | null {
    return this.map.get(k) ?? null;
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify([...this.map]));
  }
  restore(data: Uint8Array): void {
    this.map = new Map(JSON.parse(dec.decode(data)) as [string, string][]);
  }
  encodeResult(r: string | null): Uint8Array {
    return enc.encode(JSON.stringify(r));
  }
  decodeResult(b: Uint8Array): string | null {
    return JSON.parse(dec.decode(b)) as string | null;
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

function setup(seed = 1) {
  const scheduler = new VirtualScheduler(1_000_000);
  // Each message is encoded, delayed 1-3 ms (seeded, drawn per message and not kept in FIFO
  // order: the filter's extra delay of 0-2 ms opts a message out of the link's FIFO), then decoded.
  const delays = createRandom(seed);
  const net = new MemoryNetwork<Message>({ scheduler, seed, minDelayMs: 1, serialize: true });
  net.setFilter(() => ({ delayMs: delays.int(0, 2) }));
  networks.push(net);
  const ids = ['n1', 'n2', 'n3'];
  const storages = new Map(ids.map((id) => [id, new MemoryStorage()]));
  const sms = new Map<NodeId, Kv>();
  const logs = new Map<NodeId, ReplicatedLog<string | null, string, string | null>>();
  const protocol = paxos({ electionTicks: 10, heartbeatTicks: 1 });
  const make = async (id: NodeId) => {
    const sm = new Kv();
    sms.set(id, sm);
    const log = new ReplicatedLog({
      id,
      protocol,
      storage: storages.get(id)!.reopen(),
      transport: net.connect(id),
      stateMachine: sm,
      bootstrap: ids,
      scheduler,
      tickMs: 10,
      requestTimeoutMs: 2_000,
      seed: seed * 10 + ids.indexOf(id),
      snapshotThreshold: { entries: 20 },
    });
    logs.set(id, log);
    await log.start();
    return log;
  };
  const leader = () => ids.find((id) => logs.get(id)?.running && logs.get(id)!.status().role === 'leader') ?? null;
  return { scheduler, net, ids, storages, sms, logs, make, leader };
}

describe('ReplicatedLog over paxos()', () => {
  it('proposals are applied on every replica; a leader crash elects a new leader that takes more writes; the crashed node catches up', async () => {
    const t = setup(1);
    for (const id of t.ids) await t.make(id);
    await runUntil(t.scheduler, () => t.leader() !== null);
    const l1 = t.leader()!;
    expect(t.logs.get(l1)!.status().protocol).toBe('paxos');
    for (let i = 0; i < 10; i++) {
      expect(await settle(t.scheduler, t.logs.get(l1)!.propose(enc.encode(`set k${i} a${i}`)))).toBeNull();
    }
    await runUntil(t.scheduler, () => t.ids.every((id) => t.sms.get(id)!.map.size === 10));
    // Read paths: linearizable (read index), lease, stale.
    expect(await settle(t.scheduler, t.logs.get(l1)!.read('k3'))).toBe('a3');
    expect(await settle(t.scheduler, t.logs.get(l1)!.read('k4', { consistency: 'lease' }))).toBe('a4');
    const f = t.ids.find((id) => id !== l1)!;
    expect(await settle(t.scheduler, t.logs.get(f)!.read('k5'))).toBe('a5'); // through the leader
    expect(await t.logs.get(f)!.read('k5', { consistency: 'stale' })).toBe('a5');

    // The leader crashes.
    t.logs.get(l1)!.crash();
    t.net.isolate(l1);
    await runUntil(t.scheduler, () => t.leader() !== null && t.leader() !== l1);
    const l2 = t.leader()!;
    for (let i = 10; i < 30; i++) {
      await settle(t.scheduler, t.logs.get(l2)!.propose(enc.encode(`set k${i} b${i}`)));
    }
    const survivors = t.ids.filter((id) => id !== l1);
    await runUntil(t.scheduler, () => survivors.every((id) => t.sms.get(id)!.map.size === 30));
    // Snapshots were taken at the threshold on the survivors.
    expect(t.storages.get(l2)!.load().snapshot).not.toBeNull();

    // The crashed node restarts from its storage and catches up (entries or a snapshot).
    t.net.rejoin(l1);
    await t.make(l1);
    await runUntil(t.scheduler, () => t.sms.get(l1)!.map.size === 30);
    expect([...t.sms.get(l1)!.map]).toEqual([...t.sms.get(l2)!.map]);
    for (const log of t.logs.values()) await log.stop();
  });

  it('a session command retried on the new leader after a failover is applied once', async () => {
    const t = setup(2);
    for (const id of t.ids) await t.make(id);
    await runUntil(t.scheduler, () => t.leader() !== null);
    const l1 = t.leader()!;
    const sid = await settle(t.scheduler, t.logs.get(l1)!.openSession());
    expect(await settle(t.scheduler, t.logs.get(l1)!.propose(enc.encode('set x 1'), { session: { id: sid, seq: 1 } }))).toBeNull();
    await runUntil(t.scheduler, () => t.ids.every((id) => t.sms.get(id)!.map.get('x') === '1'));
    t.logs.get(l1)!.crash();
    t.net.isolate(l1);
    await runUntil(t.scheduler, () => t.leader() !== null && t.leader() !== l1);
    const l2 = t.leader()!;
    const before = t.sms.get(l2)!.applied;
    // The client did not see the answer and retries the same (session, seq) elsewhere.
    expect(await settle(t.scheduler, t.logs.get(l2)!.propose(enc.encode('set x 1'), { session: { id: sid, seq: 1 } }))).toBeNull();
    expect(t.sms.get(l2)!.applied).toBe(before);
    for (const log of t.logs.values()) if (log.running) await log.stop();
  });

  it('membership changes and leadership transfer through the runtime', async () => {
    const t = setup(3);
    for (const id of t.ids) await t.make(id);
    await runUntil(t.scheduler, () => t.leader() !== null);
    const l1 = t.leader()!;
    await settle(t.scheduler, t.logs.get(l1)!.propose(enc.encode('set a 1')));
    const to = t.ids.find((id) => id !== l1)!;
    await settle(t.scheduler, t.logs.get(l1)!.transferLeadership(to));
    expect(t.logs.get(l1)!.status().leader).toBe(to);
    const cfg = await settle(t.scheduler, t.logs.get(to)!.changeMembership({ type: 'remove', id: l1 }));
    expect([...cfg.voters].sort()).toEqual(t.ids.filter((id) => id !== l1).sort());
    await settle(t.scheduler, t.logs.get(to)!.propose(enc.encode('set b 2')));
    await runUntil(t.scheduler, () => t.ids.filter((id) => id !== l1).every((id) => t.sms.get(id)!.map.get('b') === '2'));
    for (const log of t.logs.values()) await log.stop();
  });

  it('a membership change asked while writes are in flight waits for them to be chosen, resolves, and the writes made meanwhile follow it', async () => {
    const t = setup(4);
    for (const id of t.ids) await t.make(id);
    await runUntil(t.scheduler, () => t.leader() !== null);
    const l = t.leader()!;
    const log = t.logs.get(l)!;
    const gone = t.ids.find((id) => id !== l)!;
    const before = Array.from({ length: 10 }, (_, i) => log.propose(enc.encode(`set p${i} x`)));
    const change = log.changeMembership({ type: 'remove', id: gone });
    const after = Array.from({ length: 10 }, (_, i) => log.propose(enc.encode(`set q${i} y`)));
    expect(log.status().config.voters).toContain(gone); // pending: not in the log yet
    const cfg = await settle(t.scheduler, change);
    expect([...cfg.voters].sort()).toEqual(t.ids.filter((id) => id !== gone).sort());
    await settle(t.scheduler, Promise.all([...before, ...after]));
    const stay = t.ids.filter((id) => id !== gone);
    await runUntil(t.scheduler, () => stay.every((id) => t.sms.get(id)!.map.size === 20));
    for (const l2 of t.logs.values()) await l2.stop();
  });
});
