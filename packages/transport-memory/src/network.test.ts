import {
  BinaryWriter,
  InvalidArgumentError,
  type MessageCodec,
  realScheduler,
  VirtualScheduler,
} from '@synod/log';
import { type TestMessage, testCodec, testMessage } from '@synod/log/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryNetwork, type MemoryEndpoint, type MemoryNetworkOptions } from './index.js';

interface Delivery {
  at: number;
  to: string;
  from: string;
  seq: number;
}

interface World {
  scheduler: VirtualScheduler;
  net: MemoryNetwork<TestMessage>;
  eps: Map<string, MemoryEndpoint<TestMessage>>;
  inbox: Map<string, TestMessage[]>;
  log: Delivery[];
  send(from: string, to: string, seq: number, payload?: Uint8Array): void;
  seqs(id: string): number[];
  run(ms?: number): void;
}

function world(ids: string[], opts: Omit<MemoryNetworkOptions<TestMessage>, 'scheduler'> = {}): World {
  const scheduler = new VirtualScheduler();
  const net = new MemoryNetwork<TestMessage>({ scheduler, ...opts });
  const eps = new Map<string, MemoryEndpoint<TestMessage>>();
  const inbox = new Map<string, TestMessage[]>();
  const log: Delivery[] = [];
  for (const id of ids) {
    const ep = net.connect(id);
    const box: TestMessage[] = [];
    inbox.set(id, box);
    eps.set(id, ep);
    ep.start({
      codec: testCodec,
      onMessage: (m) => {
        box.push(m);
        log.push({ at: scheduler.now(), to: id, from: m.from, seq: m.seq });
      },
    });
  }
  return {
    scheduler,
    net,
    eps,
    inbox,
    log,
    send: (from, to, seq, payload) => eps.get(from)!.send([testMessage(from, to, seq, payload)]),
    seqs: (id) => inbox.get(id)!.map((m) => m.seq),
    run: (ms = 1_000) => scheduler.advance(ms),
  };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('delivery basics', () => {
  it('never delivers inside send: delivery waits for the scheduler', () => {
    const w = world(['a', 'b']);
    w.send('a', 'b', 1);
    expect(w.inbox.get('b')!.length).toBe(0);
    expect(w.net.stats().inFlight).toBe(1);
    w.run(0);
    expect(w.seqs('b')).toEqual([1]);
    expect(w.net.stats().inFlight).toBe(0);
  });

  it('passes messages by reference in the default mode, preserving per-link order', () => {
    const w = world(['a', 'b']);
    const msgs = range(50).map((i) => testMessage('a', 'b', i));
    w.eps.get('a')!.send(msgs);
    w.run(0);
    expect(w.inbox.get('b')!).toEqual(msgs);
    expect(w.inbox.get('b')![7]).toBe(msgs[7]);
  });

  it('delivers messages sent during a delivery in a later batch, not re-entrantly', () => {
    const scheduler = new VirtualScheduler();
    const net = new MemoryNetwork<TestMessage>({ scheduler });
    const a = net.connect('a');
    const b = net.connect('b');
    const order: string[] = [];
    a.start({ codec: testCodec, onMessage: (m) => order.push(`a<-${m.seq}`) });
    b.start({
      codec: testCodec,
      onMessage: (m) => {
        order.push(`b<-${m.seq}`);
        b.send([testMessage('b', 'a', m.seq + 100)]);
      },
    });
    a.send([testMessage('a', 'b', 1), testMessage('a', 'b', 2)]);
    scheduler.step();
    expect(order).toEqual(['b<-1', 'b<-2']);
    scheduler.step();
    expect(order).toEqual(['b<-1', 'b<-2', 'a<-101', 'a<-102']);
  });

  it('delivers to itself', () => {
    const w = world(['a']);
    w.send('a', 'a', 9);
    w.run();
    expect(w.seqs('a')).toEqual([9]);
  });

  it('drops messages to unknown or not-yet-started endpoints and counts them on the sender', () => {
    const w = world(['a']);
    const late = w.net.connect('late');
    w.send('a', 'ghost', 1);
    w.send('a', 'late', 2);
    w.run();
    expect(w.eps.get('a')!.stats()).toMatchObject({ sent: 2, dropped: 2 });
    expect(late.stats().received).toBe(0);
    expect(w.net.stats()).toMatchObject({ sent: 2, delivered: 0, dropped: 2, inFlight: 0 });
  });

  it('a closed endpoint receives nothing, even what was in flight; a reconnected id receives again', () => {
    const w = world(['a', 'b'], { minDelayMs: 5 });
    w.send('a', 'b', 1);
    w.eps.get('b')!.close();
    w.run();
    expect(w.seqs('b')).toEqual([]);
    expect(w.eps.get('a')!.stats().dropped).toBe(1);
    // Sending from a closed endpoint is dropped and counted, never thrown.
    expect(() => w.eps.get('b')!.send([testMessage('b', 'a', 2)])).not.toThrow();
    expect(w.eps.get('b')!.stats().dropped).toBe(1);
    w.run();
    expect(w.seqs('a')).toEqual([]);

    const b2 = w.net.connect('b');
    const got: number[] = [];
    b2.start({ codec: testCodec, onMessage: (m) => got.push(m.seq) });
    w.send('a', 'b', 3);
    w.run();
    expect(got).toEqual([3]);
    expect(b2.stats().received).toBe(1);
  });

  it('a restarted endpoint receives messages still in flight to its id (the address is what counts)', () => {
    const w = world(['a', 'b'], { minDelayMs: 10 });
    w.send('a', 'b', 1);
    w.eps.get('b')!.close();
    const b2 = w.net.connect('b');
    const got: number[] = [];
    b2.start({ codec: testCodec, onMessage: (m) => got.push(m.seq) });
    w.run();
    expect(got).toEqual([1]);
  });

  it('refuses a second open endpoint for an id, a double start and a start after close', () => {
    const w = world(['a']);
    expect(() => w.net.connect('a')).toThrow(InvalidArgumentError);
    expect(() => w.net.connect('')).toThrow(InvalidArgumentError);
    const a = w.eps.get('a')!;
    expect(() => a.start({ codec: testCodec, onMessage: () => {} })).toThrow(InvalidArgumentError);
    a.close();
    a.close(); // idempotent
    expect(a.isClosed).toBe(true);
    expect(() => a.start({ codec: testCodec, onMessage: () => {} })).toThrow(InvalidArgumentError);
    expect(w.net.ids()).toEqual([]);
  });

  it('rejects invalid fault settings with InvalidArgumentError and changes nothing', () => {
    const w = world(['a', 'b']);
    expect(() => w.net.setDropRate(1.5)).toThrow(InvalidArgumentError);
    expect(() => w.net.setDropRate(Number.NaN)).toThrow(InvalidArgumentError);
    expect(() => w.net.setDelay(-1)).toThrow(InvalidArgumentError);
    expect(() => w.net.setDelay(5, 2)).toThrow(InvalidArgumentError);
    expect(() => w.net.setDelay(1.5)).toThrow(InvalidArgumentError);
    expect(() => w.net.setReorder(0.5, 0)).toThrow(InvalidArgumentError);
    expect(() => w.net.partition([['a'], ['a', 'b']])).toThrow(InvalidArgumentError);
    expect(() => new MemoryNetwork({ scheduler: w.scheduler, duplicateRate: -0.1 })).toThrow(InvalidArgumentError);
    expect(w.net.faults()).toEqual({
      minDelayMs: 0,
      maxDelayMs: 0,
      dropRate: 0,
      duplicateRate: 0,
      reorderRate: 0,
      reorderMaxMs: 10,
      corruptRate: 0,
    });
  });

  it('setting only minDelayMs raises maxDelayMs to it', () => {
    const w = world(['a', 'b']);
    w.net.setFaults({ minDelayMs: 7 });
    expect(w.net.faults()).toMatchObject({ minDelayMs: 7, maxDelayMs: 7 });
    w.send('a', 'b', 1);
    w.run(6);
    expect(w.seqs('b')).toEqual([]);
    w.run(1);
    expect(w.seqs('b')).toEqual([1]);
    expect(w.log[0]!.at).toBe(7);
  });

  it('a handler that throws does not stop the rest of the batch; the error surfaces from the scheduler', () => {
    const scheduler = new VirtualScheduler();
    const net = new MemoryNetwork<TestMessage>({ scheduler });
    const a = net.connect('a');
    const b = net.connect('b');
    const got: number[] = [];
    a.start({ codec: testCodec, onMessage: () => {} });
    b.start({
      codec: testCodec,
      onMessage: (m) => {
        got.push(m.seq);
        if (m.seq === 1) throw new Error('handler bug');
      },
    });
    a.send([testMessage('a', 'b', 1), testMessage('a', 'b', 2)]);
    expect(() => scheduler.step()).toThrow('handler bug');
    expect(got).toEqual([1, 2]);
    // The network is still consistent and keeps working.
    a.send([testMessage('a', 'b', 3)]);
    scheduler.advance(1);
    expect(got).toEqual([1, 2, 3]);
    expect(net.stats().inFlight).toBe(0);
  });

  it('works on the real scheduler, FIFO per link even when the clock ticks mid-send and timers run late', async () => {
    // 50 rounds of 200 messages in bursts: real timers fire late and out of due order, and the
    // wall clock ticks between messages of one burst; each link must still be FIFO.
    for (let round = 0; round < 50; round++) {
      const net = new MemoryNetwork<TestMessage>({ scheduler: realScheduler, minDelayMs: 0, maxDelayMs: 2, seed: round });
      const a = net.connect('a');
      const b = net.connect('b');
      const got: number[] = [];
      a.start({ codec: testCodec, onMessage: () => {} });
      const done = new Promise<void>((resolve) =>
        b.start({
          codec: testCodec,
          onMessage: (m) => {
            got.push(m.seq);
            if (got.length === 200) resolve();
          },
        }),
      );
      for (let burst = 0; burst < 4; burst++) {
        a.send(range(50).map((i) => testMessage('a', 'b', burst * 50 + i)));
        if (burst % 2 === 1) await new Promise<void>((r) => realScheduler.setTimer(1, r));
      }
      await done;
      expect(got).toEqual(range(200));
    }
  });
});

describe('determinism', () => {
  const scenario = (seed: number): Delivery[] => {
    const w = world(['a', 'b', 'c'], {
      seed,
      minDelayMs: 1,
      maxDelayMs: 30,
      dropRate: 0.1,
      duplicateRate: 0.1,
      reorderRate: 0.2,
      reorderMaxMs: 50,
    });
    let seq = 0;
    for (let round = 0; round < 20; round++) {
      for (const from of ['a', 'b', 'c']) for (const to of ['a', 'b', 'c']) if (from !== to) w.send(from, to, seq++);
      w.run(7);
    }
    w.run(1_000);
    return w.log;
  };

  it('the same seed replays the same deliveries at the same times', () => {
    const first = scenario(42);
    expect(first.length).toBeGreaterThan(50);
    expect(scenario(42)).toEqual(first);
  });

  it('a different seed gives a different run', () => {
    expect(scenario(43)).not.toEqual(scenario(42));
  });
});

describe('random faults', () => {
  it('dropRate 1 loses everything, counted on the sender', () => {
    const w = world(['a', 'b'], { dropRate: 1 });
    w.eps.get('a')!.send(range(100).map((i) => testMessage('a', 'b', i)));
    w.run();
    expect(w.seqs('b')).toEqual([]);
    expect(w.eps.get('a')!.stats()).toMatchObject({ sent: 100, dropped: 100 });
    expect(w.net.stats()).toMatchObject({ dropped: 100, delivered: 0 });
  });

  it('dropRate 0.3 loses about 30%, and switching it off at run time restores delivery', () => {
    const w = world(['a', 'b'], { seed: 5, dropRate: 0.3 });
    w.eps.get('a')!.send(range(2000).map((i) => testMessage('a', 'b', i)));
    w.run();
    const got = w.seqs('b').length;
    expect(got).toBeGreaterThan(1200);
    expect(got).toBeLessThan(1600);
    expect(got + w.eps.get('a')!.stats().dropped).toBe(2000);
    w.net.setDropRate(0);
    w.eps.get('a')!.send(range(100).map((i) => testMessage('a', 'b', 10_000 + i)));
    w.run();
    expect(w.seqs('b').length).toBe(got + 100);
  });

  it('duplicateRate 1 delivers every message twice', () => {
    const w = world(['a', 'b'], { duplicateRate: 1, maxDelayMs: 3 });
    w.eps.get('a')!.send(range(10).map((i) => testMessage('a', 'b', i)));
    w.run();
    const seqs = w.seqs('b');
    expect(seqs.length).toBe(20);
    for (const i of range(10)) expect(seqs.filter((s) => s === i).length).toBe(2);
    expect(w.eps.get('a')!.stats().duplicated).toBe(10);
    expect(w.eps.get('b')!.stats().received).toBe(20);
  });

  it('a delay range keeps each link FIFO and delivers within the range', () => {
    const w = world(['a', 'b'], { seed: 9, minDelayMs: 5, maxDelayMs: 50 });
    for (const i of range(200)) {
      w.send('a', 'b', i);
      if (i % 10 === 0) w.run(1);
    }
    w.run();
    expect(w.seqs('b')).toEqual(range(200));
    const times = w.log.map((d) => d.at);
    expect(Math.min(...times)).toBeGreaterThanOrEqual(5);
  });

  it('reorder lets later messages overtake earlier ones; turning it off restores FIFO', () => {
    const w = world(['a', 'b'], { seed: 11, reorderRate: 0.3, reorderMaxMs: 20 });
    w.eps.get('a')!.send(range(200).map((i) => testMessage('a', 'b', i)));
    w.run();
    const seqs = w.seqs('b');
    expect(seqs.length).toBe(200);
    expect([...seqs].sort((x, y) => x - y)).toEqual(range(200));
    expect(seqs).not.toEqual(range(200));
    w.net.setReorder(0);
    w.inbox.get('b')!.length = 0;
    w.eps.get('a')!.send(range(200).map((i) => testMessage('a', 'b', i)));
    w.run();
    expect(w.seqs('b')).toEqual(range(200));
  });
});

describe('link faults', () => {
  const all = ['a', 'b', 'c', 'd'];
  const everyPair = (w: World, tag: number): void => {
    for (const from of all) for (const to of all) if (from !== to) w.send(from, to, tag);
  };
  const heard = (w: World, id: string, tag: number): string[] =>
    w.inbox.get(id)!.filter((m) => m.seq === tag).map((m) => m.from).sort();

  it('partition splits the nodes into groups; a node named nowhere is alone; heal reconnects', () => {
    const w = world(all);
    w.net.partition([['a', 'b'], ['c']]);
    everyPair(w, 1);
    w.run();
    expect(heard(w, 'a', 1)).toEqual(['b']);
    expect(heard(w, 'b', 1)).toEqual(['a']);
    expect(heard(w, 'c', 1)).toEqual([]);
    expect(heard(w, 'd', 1)).toEqual([]);
    expect(w.net.canReach('a', 'c')).toBe(false);
    expect(w.net.canReach('d', 'd')).toBe(true);
    w.net.heal();
    everyPair(w, 2);
    w.run();
    for (const id of all) expect(heard(w, id, 2)).toEqual(all.filter((x) => x !== id));
  });

  it('a partition also loses messages already in flight across it', () => {
    const w = world(['a', 'b'], { minDelayMs: 10 });
    w.send('a', 'b', 1);
    w.run(5);
    w.net.partition([['a'], ['b']]);
    w.run();
    expect(w.seqs('b')).toEqual([]);
    expect(w.eps.get('a')!.stats().dropped).toBe(1);
  });

  it('isolate cuts one node off in both directions; rejoin and heal undo it', () => {
    const w = world(all);
    w.net.isolate('c');
    everyPair(w, 1);
    w.run();
    expect(heard(w, 'c', 1)).toEqual([]);
    expect(heard(w, 'a', 1)).toEqual(['b', 'd']);
    expect(w.eps.get('c')!.stats().dropped).toBe(3);
    w.net.rejoin('c');
    everyPair(w, 2);
    w.run();
    expect(heard(w, 'c', 2)).toEqual(['a', 'b', 'd']);
    w.net.isolate('a');
    w.net.heal();
    everyPair(w, 3);
    w.run();
    expect(heard(w, 'a', 3)).toEqual(['b', 'c', 'd']);
  });

  it('cutLink cuts one direction only; restoreLink and heal undo it', () => {
    const w = world(['a', 'b']);
    w.net.cutLink('a', 'b');
    w.send('a', 'b', 1);
    w.send('b', 'a', 2);
    w.run();
    expect(w.seqs('b')).toEqual([]);
    expect(w.seqs('a')).toEqual([2]);
    w.net.restoreLink('a', 'b');
    w.send('a', 'b', 3);
    w.run();
    expect(w.seqs('b')).toEqual([3]);
    w.net.cutLink('a', 'b');
    w.net.cutLink('a', 'b'); // idempotent
    w.net.heal();
    w.send('a', 'b', 4);
    w.run();
    expect(w.seqs('b')).toEqual([3, 4]);
  });
});

describe('message filter', () => {
  it('drops, duplicates and delays specific messages, and sees the sending endpoint', () => {
    const w = world(['a', 'b', 'c']);
    const seen: string[] = [];
    w.net.setFilter((m, from, to) => {
      seen.push(`${from}->${to}:${m.seq}`);
      if (m.seq === 1) return 'drop';
      if (m.seq === 2) return 'duplicate';
      if (m.seq === 3) return { delayMs: 100 };
      return 'deliver';
    });
    w.send('a', 'b', 1);
    w.send('a', 'b', 2);
    w.send('a', 'b', 3);
    w.send('a', 'c', 4);
    w.run(50);
    expect(w.seqs('b')).toEqual([2, 2]);
    expect(w.seqs('c')).toEqual([4]);
    w.run(100);
    expect(w.seqs('b')).toEqual([2, 2, 3]);
    expect(seen).toEqual(['a->b:1', 'a->b:2', 'a->b:3', 'a->c:4']);
    expect(w.eps.get('a')!.stats()).toMatchObject({ dropped: 1, duplicated: 1 });
    w.net.setFilter(null);
    w.send('a', 'b', 1);
    w.run();
    expect(w.seqs('b')).toEqual([2, 2, 3, 1]);
  });

  it('holds messages until released (optionally by predicate) or dropped', () => {
    const w = world(['a', 'b']);
    w.net.setFilter((m) => (m.seq >= 10 ? 'hold' : 'deliver'));
    w.eps.get('a')!.send([10, 1, 11, 12, 2].map((s) => testMessage('a', 'b', s)));
    w.run();
    expect(w.seqs('b')).toEqual([1, 2]);
    expect(w.net.heldCount).toBe(3);
    expect(w.eps.get('a')!.stats().held).toBe(3);
    expect(w.net.stats().held).toBe(3);
    expect(w.net.releaseHeld((m) => m.seq === 11)).toBe(1);
    w.run();
    expect(w.seqs('b')).toEqual([1, 2, 11]);
    expect(w.net.dropHeld((m) => m.seq === 12)).toBe(1);
    expect(w.net.releaseHeld()).toBe(1);
    w.run();
    expect(w.seqs('b')).toEqual([1, 2, 11, 10]);
    expect(w.net.heldCount).toBe(0);
    expect(w.eps.get('a')!.stats()).toMatchObject({ held: 0, dropped: 1 });
  });

  it('a released message is still subject to the link state at delivery', () => {
    const w = world(['a', 'b']);
    w.net.setFilter(() => 'hold');
    w.send('a', 'b', 1);
    w.net.setFilter(null);
    w.net.isolate('b');
    w.net.releaseHeld();
    w.run();
    expect(w.seqs('b')).toEqual([]);
    expect(w.eps.get('a')!.stats().dropped).toBe(1);
  });
});

describe('serialize mode', () => {
  it('round-trips every message through the codec: equal content, distinct objects, bytes counted', () => {
    const w = world(['a', 'b'], { serialize: true });
    const sent = testMessage('a', 'b', 77, new Uint8Array([9, 8, 7]));
    w.eps.get('a')!.send([sent]);
    w.run();
    const got = w.inbox.get('b')![0]!;
    expect(got).not.toBe(sent);
    expect(got).toEqual(sent);
    const w2 = new BinaryWriter();
    testCodec.write(w2, sent);
    expect(w.eps.get('a')!.stats().bytesSent).toBe(w2.pos);
  });

  it('encodes at send time: mutating a payload after send does not change what arrives', () => {
    const w = world(['a', 'b'], { serialize: true, minDelayMs: 5 });
    const payload = new Uint8Array([1, 2, 3]);
    w.eps.get('a')!.send([testMessage('a', 'b', 1, payload)]);
    payload[0] = 99;
    w.run();
    expect(Array.from(w.inbox.get('b')![0]!.payload)).toEqual([1, 2, 3]);
  });

  it('counts a codec whose read does not consume what write wrote as malformed', () => {
    const sloppy: MessageCodec<TestMessage> = {
      write: (w, m) => {
        testCodec.write(w, m);
        w.u8(0); // a trailing byte read() never consumes
      },
      read: (r) => testCodec.read(r),
    };
    const w = world(['a', 'b'], { serialize: sloppy });
    w.send('a', 'b', 1);
    w.run();
    expect(w.seqs('b')).toEqual([]);
    expect(w.eps.get('b')!.stats().malformed).toBe(1);
    expect(w.net.stats().malformed).toBe(1);
  });

  it('drops (and counts) a message the codec cannot encode', () => {
    const broken: MessageCodec<TestMessage> = {
      write: () => {
        throw new RangeError('cannot encode');
      },
      read: (r) => testCodec.read(r),
    };
    const w = world(['a', 'b'], { serialize: broken });
    expect(() => w.send('a', 'b', 1)).not.toThrow();
    w.run();
    expect(w.seqs('b')).toEqual([]);
    expect(w.net.stats()).toMatchObject({ encodeErrors: 1, dropped: 1 });
  });

  it('corruptRate 1 truncates every message, each counted as malformed by the receiver', () => {
    const w = world(['a', 'b'], { serialize: true, corruptRate: 1, seed: 3 });
    w.eps.get('a')!.send(range(50).map((i) => testMessage('a', 'b', i, new Uint8Array([i, i, i]))));
    w.run();
    expect(w.seqs('b')).toEqual([]);
    expect(w.eps.get('b')!.stats()).toMatchObject({ received: 0, malformed: 50 });
  });

  it('corruptRate is ignored without serialize mode', () => {
    const w = world(['a', 'b'], { corruptRate: 1 });
    w.send('a', 'b', 1);
    w.run();
    expect(w.seqs('b')).toEqual([1]);
  });

  it('injectBytes decodes raw bytes with the receiver codec; garbage is counted as malformed', () => {
    const w = world(['a', 'b']);
    const good = new BinaryWriter();
    testCodec.write(good, testMessage('x', 'b', 5, new Uint8Array([1])));
    w.net.injectBytes('b', good.toBytes());
    w.net.injectBytes('b', new Uint8Array([0xff, 0xff, 0xff]));
    w.net.injectBytes('b', new Uint8Array([]));
    w.net.injectBytes('b', good.toBytes().subarray(0, 4));
    w.net.injectBytes('nobody', good.toBytes());
    w.run();
    expect(w.seqs('b')).toEqual([5]);
    expect(w.eps.get('b')!.stats()).toMatchObject({ received: 1, malformed: 3 });
    const s = w.net.stats();
    expect(s).toMatchObject({ injected: 5, inFlight: 0, dropped: 1 });
    expect(s.delivered + s.dropped + s.malformed + s.held + s.inFlight).toBe(s.sent + s.duplicated + s.injected);
  });
});

describe('conservation property', () => {
  it('every sent message (and copy) is delivered, dropped, held, malformed or in flight; nothing is invented', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 0, max: 2 ** 31 }),
          dropRate: fc.double({ min: 0, max: 1, noNaN: true }),
          duplicateRate: fc.double({ min: 0, max: 1, noNaN: true }),
          reorderRate: fc.double({ min: 0, max: 1, noNaN: true }),
          corruptRate: fc.double({ min: 0, max: 1, noNaN: true }),
          maxDelayMs: fc.integer({ min: 0, max: 20 }),
          serialize: fc.boolean(),
          ops: fc.array(
            fc.oneof(
              fc.record({ kind: fc.constant('send' as const), from: fc.integer({ min: 0, max: 2 }), to: fc.integer({ min: 0, max: 3 }) }),
              fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 15 }) }),
              fc.record({ kind: fc.constant('isolate' as const), node: fc.integer({ min: 0, max: 2 }) }),
              fc.record({ kind: fc.constant('cut' as const), from: fc.integer({ min: 0, max: 2 }), to: fc.integer({ min: 0, max: 2 }) }),
              fc.constant({ kind: 'heal' as const }),
              fc.constant({ kind: 'hold' as const }),
              fc.constant({ kind: 'release' as const }),
            ),
            { maxLength: 80 },
          ),
        }),
        (p) => {
          const ids = ['n0', 'n1', 'n2'];
          const w = world(ids, {
            seed: p.seed,
            dropRate: p.dropRate,
            duplicateRate: p.duplicateRate,
            reorderRate: p.reorderRate,
            corruptRate: p.corruptRate,
            maxDelayMs: p.maxDelayMs,
            serialize: p.serialize,
          });
          const sentSeqs = new Set<number>();
          let seq = 0;
          for (const op of p.ops) {
            if (op.kind === 'send') {
              const to = op.to === 3 ? 'ghost' : ids[op.to]!;
              sentSeqs.add(seq);
              w.send(ids[op.from]!, to, seq++);
            } else if (op.kind === 'advance') w.run(op.ms);
            else if (op.kind === 'isolate') w.net.isolate(ids[op.node]!);
            else if (op.kind === 'cut') w.net.cutLink(ids[op.from]!, ids[op.to]!);
            else if (op.kind === 'heal') w.net.heal();
            else if (op.kind === 'hold') w.net.setFilter((m) => (m.seq % 2 === 0 ? 'hold' : 'deliver'));
            else w.net.releaseHeld();
            const s = w.net.stats();
            expect(s.delivered + s.dropped + s.malformed + s.held + s.inFlight).toBe(s.sent + s.duplicated);
          }
          w.run(10_000);
          const s = w.net.stats();
          expect(s.inFlight).toBe(0);
          expect(s.delivered + s.dropped + s.malformed + s.held).toBe(s.sent + s.duplicated);
          for (const d of w.log) expect(sentSeqs.has(d.seq)).toBe(true);
          let received = 0;
          for (const ep of w.eps.values()) received += ep.stats().received;
          expect(received).toBe(s.delivered);
        },
      ),
      { numRuns: 150 },
    );
  });
});
