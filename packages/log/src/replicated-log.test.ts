import { describe, expect, it } from 'vitest';
import { utf8Decode, utf8Encode } from './binary.js';
import { CommandTooLargeError, InvalidArgumentError, InvalidConfigurationError, NotLeaderError, SessionExpiredError, StaleSequenceError, StateMachineError, StoppedError, StorageError, type SynodError, TimeoutError, UnsupportedError } from './errors.js';
import { MemoryStorage } from './memory-storage.js';
import { ReplicatedLog } from './replicated-log.js';
import { VirtualScheduler } from './scheduler.js';
import type { StateMachine } from './state-machine.js';
import { nullTransport, settle, soloProtocol } from './testing/helpers.js';
import type { ConsensusProtocol, Message } from './core.js';
import { EntryType, type PersistBatch } from './types.js';

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
    await expect(log.propose(enc.encode('add:1'))).rejects.toBeInstanceOf(StorageError);
  });

  it('rejects pending requests with StoppedError on stop, and later calls throw', async () => {
    const { log } = setup();
    await log.start();
    const p = log.propose(enc.encode('add:1'));
    await log.stop();
    await expect(p).rejects.toBeInstanceOf(StoppedError);
    await expect(log.propose(enc.encode('add:1'))).rejects.toBeInstanceOf(StoppedError);
    await expect(log.read('total')).rejects.toBeInstanceOf(StoppedError);
    await expect(log.openSession()).rejects.toBeInstanceOf(StoppedError);
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

  it('every promise-returning method rejects (never throws) on misuse, with typed errors', async () => {
    const fresh = setup().log;
    await expect(fresh.propose(enc.encode('add:1'))).rejects.toBeInstanceOf(StoppedError); // not started
    const { scheduler, log } = setup();
    await log.start();
    await expect(log.propose('x' as unknown as Uint8Array)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(log.propose(enc.encode('add:1'), { timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(log.propose(enc.encode('add:1'), { timeoutMs: Number.NaN })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(log.propose(enc.encode('add:1'), { timeoutMs: 2 ** 31 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(log.read('total', { consistency: 'bogus' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(log.closeSession(Number.NaN)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(log.closeSession(-1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(log.changeMembership(null as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(log.changeMembership({ type: 'explode', id: 'n2' } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(log.transferLeadership('bad id')).rejects.toBeInstanceOf(InvalidArgumentError);
    // null options are accepted as "no options"
    expect(await settle(scheduler, log.propose(enc.encode('add:2'), null as never))).toBe(2);
  });

  it('refuses a command larger than maxCommandBytes before it enters the log', async () => {
    const scheduler = new VirtualScheduler(0);
    const storage = new MemoryStorage();
    const log = new ReplicatedLog({
      id: 'n1', protocol: soloProtocol(), storage, transport: nullTransport('n1'), stateMachine: new Counter(),
      bootstrap: ['n1'], scheduler, maxCommandBytes: 16,
    });
    await log.start();
    await settle(scheduler, log.propose(enc.encode('add:1')));
    const last = log.status().lastIndex;
    await expect(log.propose(new Uint8Array(17))).rejects.toBeInstanceOf(CommandTooLargeError);
    expect(log.status().lastIndex).toBe(last);
  });

  it('closing an unknown session is refused with SessionExpiredError', async () => {
    const { scheduler, log } = setup();
    await log.start();
    await expect(settle(scheduler, log.closeSession(424242))).rejects.toBeInstanceOf(SessionExpiredError);
    const sid = await settle(scheduler, log.openSession());
    await settle(scheduler, log.closeSession(sid));
    await expect(settle(scheduler, log.closeSession(sid))).rejects.toBeInstanceOf(SessionExpiredError);
  });

  it('stop() after a fatal storage error still closes the storage and the transport', async () => {
    const storage = new MemoryStorage();
    let closed = 0;
    const close = storage.close.bind(storage);
    storage.close = () => {
      closed++;
      close();
    };
    const { scheduler, log } = setup({ storage });
    await log.start();
    storage.persist = () => {
      throw new Error('disk gone');
    };
    await expect(settle(scheduler, log.propose(enc.encode('add:1')))).rejects.toBeInstanceOf(StorageError);
    await log.stop();
    await log.stop();
    expect(closed).toBe(1);
  });

  it('delivers the ticks a stalled event loop missed, so leases and timeouts count real time', async () => {
    const base = new VirtualScheduler(0);
    let offset = 0;
    const stalling = { now: () => base.now() + offset, setTimer: base.setTimer.bind(base), defer: base.defer.bind(base) };
    const inner = soloProtocol();
    let ticks = 0;
    const counting: ConsensusProtocol<Message> = {
      name: 'counting', codec: inner.codec,
      create(init) {
        const core = inner.create(init);
        const tick = core.tick.bind(core);
        core.tick = () => {
          ticks++;
          tick();
        };
        return core;
      },
    };
    const log = new ReplicatedLog({
      id: 'n1', protocol: counting, storage: new MemoryStorage(), transport: nullTransport('n1'), stateMachine: new Counter(),
      bootstrap: ['n1'], scheduler: stalling, tickMs: 100,
    });
    await log.start();
    base.advance(1000);
    expect(ticks).toBe(10);
    // The process stalls for 5 s: wall time moves, the tick timer fires once, late.
    offset += 5000;
    base.advance(100);
    expect(ticks).toBe(10 + 51);
    // A lease read also catches up first, before the core judges its lease.
    offset += 300;
    void log.read('total', { consistency: 'lease' }).catch(() => {});
    expect(ticks).toBe(61 + 3);
    await log.stop();
  });

  it('applies a request once when it appears twice in the log (a duplicated forwarded proposal)', async () => {
    const base = soloProtocol();
    let duplicateNext = false;
    let held: Uint8Array | null = null;
    const dupProtocol: ConsensusProtocol<Message> = {
      name: 'dup', codec: base.codec,
      create(init) {
        const core = base.create(init);
        const propose = core.propose.bind(core);
        core.propose = (data) => {
          propose(data);
          if (duplicateNext) propose(data); // the network delivered the forwarded proposal twice
          held = data;
        };
        return core;
      },
    };
    const storage = new MemoryStorage();
    const a = setup({ protocol: dupProtocol, storage, snapshotEntries: 4 });
    await a.log.start();
    duplicateNext = true;
    expect(await settle(a.scheduler, a.log.propose(enc.encode('add:5')))).toBe(5);
    duplicateNext = false;
    expect(await settle(a.scheduler, a.log.propose(enc.encode('add:1')))).toBe(6);
    expect(a.sm.total).toBe(6);
    expect(a.log.status().duplicateCommands).toBe(1);
    // The table of recent requests travels in snapshots: after a restart from one, a late copy
    // of an already-applied request is still skipped.
    for (let i = 0; i < 6; i++) await settle(a.scheduler, a.log.propose(enc.encode('add:0')));
    expect(storage.load().snapshot).not.toBeNull();
    const late = held!;
    a.log.crash();
    const b = setup({ protocol: soloProtocol(), storage: storage.reopen(), snapshotEntries: 4 });
    await b.log.start();
    const inner = (b.log as unknown as { core: { propose(d: Uint8Array): void } }).core;
    inner.propose(late);
    await settle(b.scheduler, b.log.propose(enc.encode('add:100')));
    expect(b.sm.total).toBe(106);
    expect(b.log.status().duplicateCommands).toBe(1);
  });

  it('skips a copy of a request older than the duplicate window instead of risking a second apply', async () => {
    const base = soloProtocol();
    let first: Uint8Array | null = null;
    const recording: ConsensusProtocol<Message> = {
      name: 'recording', codec: base.codec,
      create(init) {
        const core = base.create(init);
        const propose = core.propose.bind(core);
        core.propose = (data) => {
          first ??= data;
          propose(data);
        };
        return core;
      },
    };
    const a = setup({ protocol: recording });
    await a.log.start();
    expect(await settle(a.scheduler, a.log.propose(enc.encode('add:7')))).toBe(7);
    // 5000 later requests of the same proposer: the first one falls out of the window.
    const later: Promise<unknown>[] = [];
    for (let i = 0; i < 5000; i++) later.push(a.log.propose(enc.encode('add:0')));
    await settle(a.scheduler, Promise.all(later));
    const inner = (a.log as unknown as { core: { propose(d: Uint8Array): void } }).core;
    inner.propose(first!); // a very late copy of the first request
    expect(await settle(a.scheduler, a.log.propose(enc.encode('add:1')))).toBe(8);
    expect(a.sm.total).toBe(8);
    expect(a.log.status().duplicateCommands).toBe(1);
    await a.log.stop();
  });

  it('refuses invalid options with InvalidConfigurationError', () => {
    const base = { protocol: soloProtocol(), storage: new MemoryStorage(), transport: nullTransport('n1'), stateMachine: new Counter() };
    expect(() => new ReplicatedLog({ ...base, id: 'bad id' })).toThrow(InvalidConfigurationError);
    expect(() => new ReplicatedLog({ ...base, id: 'n1', tickMs: 0 })).toThrow(InvalidConfigurationError);
    expect(() => new ReplicatedLog({ ...base, id: 'n1', requestTimeoutMs: -5 })).toThrow(InvalidConfigurationError);
  });
});

describe('ReplicatedLog fail-stop and input checks', () => {
  function withFatal(opts: Parameters<typeof setup>[0] = {}) {
    const fatal: SynodError[] = [];
    const scheduler = new VirtualScheduler(1_000_000);
    const storage = opts.storage ?? new MemoryStorage();
    const sm = opts.sm ?? new Counter();
    const log = new ReplicatedLog({
      id: 'n1', protocol: opts.protocol ?? soloProtocol(), storage, transport: nullTransport('n1'), stateMachine: sm,
      bootstrap: ['n1'], scheduler, seed: 1, snapshotThreshold: { entries: opts.snapshotEntries ?? 0 },
      onFatal: (e) => fatal.push(e),
    });
    return { scheduler, storage, sm, log, fatal };
  }

  it('a state machine whose apply throws: its proposal rejects with StateMachineError and the replica stops', async () => {
    const sm = new Counter();
    const apply = sm.apply.bind(sm);
    sm.apply = (cmd, ctx) => {
      if (dec.decode(cmd) === 'boom') throw new Error('bad command');
      return apply(cmd, ctx);
    };
    const { scheduler, log, fatal } = withFatal({ sm });
    await log.start();
    expect(await settle(scheduler, log.propose(enc.encode('add:1')))).toBe(1);
    const err = await settle(scheduler, log.propose(enc.encode('boom'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateMachineError);
    expect((err as StateMachineError).code).toBe('STATE_MACHINE_FAILED');
    expect(fatal.map((e) => e.code)).toEqual(['STATE_MACHINE_FAILED']);
    expect(log.status().stopped).toBe(true);
    await expect(log.propose(enc.encode('add:1'))).rejects.toBeInstanceOf(StateMachineError);
  });

  it('a state machine whose snapshot() throws stops the replica through onFatal (no unhandled rejection)', async () => {
    const sm = new Counter();
    sm.snapshot = () => {
      throw new Error('cannot serialize');
    };
    const { scheduler, log, fatal } = withFatal({ sm, snapshotEntries: 2 });
    await log.start();
    const results = [log.propose(enc.encode('add:1')), log.propose(enc.encode('add:2')), log.propose(enc.encode('add:3'))].map((p) => p.catch((e: unknown) => e));
    await settle(scheduler, Promise.all(results));
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toBeInstanceOf(StateMachineError);
    expect(fatal[0]!.message).toMatch(/snapshot/);
    expect(log.status().stopped).toBe(true);
  });

  it('a received snapshot that cannot be restored stops the replica without persisting it', async () => {
    const base = soloProtocol();
    let inject = false;
    const poisoning: ConsensusProtocol<Message> = {
      name: 'poison', codec: base.codec,
      create(init) {
        const core = base.create(init);
        const ready = core.ready.bind(core);
        const hasReady = core.hasReady.bind(core);
        core.hasReady = () => inject || hasReady();
        core.ready = () => {
          const rd = ready();
          if (!inject) return rd;
          inject = false;
          const config = { voters: ['n1'], learners: [] };
          return { ...rd, snapshot: { meta: { index: 1000, term: 1, config }, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) } };
        };
        return core;
      },
    };
    const { scheduler, storage, log, fatal } = withFatal({ protocol: poisoning });
    await log.start();
    expect(await settle(scheduler, log.propose(enc.encode('add:4')))).toBe(4);
    inject = true;
    await settle(scheduler, log.propose(enc.encode('add:1')).catch((e: unknown) => e));
    expect(fatal.map((e) => e.code)).toEqual(['STATE_MACHINE_FAILED']);
    expect(storage.load().snapshot).toBeNull(); // the durable state is intact: a restart works
    await log.stop();
    const again = setup({ storage: storage.reopen() });
    await again.log.start();
    expect(await settle(again.scheduler, again.log.read('total'))).toBe(4);
  });

  it('openSession needs a state machine with encodeResult/decodeResult (UnsupportedError up front)', async () => {
    const c = new Counter();
    const sm: StateMachine<number, 'total', number> = { apply: c.apply.bind(c), query: c.query.bind(c), snapshot: c.snapshot.bind(c), restore: c.restore.bind(c) };
    const { log } = withFatal({ sm: sm as Counter });
    await log.start();
    await expect(log.openSession()).rejects.toBeInstanceOf(UnsupportedError);
  });

  it('refuses a stored state whose commit index is beyond the stored log, or whose entries are out of order', async () => {
    const bad = new MemoryStorage();
    bad.persist({ hardState: { term: 1, vote: null, commit: 50 }, truncateFrom: null, compactTo: null, snapshot: null, entries: [{ index: 1, term: 1, type: EntryType.NoOp, data: new Uint8Array(0) }] });
    await expect(setup({ storage: bad }).log.start()).rejects.toThrow(/commit index 50 is beyond the stored log/);
    const fine = new MemoryStorage();
    fine.persist({ hardState: { term: 1, vote: null, commit: 1 }, truncateFrom: null, compactTo: null, snapshot: null, entries: [{ index: 1, term: 1, type: EntryType.NoOp, data: new Uint8Array(0) }] });
    await expect(setup({ storage: fine }).log.start()).resolves.toBeUndefined();
    const unordered = { load: () => ({ hardState: { term: 1, vote: null, commit: 0 }, snapshot: null, entries: [{ index: 2, term: 1, type: EntryType.NoOp, data: new Uint8Array(0) }, { index: 2, term: 1, type: EntryType.NoOp, data: new Uint8Array(0) }] }), persist() {}, close() {} };
    const l = new ReplicatedLog({ id: 'n1', protocol: soloProtocol(), storage: unordered, transport: nullTransport('n1'), stateMachine: new Counter(), scheduler: new VirtualScheduler() });
    await expect(l.start()).rejects.toBeInstanceOf(StorageError);
  });

  it('refuses options that cannot work with InvalidConfigurationError at construction', () => {
    const base = { id: 'n1', protocol: soloProtocol(), storage: new MemoryStorage(), transport: nullTransport('n1'), stateMachine: new Counter() };
    const bad: Record<string, unknown>[] = [
      { tickMs: 3e9 }, // above 2^31-1 ms: a real timer would fire at once
      { tickMs: 1e-9 },
      { tickMs: '100' },
      { requestTimeoutMs: 3e9 },
      { stateMachine: null },
      { storage: undefined },
      { protocol: {} },
      { transport: nullTransport('n2') },
      { seed: Number.NaN },
      { seed: 'abc' },
      { bootstrap: 'n1' },
      { bootstrap: { voters: 'n1' } },
      { bootstrap: ['n1', 'n1'] },
      { bootstrap: ['bad id'] },
      { bootstrap: [] },
      { bootstrap: ['n2', 'n3'] }, // without this replica
      { maxCommandBytes: 0.5 },
      { snapshotThreshold: null },
      { snapshotThreshold: { entries: 1.5 } },
    ];
    for (const b of bad) {
      expect(() => new ReplicatedLog({ ...base, ...b } as never), JSON.stringify(b)).toThrow(InvalidConfigurationError);
    }
    expect(() => new ReplicatedLog({ ...base, tickMs: '100' } as never)).toThrow(/got "100"/);
    // A Configuration without learners is fine (learners default to none).
    expect(() => new ReplicatedLog({ ...base, bootstrap: { voters: ['n1'] } } as never)).not.toThrow();
  });

  it('stop() waits for an asynchronous persist in progress before closing the storage', async () => {
    const events: string[] = [];
    const storage = new MemoryStorage();
    const persist = storage.persist.bind(storage);
    const scheduler = new VirtualScheduler(0);
    let slow = false;
    storage.persist = (b: PersistBatch) => {
      if (!slow) return persist(b);
      events.push('persist-start');
      return new Promise<void>((resolve) => {
        scheduler.setTimer(50, () => {
          persist(b);
          events.push('persist-end');
          resolve();
        });
      });
    };
    const close = storage.close.bind(storage);
    storage.close = () => {
      events.push('close');
      close();
    };
    const log = new ReplicatedLog({ id: 'n1', protocol: soloProtocol(), storage, transport: nullTransport('n1'), stateMachine: new Counter(), bootstrap: ['n1'], scheduler, seed: 1 });
    await log.start();
    expect(await settle(scheduler, log.propose(enc.encode('add:1')))).toBe(1); // leading, idle
    slow = true;
    void log.propose(enc.encode('add:1')).catch(() => {});
    for (let i = 0; i < 20 && events.length === 0; i++) {
      scheduler.advance(1);
      for (let j = 0; j < 4; j++) await Promise.resolve();
    }
    expect(events).toEqual(['persist-start']);
    const stopped = log.stop();
    await settle(scheduler, stopped);
    expect(events).toEqual(['persist-start', 'persist-end', 'close']);
  });
});
