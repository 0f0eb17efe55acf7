import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, TimeoutError } from '../errors.js';
import { MemoryStorage } from '../memory-storage.js';
import { ReplicatedLog } from '../replicated-log.js';
import { VirtualScheduler } from '../scheduler.js';
import type { StateMachine } from '../state-machine.js';
import { utf8Decode, utf8Encode } from '../binary.js';
import { nullTransport } from './null-transport.js';
import { soloProtocol } from './solo.js';
import { DEFAULT_VIRTUAL_LIMIT_MS, flushMicrotasks, runUntil, settle, VirtualTimeLimitError } from './virtual-time.js';

const T0 = 1_000_000;

/** A promise resolved with `value` by a timer `ms` from now. */
function after<T>(s: VirtualScheduler, ms: number, value: T): Promise<T> {
  return new Promise((resolve) => s.setTimer(ms, () => resolve(value)));
}

/** A promise resolved `depth` microtask turns after a timer fires `ms` from now. */
function afterChain(s: VirtualScheduler, ms: number, depth: number): Promise<string> {
  return new Promise((resolve) =>
    s.setTimer(ms, () => {
      let p: Promise<void> = Promise.resolve();
      for (let i = 1; i < depth; i++) p = p.then(() => undefined);
      void p.then(() => resolve('chained'));
    }),
  );
}

describe('settle', () => {
  it('advances virtual time until the promise resolves and returns its value', async () => {
    const s = new VirtualScheduler(T0);
    expect(await settle(s, after(s, 250, 'v'))).toBe('v');
    expect(s.now()).toBe(T0 + 250);
  });

  it('rethrows the rejection of the promise (the same error object)', async () => {
    const s = new VirtualScheduler(T0);
    const err = new TimeoutError();
    const p = new Promise((_, reject) => s.setTimer(30, () => reject(err)));
    await expect(settle(s, p)).rejects.toBe(err);
    expect(s.now()).toBe(T0 + 30);
  });

  it('gives up with VirtualTimeLimitError after exactly limitMs of virtual time', async () => {
    const s = new VirtualScheduler(T0);
    const never = new Promise<void>(() => {});
    const err = await settle(s, never, { limitMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VirtualTimeLimitError);
    expect(err).not.toBeInstanceOf(TimeoutError);
    expect((err as VirtualTimeLimitError).limitMs).toBe(500);
    expect(s.now()).toBe(T0 + 500);
    // A number is the limit too; the default is 20 000 ms.
    await expect(settle(s, never, 7)).rejects.toBeInstanceOf(VirtualTimeLimitError);
    expect(s.now()).toBe(T0 + 507);
    await expect(settle(s, never)).rejects.toBeInstanceOf(VirtualTimeLimitError);
    expect(s.now()).toBe(T0 + 507 + DEFAULT_VIRTUAL_LIMIT_MS);
  });

  it('a promise due one step before the limit still settles; one due after it does not', async () => {
    const s = new VirtualScheduler(T0);
    expect(await settle(s, after(s, 100, 1), 100)).toBe(1);
    await expect(settle(s, after(s, 101, 2), 100)).rejects.toBeInstanceOf(VirtualTimeLimitError);
  });

  it('takes one step even for a promise that already settled', async () => {
    const s = new VirtualScheduler(T0);
    expect(await settle(s, Promise.resolve(3))).toBe(3);
    expect(s.now()).toBe(T0 + 1);
  });

  it('steps by stepMs', async () => {
    const s = new VirtualScheduler(T0);
    expect(await settle(s, after(s, 25, 'x'), { stepMs: 10 })).toBe('x');
    expect(s.now()).toBe(T0 + 30);
    // The last step is cut at the limit.
    await expect(settle(s, new Promise(() => {}), { stepMs: 10, limitMs: 25 })).rejects.toBeInstanceOf(VirtualTimeLimitError);
    expect(s.now()).toBe(T0 + 55);
  });

  it('flushes microtasks after each step: a short await chain completes in the same virtual ms', async () => {
    const s = new VirtualScheduler(T0);
    expect(await settle(s, afterChain(s, 5, 3))).toBe('chained');
    expect(s.now()).toBe(T0 + 5);
    // With one microtask turn per step, the chain still completes, only later in virtual time.
    const t = s.now();
    expect(await settle(s, afterChain(s, 5, 3), { microtasks: 1 })).toBe('chained');
    expect(s.now()).toBeGreaterThan(t + 5);
  });

  it('rejects invalid options with InvalidArgumentError', async () => {
    const s = new VirtualScheduler(T0);
    await expect(settle(s, Promise.resolve(), { limitMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(settle(s, Promise.resolve(), { stepMs: 1.5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(settle(s, Promise.resolve(), { microtasks: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(settle(s, Promise.resolve(), Number.NaN)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(s.now()).toBe(T0);
  });
});

describe('runUntil', () => {
  it('returns without advancing when the condition already holds', async () => {
    const s = new VirtualScheduler(T0);
    await runUntil(s, () => true);
    expect(s.now()).toBe(T0);
  });

  it('advances until the condition holds', async () => {
    const s = new VirtualScheduler(T0);
    let flag = false;
    s.setTimer(120, () => (flag = true));
    await runUntil(s, () => flag);
    expect(s.now()).toBe(T0 + 120);
  });

  it('sees state changed by promise callbacks, not only by timers', async () => {
    const s = new VirtualScheduler(T0);
    let value = '';
    void afterChain(s, 40, 3).then((v) => (value = v));
    await runUntil(s, () => value === 'chained');
    expect(s.now()).toBe(T0 + 40);
  });

  it('gives up with VirtualTimeLimitError after limitMs', async () => {
    const s = new VirtualScheduler(T0);
    const err = await runUntil(s, () => false, 300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VirtualTimeLimitError);
    expect((err as Error).message).toContain('300 ms');
    expect(s.now()).toBe(T0 + 300);
  });

  it('propagates an exception thrown by the condition', async () => {
    const s = new VirtualScheduler(T0);
    const boom = new Error('boom');
    await expect(
      runUntil(s, () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });

  it('rejects invalid options with InvalidArgumentError', async () => {
    const s = new VirtualScheduler(T0);
    await expect(runUntil(s, () => true, -5)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(runUntil(s, () => true, { stepMs: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('flushMicrotasks', () => {
  it('runs a callback chain `turns` links deep, and does not drain a much longer one', async () => {
    const reached: number[] = [];
    let p: Promise<void> = Promise.resolve();
    for (let i = 1; i <= 40; i++) p = p.then(() => void reached.push(i));
    await flushMicrotasks(3);
    expect(reached.slice(0, 3)).toEqual([1, 2, 3]);
    expect(reached.length).toBeLessThan(10);
    await flushMicrotasks(40);
    expect(reached).toHaveLength(40);
  });

  it('rejects a negative or fractional turn count', async () => {
    await expect(flushMicrotasks(-1)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(flushMicrotasks(0.5)).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('driving a ReplicatedLog (soloProtocol, nullTransport)', () => {
  class Joined implements StateMachine<string, void, string> {
    text = '';
    apply(cmd: Uint8Array): string {
      this.text += utf8Decode(cmd);
      return this.text;
    }
    query(): string {
      return this.text;
    }
    snapshot(): Uint8Array {
      return utf8Encode(this.text);
    }
    restore(data: Uint8Array): void {
      this.text = utf8Decode(data);
    }
  }

  it('settles proposals and reads, and runUntil waits for the state machine', async () => {
    const s = new VirtualScheduler(T0);
    const sm = new Joined();
    const transport = nullTransport('n1');
    const log = new ReplicatedLog({
      id: 'n1',
      protocol: soloProtocol(),
      storage: new MemoryStorage(),
      transport,
      stateMachine: sm,
      bootstrap: ['n1'],
      scheduler: s,
      seed: 1,
    });
    await log.start();
    expect(await settle(s, log.propose(utf8Encode('a')))).toBe('a');
    void log.propose(utf8Encode('b'));
    await runUntil(s, () => sm.text === 'ab');
    expect(await settle(s, log.read(undefined))).toBe('ab');
    await log.stop();
    // The solo core sends nothing, so the null transport saw nothing.
    expect(transport.stats()).toEqual({ sent: 0, received: 0, dropped: 0, malformed: 0 });
  });
});

describe('nullTransport', () => {
  it('drops and counts every message it is given', () => {
    const t = nullTransport('n1');
    t.send([
      { type: 1, from: 'n1', to: 'n2' },
      { type: 1, from: 'n1', to: 'n3' },
    ]);
    expect(t.id).toBe('n1');
    expect(t.stats()).toEqual({ sent: 2, received: 0, dropped: 2, malformed: 0 });
  });
});
