/**
 * The KV state machine and client under the real runtime: `ReplicatedLog` driving the
 * single-voter `soloProtocol()`, with `MemoryStorage` and virtual time.
 */
import {
  InvalidArgumentError,
  MemoryStorage,
  type PersistBatch,
  ReplicatedLog,
  SessionExpiredError,
  StaleSequenceError,
  TimeoutError,
  VirtualScheduler,
} from '@synod/log';
import { nullTransport, settle, soloProtocol } from '@synod/log/testing';
import { describe, expect, it } from 'vitest';
import { type KvResult, toBytes, toText } from './codec.js';
import { KvClient, KvCommandError, type KvLog } from './client.js';
import { type KvQuery, type KvQueryResult, KvStateMachine } from './state-machine.js';

/** A MemoryStorage whose next `slowPersists` persists take `delayMs` of virtual time. */
class SlowStorage extends MemoryStorage {
  slowPersists = 0;
  constructor(private readonly scheduler: VirtualScheduler, private readonly delayMs: number) {
    super();
  }
  override persist(batch: PersistBatch): void {
    if (this.slowPersists > 0) {
      this.slowPersists--;
      const done = new Promise<void>((resolve) => this.scheduler.setTimer(this.delayMs, () => resolve()));
      super.persist(batch);
      return done as unknown as void;
    }
    super.persist(batch);
  }
}

function setup(opts: { storage?: MemoryStorage; scheduler?: VirtualScheduler; snapshotEntries?: number; sm?: KvStateMachine } = {}) {
  const scheduler = opts.scheduler ?? new VirtualScheduler(1_000_000);
  const storage = opts.storage ?? new MemoryStorage();
  const sm = opts.sm ?? new KvStateMachine();
  const log = new ReplicatedLog<KvResult, KvQuery, KvQueryResult>({
    id: 'n1',
    protocol: soloProtocol(),
    storage,
    transport: nullTransport('n1'),
    stateMachine: sm,
    bootstrap: ['n1'],
    scheduler,
    seed: 7,
    snapshotThreshold: { entries: opts.snapshotEntries ?? 0 },
  });
  return { scheduler, storage, sm, log, kv: new KvClient(log) };
}

describe('KvClient over ReplicatedLog (solo protocol, MemoryStorage, virtual time)', () => {
  it('put, get, delete and cas end to end with typed results', async () => {
    const { scheduler: s, log, kv } = setup();
    await log.start();
    expect(await settle(s, kv.put('color', 'blue'))).toEqual({ type: 'put', previous: null });
    const second = await settle(s, kv.put('color', 'red'));
    expect(toText(second.previous)).toBe('blue');
    expect(await settle(s, kv.getText('color'))).toBe('red');
    const casFail = await settle(s, kv.cas('color', 'blue', 'green'));
    expect(casFail.ok).toBe(false);
    expect(toText(casFail.current)).toBe('red');
    const casOk = await settle(s, kv.cas('color', 'red', 'green'));
    expect(casOk.ok).toBe(true);
    expect(toText(casOk.current)).toBe('green');
    expect((await settle(s, kv.cas('lock', null, 'owner-1'))).ok).toBe(true);
    expect((await settle(s, kv.cas('lock', null, 'owner-2'))).ok).toBe(false);
    const del = await settle(s, kv.delete('color'));
    expect(del.deleted).toBe(true);
    expect(toText(del.previous)).toBe('green');
    expect((await settle(s, kv.delete('color'))).deleted).toBe(false);
    expect(await settle(s, kv.get('color'))).toBeNull();
    await log.stop();
  });

  it('reads at every consistency see acknowledged writes; size and keys work through the log', async () => {
    const { scheduler: s, log, kv } = setup();
    await log.start();
    for (let i = 0; i < 5; i++) await settle(s, kv.put(`user/${i}`, new Uint8Array([i])));
    await settle(s, kv.put('other', 'x'));
    for (const consistency of ['linearizable', 'lease', 'stale', 'log'] as const) {
      expect(Array.from((await settle(s, kv.get('user/3', { consistency })))!)).toEqual([3]);
    }
    expect(await settle(s, kv.size())).toEqual({ keys: 6, valueBytes: 6 });
    expect(await settle(s, kv.keys({ prefix: 'user/', limit: 3 }))).toEqual({ keys: ['user/0', 'user/1', 'user/2'], more: true });
    expect(await settle(s, kv.keys({ prefix: 'user/', after: 'user/2' }))).toEqual({ keys: ['user/3', 'user/4'], more: false });
    await expect(kv.size({ consistency: 'log' })).rejects.toBeInstanceOf(InvalidArgumentError);
    await log.stop();
  });

  it('rejects invalid keys and values before proposing anything', async () => {
    const { scheduler: s, log, kv } = setup();
    await log.start();
    const before = log.status().lastIndex;
    await expect(kv.put('bad\ud800', 'v')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(kv.put(42 as unknown as string, 'v')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(kv.put('k', 42 as unknown as string)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(kv.get('bad\udfff')).rejects.toBeInstanceOf(InvalidArgumentError);
    await settle(s, Promise.resolve());
    expect(log.status().lastIndex).toBe(before);
    await log.stop();
  });

  it('a malformed command is committed, answered with an error result on the replica, and the client throws KvCommandError', async () => {
    const { scheduler: s, log, sm, kv } = setup();
    await log.start();
    await settle(s, kv.put('a', '1'));
    const raw = await settle(s, log.propose(new Uint8Array([77, 1, 2])));
    expect(raw).toMatchObject({ type: 'error', code: 'unknown-op' });
    const garbled: KvLog = { ...bindLog(log), propose: (_cmd, o) => log.propose(new Uint8Array([2, 9]), o) };
    const err = await settle(s, new KvClient(garbled).put('a', '2')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvCommandError);
    expect((err as KvCommandError).kvCode).toBe('malformed');
    expect((err as KvCommandError).code).toBe('MALFORMED_MESSAGE');
    expect(toText(sm.get('a'))).toBe('1');
    expect(sm.rejectedCommands).toBe(2);
    await log.stop();
  });

  it('a retried session put applies once and returns the cached result (Raft thesis §6.3)', async () => {
    const { scheduler: s, log, sm, kv } = setup();
    await log.start();
    const sid = await settle(s, log.openSession());
    const first = await settle(s, kv.put('k', 'v1', { session: { id: sid, seq: 1 } }));
    expect(first).toEqual({ type: 'put', previous: null });
    const applied = sm.appliedCommands;
    // The retry (same id and seq) returns the first result, even with different bytes, and is not applied.
    const retry = await settle(s, kv.put('k', 'v2', { session: { id: sid, seq: 1 } }));
    expect(retry).toEqual({ type: 'put', previous: null });
    expect(sm.appliedCommands).toBe(applied);
    expect(toText(sm.get('k'))).toBe('v1');
    // The next seq applies; an older one is refused.
    expect(toText((await settle(s, kv.put('k', 'v3', { session: { id: sid, seq: 2 } }))).previous)).toBe('v1');
    await expect(settle(s, kv.put('k', 'v4', { session: { id: sid, seq: 1 } }))).rejects.toBeInstanceOf(StaleSequenceError);
    expect(toText(sm.get('k'))).toBe('v3');
    await log.stop();
  });

  it('KvSession numbers commands, runs them one at a time in order, and closes', async () => {
    const { scheduler: s, log, kv } = setup();
    await log.start();
    const session = await settle(s, kv.openSession());
    expect(session.id).toBeGreaterThan(0);
    // Issued without awaiting: the session queues them.
    const ps = [session.put('n', '1'), session.cas('n', '1', '2'), session.cas('n', '2', '3'), session.delete('n'), session.put('n', 'end')];
    const rs = await settle(s, Promise.all(ps));
    expect(rs[1]).toMatchObject({ ok: true });
    expect(rs[2]).toMatchObject({ ok: true });
    expect(rs[3]).toMatchObject({ deleted: true });
    expect(session.lastSeq).toBe(5);
    expect(await settle(s, kv.getText('n'))).toBe('end');
    await settle(s, session.close());
    await expect(session.put('n', 'after')).rejects.toBeInstanceOf(InvalidArgumentError);
    // The session is gone from the log: a resumed handle is refused.
    await expect(settle(s, kv.resumeSession(session.id, 5).put('n', 'x'))).rejects.toBeInstanceOf(SessionExpiredError);
    await log.stop();
  });

  it('KvSession re-proposes a timed-out command with the same seq: applied once, cached result returned', async () => {
    const scheduler = new VirtualScheduler(1_000_000);
    const storage = new SlowStorage(scheduler, 120);
    const { log, sm, kv } = setup({ scheduler, storage });
    await log.start();
    await settle(scheduler, kv.put('counter', '0'));
    let proposals = 0;
    const counting: KvLog = { ...bindLog(log), propose: (c, o) => (proposals++, log.propose(c, o)) };
    const session = await settle(scheduler, new KvClient(counting).openSession({ timeoutMs: 50, retries: 3 }));
    const applied = sm.appliedCommands;
    storage.slowPersists = 1; // the first attempt's entry takes 120 ms to become durable
    const r = await settle(scheduler, session.cas('counter', '0', '1'));
    expect(r).toEqual({ type: 'cas', ok: true, current: toBytes('1') });
    // Several attempts reached the log, but the state machine applied the command once.
    expect(proposals).toBeGreaterThanOrEqual(2);
    expect(sm.appliedCommands).toBe(applied + 1);
    expect(await settle(scheduler, kv.getText('counter'))).toBe('1');
    await log.stop();
  });

  it('KvSession gives up after its retries with the TimeoutError (outcome unknown)', async () => {
    const scheduler = new VirtualScheduler(1_000_000);
    const storage = new SlowStorage(scheduler, 1000);
    const { log, kv } = setup({ scheduler, storage });
    await log.start();
    const session = await settle(scheduler, kv.openSession({ timeoutMs: 50, retries: 1 }));
    storage.slowPersists = 1;
    await expect(settle(scheduler, session.put('k', 'v'))).rejects.toBeInstanceOf(TimeoutError);
    // The command was in the log after all; re-issuing its seq returns its result exactly once.
    const again = await settle(scheduler, session.put('k', 'v', { seq: session.lastSeq, timeoutMs: 5000 }));
    expect(again).toEqual({ type: 'put', previous: null });
    await log.stop();
  });

  it('keeps data and session results across snapshots and a restart', async () => {
    const storage = new MemoryStorage();
    const a = setup({ storage, snapshotEntries: 5 });
    await a.log.start();
    const session = await settle(a.scheduler, a.kv.openSession());
    for (let i = 0; i < 12; i++) await settle(a.scheduler, a.kv.put(`k${i}`, `v${i}`));
    const last = await settle(a.scheduler, session.put('k3', 'session-write'));
    expect(toText(last.previous)).toBe('v3');
    for (let i = 0; i < 6; i++) await settle(a.scheduler, a.kv.delete(`k${i + 6}`));
    expect(storage.load().snapshot).not.toBeNull();
    a.log.crash();

    const sm = new KvStateMachine();
    const b = setup({ storage: storage.reopen(), snapshotEntries: 5, sm });
    await b.log.start();
    expect(await settle(b.scheduler, b.kv.size())).toEqual({ keys: 6, valueBytes: 5 * 2 + 'session-write'.length });
    expect(await settle(b.scheduler, b.kv.getText('k3'))).toBe('session-write');
    // The session survived in the snapshot: re-issuing its last seq returns the cached (encoded) result.
    const resumed = b.kv.resumeSession(session.id, session.lastSeq);
    const again = await settle(b.scheduler, resumed.put('k3', 'ignored', { seq: session.lastSeq }));
    expect(toText(again.previous)).toBe('v3');
    expect(await settle(b.scheduler, b.kv.getText('k3'))).toBe('session-write');
    await b.log.stop();
  });
});

function bindLog(log: ReplicatedLog<KvResult, KvQuery, KvQueryResult>): KvLog {
  return {
    propose: (c, o) => log.propose(c, o),
    read: (q, o) => log.read(q, o),
    openSession: (o) => log.openSession(o),
    closeSession: (id, o) => log.closeSession(id, o),
  };
}
