import { describe, expect, it } from 'vitest';
import { utf8Decode, utf8Encode } from './binary.js';
import { InvalidConfigurationError, NotLeaderError, SessionExpiredError, StaleSequenceError, StoppedError, StorageError, TimeoutError } from './errors.js';
import { MemoryStorage } from './memory-storage.js';
import { ReplicatedLog } from './replicated-log.js';
import { VirtualScheduler } from './scheduler.js';
import type { StateMachine } from './state-machine.js';
import type { Transport } from './transport.js';
import { soloProtocol } from './testing/solo.js';
import type { ConsensusProtocol, Message } from './core.js';
import type { PersistBatch } from './types.js';

const enc = { encode: utf8Encode };
const dec = { decode: utf8Decode };

/** A counter state machine: "add:N" adds N and returns the new total; query returns the total. */
class Counter implements StateMachine<number, 'total', number> {
  total = 0;
  applied: number[] = [];
  apply(cmd: Uint8Array, ctx: { index: number }): number {
    this.applied.push(ctx.index);
    const [op, n] = dec.decode(cmd).split(':');
    if (op === 'add') this.total += Number(n);
    return this.total;
  }
  query(): number {
    return this.total;
  }
  snapshot(): Uint8Array {
    return enc.encode(String(this.total));
  }
  restore(data: Uint8Array): void {
    this.total = Number(dec.decode(data));
  }
  encodeResult(r: number): Uint8Array {
    return enc.encode(String(r));
  }
  decodeResult(b: Uint8Array): number {
    return Number(dec.decode(b));
  }
}

function nullTransport(id: string): Transport<Message> {
  let sent = 0;
  return {
    id,
    start() {},
    send(ms) {
      sent += ms.length;
    },
    stats: () => ({ sent, received: 0, dropped: sent, malformed: 0 }),
    close() {},
  };
}

function setup(opts: { storage?: MemoryStorage; snapshotEntries?: number; protocol?: ConsensusProtocol<Message>; sm?: Counter } = {}) {
  const scheduler = new VirtualScheduler(1_000_000);
  const storage = opts.storage ?? new MemoryStorage();
  const sm = opts.sm ?? new Counter();
  const log = new ReplicatedLog({
    id: 'n1',
    protocol: opts.protocol ?? soloProtocol(),
    storage,
    transport: nullTransport('n1'),
    stateMachine: sm,
    bootstrap: ['n1'],
    scheduler,
    seed: 1,
    snapshotThreshold: { entries: opts.snapshotEntries ?? 0 },
  });
  return { scheduler, storage, sm, log };
}

async function settle<T>(s: VirtualScheduler, p: Promise<T>, ms = 10_000): Promise<T> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < ms && !done; i++) {
    s.advance(1);
    await Promise.resolve();
    await Promise.resolve();
  }
  return p;
}

describe('ReplicatedLog runtime (driven by the solo protocol)', () => {
  it('resolves a proposal with the state machine result once applied', async () => {
    const { scheduler, log, sm } = setup();
    await log.start();
    expect(await settle(scheduler, log.propose(enc.encode('add:5')))).toBe(5);
    expect(await settle(scheduler, log.propose(enc.encode('add:2')))).toBe(7);
    expect(sm.total).toBe(7);
    expect(log.status().appliedIndex).toBe(log.status().commitIndex);
  });

  it('persists each ready batch with one storage call (group commit)', async () => {
    const { scheduler, log, storage } = setup();
    await log.start();
    await settle(scheduler, log.propose(enc.encode('add:0')));
    const before = storage.persistCount;
    const ps = Array.from({ length: 100 }, (_, i) => log.propose(enc.encode(`add:${i}`)));
    const results = await settle(scheduler, Promise.all(ps));
    expect(results[99]).toBe(4950);
    // 100 proposals made in the same turn are persisted together: the entries once, then the commit.
    expect(storage.persistCount - before).toBeLessThanOrEqual(3);
  });

  it('defers a commit-only hard state (no extra sync) and makes it durable on the next tick', async () => {
    const { scheduler, log, storage } = setup();
    await log.start();
    await settle(scheduler, log.propose(enc.encode('add:1')));
    scheduler.advance(500);
    const before = storage.persistCount;
    const p = log.propose(enc.encode('add:1'));
    // Run only what is due now (no tick): the entries are persisted once; the commit advance
    // that follows is not synced on its own.
    let resolved = false;
    void p.then(() => (resolved = true));
    for (let i = 0; i < 20 && !resolved; i++) {
      while (scheduler.nextAt() === scheduler.now()) scheduler.step();
      await Promise.resolve();
    }
    expect(resolved).toBe(true);
    expect(storage.persistCount - before).toBe(1);
    expect(storage.load().hardState.commit).toBeLessThan(log.status().commitIndex);
    scheduler.advance(200);
    await Promise.resolve();
    expect(storage.load().hardState.commit).toBe(log.status().commitIndex);
  });

  it('recovers applied state after a restart from storage (replaying committed entries)', async () => {
    const storage = new MemoryStorage();
    const a = setup({ storage });
    await a.log.start();
    for (let i = 1; i <= 10; i++) await settle(a.scheduler, a.log.propose(enc.encode('add:1')));
    a.log.crash();
    const b = setup({ storage: storage.reopen() });
    await b.log.start();
    await settle(b.scheduler, b.log.propose(enc.encode('add:0')));
    expect(b.sm.total).toBe(10);
  });

  it('takes snapshots at the entry threshold, compacts, and restores from them on restart', async () => {
    const storage = new MemoryStorage();
    const a = setup({ storage, snapshotEntries: 5 });
    await a.log.start();
    for (let i = 1; i <= 12; i++) await settle(a.scheduler, a.log.propose(enc.encode('add:2')));
    const persisted = storage.load();
    expect(persisted.snapshot).not.toBeNull();
    expect(persisted.snapshot!.meta.index).toBeGreaterThanOrEqual(5);
    expect(persisted.entries.every((e) => e.index > persisted.snapshot!.meta.index)).toBe(true);
    a.log.crash();
    const sm = new Counter();
    const b = setup({ storage: storage.reopen(), sm, snapshotEntries: 5 });
    await b.log.start();
    await settle(b.scheduler, b.log.propose(enc.encode('add:0')));
    expect(sm.total).toBe(24);
    // Entries covered by the snapshot were not applied again.
    expect(sm.applied.every((i) => i > persisted.snapshot!.meta.index)).toBe(true);
  });

  it('serves linearizable and stale reads', async () => {
    const { scheduler, log } = setup();
    await log.start();
    await settle(scheduler, log.propose(enc.encode('add:3')));
    expect(await settle(scheduler, log.read('total', { consistency: 'linearizable' }))).toBe(3);
    expect(await log.read('total', { consistency: 'stale' })).toBe(3);
  });

  it('applies a session command once and returns the cached result on retry (thesis §6.3)', async () => {
    const { scheduler, log, sm } = setup();
    await log.start();
    const sid = await settle(scheduler, log.openSession());
    expect(sid).toBeGreaterThan(0);
    const r1 = await settle(scheduler, log.propose(enc.encode('add:10'), { session: { id: sid, seq: 1 } }));
    const r2 = await settle(scheduler, log.propose(enc.encode('add:10'), { session: { id: sid, seq: 1 } }));
    expect(r1).toBe(10);
    expect(r2).toBe(10);
    expect(sm.total).toBe(10);
    const r3 = await settle(scheduler, log.propose(enc.encode('add:1'), { session: { id: sid, seq: 2 } }));
    expect(r3).toBe(11);
    await expect(settle(scheduler, log.propose(enc.encode('add:1'), { session: { id: sid, seq: 1 } }))).rejects.toBeInstanceOf(StaleSequenceError);
    await expect(settle(scheduler, log.propose(enc.encode('add:1'), { session: { id: 9999, seq: 1 } }))).rejects.toBeInstanceOf(SessionExpiredError);
    expect(sm.total).toBe(11);
  });

  it('keeps sessions and their cached results across snapshot and restart', async () => {
    const storage = new MemoryStorage();
    const a = setup({ storage, snapshotEntries: 3 });
    await a.log.start();
    const sid = await settle(a.scheduler, a.log.openSession());
    await settle(a.scheduler, a.log.propose(enc.encode('add:4'), { session: { id: sid, seq: 1 } }));
    for (let i = 0; i < 5; i++) await settle(a.scheduler, a.log.propose(enc.encode('add:1')));
    expect(storage.load().snapshot).not.toBeNull();
    a.log.crash();
    const b = setup({ storage: storage.reopen(), snapshotEntries: 3 });
    await b.log.start();
    const again = await settle(b.scheduler, b.log.propose(enc.encode('add:4'), { session: { id: sid, seq: 1 } }));
    expect(again).toBe(4);
    expect(b.sm.total).toBe(9);
  });

  it('expires idle sessions deterministically from log time', async () => {
    const scheduler = new VirtualScheduler(0);
    const sm = new Counter();
    const log = new ReplicatedLog({
      id: 'n1', protocol: soloProtocol(), storage: new MemoryStorage(), transport: nullTransport('n1'),
      stateMachine: sm, bootstrap: ['n1'], scheduler, sessionTimeoutMs: 1000, snapshotThreshold: { entries: 0 },
    });
    await log.start();
    const sid = await settle(scheduler, log.openSession());
    scheduler.advance(5000);
    await settle(scheduler, log.propose(enc.encode('add:1')));
    await expect(settle(scheduler, log.propose(enc.encode('add:1'), { session: { id: sid, seq: 1 } }))).rejects.toBeInstanceOf(SessionExpiredError);
  });

  it('stops on a storage failure: the pending proposal fails and nothing is applied', async () => {
    const storage = new MemoryStorage();
    const { scheduler, log, sm } = setup({ storage });
    await log.start();
    await settle(scheduler, log.propose(enc.encode('add:1')));
    storage.persist = (_b: PersistBatch) => {
      throw new Error('disk on fire');
    };
    await expect(settle(scheduler, log.propose(enc.encode('add:100')))).rejects.toBeInstanceOf(StorageError);
    expect(sm.total).toBe(1);
    expect(log.status().stopped).toBe(true);
    expect(() => log.propose(enc.encode('add:1'))).toThrow(StorageError);
  });

  it('rejects pending requests with StoppedError on stop, and later calls throw', async () => {
    const { log } = setup();
    await log.start();
    const p = log.propose(enc.encode('add:1'));
    await log.stop();
    await expect(p).rejects.toBeInstanceOf(StoppedError);
    expect(() => log.propose(enc.encode('add:1'))).toThrow(StoppedError);
  });

  it('times out a proposal the core never commits, with outcome unknown', async () => {
    // A protocol whose core accepts proposals but never makes progress.
    const base = soloProtocol();
    const stuck: ConsensusProtocol<Message> = {
      name: 'stuck',
      codec: base.codec,
      create(init) {
        const core = base.create(init);
        core.hasReady = () => false;
        return core;
      },
    };
    const { scheduler, log } = setup({ protocol: stuck });
    await log.start();
    await expect(settle(scheduler, log.propose(enc.encode('add:1')), 20_000)).rejects.toBeInstanceOf(TimeoutError);
  });

  it('passes a core refusal straight to the caller (NotLeaderError keeps its hint)', async () => {
    const base = soloProtocol();
    const follower: ConsensusProtocol<Message> = {
      name: 'follower',
      codec: base.codec,
      create(init) {
        const core = base.create(init);
        core.propose = () => {
          throw new NotLeaderError('n2');
        };
        return core;
      },
    };
    const { log } = setup({ protocol: follower });
    await log.start();
    const err = await log.propose(enc.encode('add:1')).catch((e) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(err.leaderHint).toBe('n2');
  });

  it('refuses invalid options with InvalidConfigurationError', () => {
    const base = { protocol: soloProtocol(), storage: new MemoryStorage(), transport: nullTransport('n1'), stateMachine: new Counter() };
    expect(() => new ReplicatedLog({ ...base, id: 'bad id' })).toThrow(InvalidConfigurationError);
    expect(() => new ReplicatedLog({ ...base, id: 'n1', tickMs: 0 })).toThrow(InvalidConfigurationError);
    expect(() => new ReplicatedLog({ ...base, id: 'n1', requestTimeoutMs: -5 })).toThrow(InvalidConfigurationError);
  });
});
