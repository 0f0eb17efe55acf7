/**
 * Property tests: the state machine against a deliberately simple model (a Map of byte arrays
 * with the documented semantics), over random command sequences mixed with random garbage.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeKvCommand, encodeKvCommand, type KvCommand, type KvResult, toBytes } from './codec.js';
import { KvStateMachine } from './state-machine.js';

type Model = Map<string, number[]>;

const arr = (v: Uint8Array | null) => (v === null ? null : Array.from(v));

/** The expected result of `cmd` on `model` (mutating it), in plain arrays. */
function modelApply(model: Model, cmd: KvCommand): unknown {
  const cur = model.get(cmd.key) ?? null;
  switch (cmd.type) {
    case 'get':
      return { type: 'get', value: cur };
    case 'put':
      model.set(cmd.key, Array.from(cmd.value));
      return { type: 'put', previous: cur };
    case 'delete':
      model.delete(cmd.key);
      return { type: 'delete', deleted: cur !== null, previous: cur };
    case 'cas': {
      const exp = arr(cmd.expected);
      const match = JSON.stringify(cur) === JSON.stringify(exp);
      if (!match) return { type: 'cas', ok: false, current: cur };
      if (cmd.value === null) model.delete(cmd.key);
      else model.set(cmd.key, Array.from(cmd.value));
      return { type: 'cas', ok: true, current: arr(cmd.value) };
    }
  }
}

function plainResult(r: KvResult): unknown {
  switch (r.type) {
    case 'get':
      return { type: 'get', value: arr(r.value) };
    case 'put':
      return { type: 'put', previous: arr(r.previous) };
    case 'delete':
      return { type: 'delete', deleted: r.deleted, previous: arr(r.previous) };
    case 'cas':
      return { type: 'cas', ok: r.ok, current: arr(r.current) };
    case 'error':
      return { type: 'error' };
  }
}

function plainState(sm: KvStateMachine): [string, number[]][] {
  return [...sm.entries()].map(([k, v]) => [k, Array.from(v)] as [string, number[]]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
function plainModel(m: Model): [string, number[]][] {
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

const key = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('a', 'b', 'c', 'ü', '', 'user/1', '😀') },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
);
const value = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(toBytes('x'), toBytes('y'), new Uint8Array(0)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 10 }) },
);
const optValue = fc.option(value, { nil: null, freq: 3 });
const command: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({ type: fc.constant('get' as const), key }),
  fc.record({ type: fc.constant('put' as const), key, value }),
  fc.record({ type: fc.constant('delete' as const), key }),
  fc.record({ type: fc.constant('cas' as const), key, expected: optValue, value: optValue }),
);
/** Encoded commands, plus random garbage and corrupted real commands. */
const input: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 8, arbitrary: command.map(encodeKvCommand) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }) },
  {
    weight: 1,
    arbitrary: fc.tuple(command, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([c, pos, byte]) => {
      const bytes = encodeKvCommand(c).slice();
      bytes[pos % bytes.length] = byte;
      return bytes;
    }),
  },
);

describe('KvStateMachine against a model (fast-check)', () => {
  it('every result and the final state match the model; garbage gives error results and changes nothing', () => {
    fc.assert(
      fc.property(fc.array(input, { maxLength: 80 }), (inputs) => {
        const sm = new KvStateMachine();
        const model: Model = new Map();
        inputs.forEach((bytes, i) => {
          let cmd: KvCommand | null = null;
          try {
            cmd = decodeKvCommand(bytes);
          } catch {
            cmd = null;
          }
          const before = cmd === null ? JSON.stringify(plainState(sm)) : '';
          const result = sm.apply(bytes, { index: i + 1 });
          if (cmd === null) {
            expect(result.type).toBe('error');
            expect(JSON.stringify(plainState(sm))).toBe(before);
          } else {
            expect(plainResult(result)).toEqual(modelApply(model, cmd));
          }
        });
        expect(plainState(sm)).toEqual(plainModel(model));
        const size = sm.query({ type: 'size' });
        expect(size).toEqual({ type: 'size', keys: model.size, valueBytes: [...model.values()].reduce((n, v) => n + v.length, 0) });
      }),
      { numRuns: 300 },
    );
  });

  it('snapshot/restore at any point continues identically (results and bytes)', () => {
    fc.assert(
      fc.property(fc.array(input, { maxLength: 60 }), fc.nat(), (inputs, cut) => {
        const at = inputs.length === 0 ? 0 : cut % (inputs.length + 1);
        const a = new KvStateMachine();
        inputs.slice(0, at).forEach((c, i) => a.apply(c, { index: i + 1 }));
        const b = new KvStateMachine();
        b.restore(a.snapshot().slice());
        for (let i = at; i < inputs.length; i++) {
          expect(b.apply(inputs[i]!, { index: i + 1 })).toEqual(a.apply(inputs[i]!, { index: i + 1 }));
        }
        expect(Array.from(b.snapshot())).toEqual(Array.from(a.snapshot()));
      }),
      { numRuns: 200 },
    );
  });

  it('snapshots are canonical: any insertion order of the same contents gives the same bytes', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(key, value), { selector: (kv) => kv[0], maxLength: 20 }), fc.nat(), (pairs, seed) => {
        const a = new KvStateMachine();
        pairs.forEach(([k, v], i) => a.apply(encodeKvCommand({ type: 'put', key: k, value: v }), { index: i + 1 }));
        const shuffled = [...pairs];
        let s = seed;
        for (let i = shuffled.length - 1; i > 0; i--) {
          s = (s * 1103515245 + 12345) % 2147483648;
          const j = s % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        const b = new KvStateMachine();
        b.apply(encodeKvCommand({ type: 'put', key: 'temp-⌛', value: new Uint8Array([1]) }), { index: 1 });
        shuffled.forEach(([k, v], i) => b.apply(encodeKvCommand({ type: 'put', key: k, value: v }), { index: i + 2 }));
        if (!pairs.some(([k]) => k === 'temp-⌛')) b.apply(encodeKvCommand({ type: 'delete', key: 'temp-⌛' }), { index: 999 });
        else b.apply(encodeKvCommand({ type: 'put', key: 'temp-⌛', value: pairs.find(([k]) => k === 'temp-⌛')![1] }), { index: 999 });
        expect(Array.from(b.snapshot())).toEqual(Array.from(a.snapshot()));
      }),
      { numRuns: 200 },
    );
  });

  it('commands round-trip through the codec', () => {
    fc.assert(
      fc.property(command, (cmd) => {
        expect(decodeKvCommand(encodeKvCommand(cmd))).toEqual(cmd);
      }),
      { numRuns: 500 },
    );
  });
});
