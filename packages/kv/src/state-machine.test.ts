import { InvalidArgumentError, MalformedMessageError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import { decodeKvResult, encodeKvCommand, type KvCommand, type KvResult, toBytes, toText } from './codec.js';
import { KvStateMachine } from './state-machine.js';

let index = 0;
function run(sm: KvStateMachine, cmd: KvCommand): KvResult {
  return sm.apply(encodeKvCommand(cmd), { index: ++index });
}
const b = (s: string) => toBytes(s);
const t = (v: Uint8Array | null) => toText(v);

describe('KvStateMachine operations', () => {
  it('put returns the previous value and stores the new one', () => {
    const sm = new KvStateMachine();
    expect(run(sm, { type: 'put', key: 'a', value: b('1') })).toEqual({ type: 'put', previous: null });
    const r = run(sm, { type: 'put', key: 'a', value: b('2') });
    expect(r.type).toBe('put');
    expect(t((r as { previous: Uint8Array | null }).previous)).toBe('1');
    expect(t(sm.get('a'))).toBe('2');
    expect(sm.size).toBe(1);
  });

  it('get through the log returns the value or null', () => {
    const sm = new KvStateMachine();
    expect(run(sm, { type: 'get', key: 'x' })).toEqual({ type: 'get', value: null });
    run(sm, { type: 'put', key: 'x', value: b('v') });
    expect(run(sm, { type: 'get', key: 'x' })).toEqual({ type: 'get', value: b('v') });
  });

  it('delete reports whether and what it deleted', () => {
    const sm = new KvStateMachine();
    expect(run(sm, { type: 'delete', key: 'a' })).toEqual({ type: 'delete', deleted: false, previous: null });
    run(sm, { type: 'put', key: 'a', value: b('1') });
    expect(run(sm, { type: 'delete', key: 'a' })).toEqual({ type: 'delete', deleted: true, previous: b('1') });
    expect(sm.get('a')).toBeNull();
    expect(sm.size).toBe(0);
  });

  it('cas with expected absent creates only if absent', () => {
    const sm = new KvStateMachine();
    expect(run(sm, { type: 'cas', key: 'lock', expected: null, value: b('me') })).toEqual({ type: 'cas', ok: true, current: b('me') });
    expect(run(sm, { type: 'cas', key: 'lock', expected: null, value: b('you') })).toEqual({ type: 'cas', ok: false, current: b('me') });
    expect(t(sm.get('lock'))).toBe('me');
  });

  it('cas with an expected value swaps only on an exact byte match', () => {
    const sm = new KvStateMachine();
    run(sm, { type: 'put', key: 'n', value: b('1') });
    expect(run(sm, { type: 'cas', key: 'n', expected: b('2'), value: b('3') })).toEqual({ type: 'cas', ok: false, current: b('1') });
    expect(run(sm, { type: 'cas', key: 'n', expected: b('1 '), value: b('3') })).toEqual({ type: 'cas', ok: false, current: b('1') });
    expect(run(sm, { type: 'cas', key: 'n', expected: b('1'), value: b('3') })).toEqual({ type: 'cas', ok: true, current: b('3') });
    expect(t(sm.get('n'))).toBe('3');
    // Expecting a value on an absent key fails.
    expect(run(sm, { type: 'cas', key: 'missing', expected: b('1'), value: b('x') })).toEqual({ type: 'cas', ok: false, current: null });
    expect(sm.get('missing')).toBeNull();
  });

  it('cas to null deletes on match; an empty value is not the same as absent', () => {
    const sm = new KvStateMachine();
    run(sm, { type: 'put', key: 'e', value: new Uint8Array(0) });
    expect(run(sm, { type: 'cas', key: 'e', expected: null, value: b('x') })).toMatchObject({ ok: false });
    expect(run(sm, { type: 'cas', key: 'e', expected: new Uint8Array(0), value: null })).toEqual({ type: 'cas', ok: true, current: null });
    expect(sm.get('e')).toBeNull();
    expect(sm.size).toBe(0);
    // cas(absent -> delete) on an absent key succeeds and changes nothing.
    expect(run(sm, { type: 'cas', key: 'e', expected: null, value: null })).toEqual({ type: 'cas', ok: true, current: null });
    expect(sm.size).toBe(0);
  });

  it('copies stored values out of the command buffer by default', () => {
    const sm = new KvStateMachine();
    const cmd = encodeKvCommand({ type: 'put', key: 'k', value: b('abc') });
    sm.apply(cmd, { index: 1 });
    cmd.fill(0); // the entry buffer being reused or mutated must not change the state
    expect(t(sm.get('k'))).toBe('abc');
    expect(sm.get('k')!.buffer).not.toBe(cmd.buffer);
  });

  it('with copyValues: false stores views of the command (zero-copy)', () => {
    const sm = new KvStateMachine({ copyValues: false });
    const cmd = encodeKvCommand({ type: 'put', key: 'k', value: b('abc') });
    sm.apply(cmd, { index: 1 });
    expect(sm.get('k')!.buffer).toBe(cmd.buffer);
    expect(t(sm.get('k'))).toBe('abc');
  });

  it('tracks counters and the applied index', () => {
    const sm = new KvStateMachine();
    sm.apply(encodeKvCommand({ type: 'put', key: 'a', value: b('1') }), { index: 7 });
    sm.apply(new Uint8Array([99]), { index: 8 });
    expect(sm.appliedCommands).toBe(2);
    expect(sm.rejectedCommands).toBe(1);
    expect(sm.lastAppliedIndex).toBe(8);
  });
});

describe('KvStateMachine malformed commands', () => {
  const cases: [string, Uint8Array, string][] = [
    ['an empty command', new Uint8Array(0), 'malformed'],
    ['an unknown op', new Uint8Array([42, 1, 97]), 'unknown-op'],
    ['op 0', new Uint8Array([0]), 'unknown-op'],
    ['a truncated key', new Uint8Array([2, 10, 97]), 'malformed'],
    ['a put without value', new Uint8Array([2, 1, 97]), 'malformed'],
    ['trailing bytes', new Uint8Array([3, 1, 97, 1]), 'malformed'],
    ['a bad cas tag', new Uint8Array([4, 1, 97, 7, 0]), 'malformed'],
    ['invalid UTF-8 in the key', new Uint8Array([1, 2, 0xff, 0xfe]), 'malformed'],
    ['a value length beyond the input', new Uint8Array([2, 1, 97, 0xff, 0xff, 0x03]), 'malformed'],
  ];
  for (const [name, bytes, code] of cases) {
    it(`returns an error result (never throws) for ${name} and changes nothing`, () => {
      const sm = new KvStateMachine();
      run(sm, { type: 'put', key: 'a', value: b('1') });
      const before = sm.snapshot().slice();
      const r = sm.apply(bytes, { index: 99 });
      expect(r.type).toBe('error');
      expect((r as { code: string }).code).toBe(code);
      expect(typeof (r as { message: string }).message).toBe('string');
      expect(Array.from(sm.snapshot())).toEqual(Array.from(before));
      // The error result survives the session cache's codec.
      expect(decodeKvResult(sm.encodeResult(r))).toEqual(r);
    });
  }

  it('does not throw for a non-Uint8Array command', () => {
    const sm = new KvStateMachine();
    expect(sm.apply('put a 1' as unknown as Uint8Array, { index: 1 })).toMatchObject({ type: 'error', code: 'malformed' });
  });

  it('every replica returns the same error result for the same bytes', () => {
    const a = new KvStateMachine();
    const c = new KvStateMachine();
    const bad = new Uint8Array([4, 1, 97, 1, 9]);
    expect(a.apply(bad, { index: 1 })).toEqual(c.apply(bad, { index: 1 }));
  });
});

describe('KvStateMachine queries', () => {
  const filled = () => {
    const sm = new KvStateMachine();
    for (const k of ['b', 'a', 'user/2', 'user/10', 'user/1', 'c']) run(sm, { type: 'put', key: k, value: b(`v-${k}`) });
    return sm;
  };

  it('get, size', () => {
    const sm = filled();
    expect(sm.query({ type: 'get', key: 'a' })).toEqual({ type: 'get', value: b('v-a') });
    expect(sm.query({ type: 'get', key: 'zz' })).toEqual({ type: 'get', value: null });
    const valueBytes = ['b', 'a', 'user/2', 'user/10', 'user/1', 'c'].reduce((n, k) => n + 2 + k.length, 0);
    expect(sm.query({ type: 'size' })).toEqual({ type: 'size', keys: 6, valueBytes });
    run(sm, { type: 'delete', key: 'a' });
    run(sm, { type: 'put', key: 'b', value: b('longer value') });
    expect(sm.query({ type: 'size' })).toEqual({ type: 'size', keys: 5, valueBytes: valueBytes - 3 - 3 + 12 });
  });

  it('keys are sorted, filtered by prefix, paged with after and limit', () => {
    const sm = filled();
    expect(sm.query({ type: 'keys' })).toEqual({ type: 'keys', keys: ['a', 'b', 'c', 'user/1', 'user/10', 'user/2'], more: false });
    expect(sm.query({ type: 'keys', prefix: 'user/' })).toEqual({ type: 'keys', keys: ['user/1', 'user/10', 'user/2'], more: false });
    expect(sm.query({ type: 'keys', limit: 2 })).toEqual({ type: 'keys', keys: ['a', 'b'], more: true });
    expect(sm.query({ type: 'keys', after: 'b', limit: 2 })).toEqual({ type: 'keys', keys: ['c', 'user/1'], more: true });
    expect(sm.query({ type: 'keys', prefix: 'user/', after: 'user/10' })).toEqual({ type: 'keys', keys: ['user/2'], more: false });
  });

  it('rejects invalid queries with InvalidArgumentError', () => {
    const sm = filled();
    expect(() => sm.query({ type: 'scan' } as never)).toThrow(InvalidArgumentError);
    expect(() => sm.query(null as never)).toThrow(InvalidArgumentError);
    expect(() => sm.query({ type: 'get', key: 1 } as never)).toThrow(InvalidArgumentError);
    expect(() => sm.query({ type: 'keys', limit: 0 })).toThrow(InvalidArgumentError);
    expect(() => sm.query({ type: 'keys', limit: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => sm.query({ type: 'keys', prefix: 3 } as never)).toThrow(InvalidArgumentError);
  });
});

describe('KvStateMachine snapshots', () => {
  it('round-trips through snapshot and restore', () => {
    const sm = new KvStateMachine();
    run(sm, { type: 'put', key: 'a', value: b('1') });
    run(sm, { type: 'put', key: 'ü-key', value: new Uint8Array([0, 255, 0]) });
    run(sm, { type: 'put', key: 'empty', value: new Uint8Array(0) });
    const snap = sm.snapshot().slice();
    const other = new KvStateMachine();
    run(other, { type: 'put', key: 'stale', value: b('x') });
    other.restore(snap);
    expect(other.get('stale')).toBeNull();
    expect(t(other.get('a'))).toBe('1');
    expect(Array.from(other.get('ü-key')!)).toEqual([0, 255, 0]);
    expect(other.get('empty')).toEqual(new Uint8Array(0));
    expect(other.query({ type: 'size' })).toEqual(sm.query({ type: 'size' }));
    expect(Array.from(other.snapshot())).toEqual(Array.from(snap));
  });

  it('restoring copies values out of the snapshot buffer by default', () => {
    const sm = new KvStateMachine();
    run(sm, { type: 'put', key: 'a', value: b('1') });
    const snap = sm.snapshot().slice();
    const other = new KvStateMachine();
    other.restore(snap);
    snap.fill(0);
    expect(t(other.get('a'))).toBe('1');
  });

  it('is canonical: the same contents give the same bytes whatever the history', () => {
    const x = new KvStateMachine();
    run(x, { type: 'put', key: 'b', value: b('2') });
    run(x, { type: 'put', key: 'a', value: b('1') });
    const y = new KvStateMachine();
    run(y, { type: 'put', key: 'a', value: b('0') });
    run(y, { type: 'put', key: 'z', value: b('9') });
    run(y, { type: 'put', key: 'b', value: b('2') });
    run(y, { type: 'delete', key: 'z' });
    run(y, { type: 'cas', key: 'a', expected: b('0'), value: b('1') });
    expect(Array.from(x.snapshot())).toEqual(Array.from(y.snapshot()));
  });

  it('an empty machine snapshots to a small fixed form; restore(empty bytes) clears', () => {
    const sm = new KvStateMachine();
    expect(Array.from(sm.snapshot())).toEqual([0x4b, 1, 0]);
    run(sm, { type: 'put', key: 'a', value: b('1') });
    sm.restore(new Uint8Array(0));
    expect(sm.size).toBe(0);
    expect(sm.query({ type: 'size' })).toEqual({ type: 'size', keys: 0, valueBytes: 0 });
  });

  it('rejects malformed snapshots with MalformedMessageError and keeps the current state', () => {
    const good = new KvStateMachine();
    run(good, { type: 'put', key: 'a', value: b('1') });
    run(good, { type: 'put', key: 'b', value: b('2') });
    const snap = good.snapshot().slice();
    const bads: Uint8Array[] = [
      new Uint8Array([0x00, 1, 0]), // wrong magic
      new Uint8Array([0x4b, 2, 0]), // newer version
      snap.subarray(0, snap.length - 1), // truncated
      new Uint8Array([...snap, 0]), // trailing byte
      new Uint8Array([0x4b, 1, 2, 1, 98, 0, 1, 97, 0]), // keys out of order (b, a)
      new Uint8Array([0x4b, 1, 2, 1, 97, 0, 1, 97, 0]), // duplicate key
      new Uint8Array([0x4b, 1, 100, 1, 97, 0]), // count larger than input
    ];
    for (const bad of bads) {
      const sm = new KvStateMachine();
      run(sm, { type: 'put', key: 'keep', value: b('me') });
      expect(() => sm.restore(bad)).toThrow(MalformedMessageError);
      expect(t(sm.get('keep'))).toBe('me');
      expect(sm.size).toBe(1);
    }
  });

  it('is deterministic: two replicas fed the same commands produce the same results and bytes', () => {
    const cmds: KvCommand[] = [];
    for (let i = 0; i < 500; i++) {
      const key = `k${(i * 7919) % 37}`;
      const v = b(`v${i}`);
      cmds.push(i % 5 === 0 ? { type: 'delete', key } : i % 7 === 0 ? { type: 'cas', key, expected: b(`v${i - 1}`), value: v } : { type: 'put', key, value: v });
    }
    const a = new KvStateMachine();
    const c = new KvStateMachine({ copyValues: false });
    const ra = cmds.map((cmd, i) => a.apply(encodeKvCommand(cmd), { index: i + 1 }));
    const rc = cmds.map((cmd, i) => c.apply(encodeKvCommand(cmd), { index: i + 1 }));
    expect(ra).toEqual(rc);
    expect(Array.from(a.snapshot())).toEqual(Array.from(c.snapshot()));
  });
});
