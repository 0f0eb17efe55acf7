import fc from 'fast-check';
import { createRandom } from '@synod/log';
import { describe, expect, it } from 'vitest';
import type { OpStatus } from './history.js';
import { HistoryRecorder, historyFromJson, historyToJson } from './history.js';
import { type KvInput, type KvOperation, type KvOutput, kvModel, type KvState } from './kv-model.js';
import { checkLinearizability } from './linearizability.js';

/** Builds an operation by hand: [call, return] in logical time, return Infinity for unknown. */
let nextId = 0;
function op(client: number, input: KvInput, call: number, ret: number, output?: KvOutput, status: OpStatus = 'ok'): KvOperation {
  return {
    id: nextId++,
    client,
    input,
    output: status === 'ok' ? (output ?? {}) : undefined,
    status,
    call,
    return: status === 'unknown' ? Infinity : ret,
    callTime: call,
    returnTime: status === 'unknown' ? Infinity : ret,
  };
}
const put = (key: string, value: string): KvInput => ({ f: 'put', key, value });
const get = (key: string): KvInput => ({ f: 'get', key });
const cas = (key: string, expected: string | null, value: string): KvInput => ({ f: 'cas', key, expected, value });
const del = (key: string): KvInput => ({ f: 'delete', key });
const check = (h: KvOperation[]) => checkLinearizability(kvModel, h);

describe('checkLinearizability over the key-value model: known histories', () => {
  it('accepts a sequential history', () => {
    const h = [op(0, put('x', '1'), 1, 2), op(0, get('x'), 3, 4, { value: '1' }), op(0, cas('x', '1', '2'), 5, 6, { ok: true }), op(0, get('x'), 7, 8, { value: '2' })];
    expect(check(h).outcome).toBe('ok');
  });

  it('accepts a read concurrent with a write seeing either value', () => {
    for (const seen of [null, '1']) {
      const h = [op(0, put('x', '1'), 1, 4), op(1, get('x'), 2, 3, { value: seen })];
      expect(check(h).outcome).toBe('ok');
    }
  });

  it('rejects a stale read after a completed write (the classic violation)', () => {
    const h = [op(0, put('x', '1'), 1, 2), op(1, get('x'), 3, 4, { value: null })];
    const r = check(h);
    expect(r.outcome).toBe('illegal');
    expect(r.failure?.candidates.map((o) => o.input.f)).toContain('get');
  });

  it('rejects a read of a value never written', () => {
    const h = [op(0, put('x', '1'), 1, 2), op(1, get('x'), 3, 4, { value: '7' })];
    expect(check(h).outcome).toBe('illegal');
  });

  it('rejects two reads that see two writes in opposite orders', () => {
    // put 1 and put 2 overlap; reader A sees 1 then 2, reader B (after A) sees 2 then 1.
    const h = [
      op(0, put('x', '1'), 1, 20),
      op(1, put('x', '2'), 2, 21),
      op(2, get('x'), 3, 4, { value: '1' }),
      op(2, get('x'), 5, 6, { value: '2' }),
      op(3, get('x'), 7, 8, { value: '1' }),
    ];
    expect(check(h).outcome).toBe('illegal');
  });

  it('checks cas outcomes against the value at the linearization point', () => {
    const ok = [op(0, put('x', 'a'), 1, 2), op(1, cas('x', 'a', 'b'), 3, 6, { ok: true }), op(2, cas('x', 'a', 'c'), 4, 7, { ok: false }), op(0, get('x'), 8, 9, { value: 'b' })];
    expect(check(ok).outcome).toBe('ok');
    // Two cas from the same expected value cannot both succeed.
    const bad = [op(0, put('x', 'a'), 1, 2), op(1, cas('x', 'a', 'b'), 3, 6, { ok: true }), op(2, cas('x', 'a', 'c'), 4, 7, { ok: true })];
    expect(check(bad).outcome).toBe('illegal');
    // cas on an absent key with expected null creates it.
    expect(check([op(0, cas('y', null, 'z'), 1, 2, { ok: true }), op(1, get('y'), 3, 4, { value: 'z' })]).outcome).toBe('ok');
  });

  it('checks delete', () => {
    const h = [op(0, put('x', '1'), 1, 2), op(0, del('x'), 3, 4, { existed: true }), op(1, get('x'), 5, 6, { value: null })];
    expect(check(h).outcome).toBe('ok');
    const bad = [op(0, put('x', '1'), 1, 2), op(0, del('x'), 3, 4, { existed: false })];
    expect(check(bad).outcome).toBe('illegal');
  });

  it('ignores failed operations: their effects must not be visible', () => {
    const h = [op(0, put('x', '1'), 1, 2, undefined, 'fail'), op(1, get('x'), 3, 4, { value: null })];
    expect(check(h).outcome).toBe('ok');
    const bad = [op(0, put('x', '1'), 1, 2, undefined, 'fail'), op(1, get('x'), 3, 4, { value: '1' })];
    expect(check(bad).outcome).toBe('illegal');
  });

  it('lets an unknown write take effect late, or never', () => {
    // unknown put(1) is invoked first, takes effect after put(2) completed.
    const late = [op(0, put('x', '1'), 1, 0, undefined, 'unknown'), op(1, put('x', '2'), 2, 3), op(1, get('x'), 4, 5, { value: '1' })];
    expect(check(late).outcome).toBe('ok');
    const never = [op(0, put('x', '1'), 1, 0, undefined, 'unknown'), op(1, get('x'), 2, 3, { value: null }), op(1, get('x'), 4, 5, { value: null })];
    expect(check(never).outcome).toBe('ok');
  });

  it('still rejects an unknown write that is seen to take effect twice', () => {
    const h = [
      op(0, put('x', '1'), 1, 0, undefined, 'unknown'),
      op(1, put('x', '2'), 2, 3),
      op(1, get('x'), 4, 5, { value: '1' }),
      op(1, put('x', '2'), 6, 7),
      op(1, get('x'), 8, 9, { value: '1' }),
    ];
    expect(check(h).outcome).toBe('illegal');
  });

  it('never lets an unknown write take effect before its invocation', () => {
    const h = [op(1, get('x'), 1, 2, { value: '1' }), op(0, put('x', '1'), 3, 0, undefined, 'unknown')];
    expect(check(h).outcome).toBe('illegal');
  });

  it('partitions by key: a violation on one key is found among many healthy keys', () => {
    const h: KvOperation[] = [];
    let t = 1;
    for (let k = 0; k < 20; k++) {
      h.push(op(k, put(`k${k}`, 'v'), t, t + 1));
      h.push(op(k, get(`k${k}`), t + 2, t + 3, { value: 'v' }));
      t += 4;
    }
    expect(check(h).outcome).toBe('ok');
    h.push(op(99, get('k7'), t, t + 1, { value: null }));
    const r = check(h);
    expect(r.outcome).toBe('illegal');
    expect(r.partitions).toBe(20);
    expect(r.failure?.operations.every((o) => o.input.key === 'k7')).toBe(true);
  });

  it('reports the deepest linearizable prefix of an illegal partition', () => {
    const h = [op(0, put('x', '1'), 1, 2), op(0, put('x', '2'), 3, 4), op(1, get('x'), 5, 6, { value: '1' })];
    const r = check(h);
    expect(r.outcome).toBe('illegal');
    expect(r.failure?.linearized.map((o) => o.input.f)).toEqual(['put', 'put']);
    expect(r.failure?.candidates.map((o) => o.input.f)).toEqual(['get']);
  });

  it('answers unknown when the step budget runs out', () => {
    // Many concurrent writes and an impossible read force a large search.
    const h: KvOperation[] = [];
    for (let i = 0; i < 14; i++) h.push(op(i, put('x', String(i)), 1 + i, 100 + i));
    h.push(op(50, get('x'), 200, 201, { value: 'never' }));
    expect(checkLinearizability(kvModel, h, { maxSteps: 50 }).outcome).toBe('unknown');
    expect(checkLinearizability(kvModel, h).outcome).toBe('illegal');
  });
});

/**
 * A history that is linearizable by construction: each operation gets a linearization point
 * strictly inside [call, return]; outputs are computed by applying operations in the order of
 * those points. Unknown operations take effect at their point or, with probability 1/2, never.
 */
function generateHistory(seed: number, n: number, opts: { clients?: number; keys?: number; unknownRate?: number; failRate?: number; valueRange?: number } = {}): KvOperation[] {
  const rnd = createRandom(seed);
  const clients = opts.clients ?? 5;
  const keys = opts.keys ?? 3;
  const unknownRate = opts.unknownRate ?? 0.05;
  const failRate = opts.failRate ?? 0.05;
  interface Pending { client: number; input: KvInput; call: number; lp: number; ret: number; status: OpStatus; applied: boolean; output?: KvOutput }
  const pend: Pending[] = [];
  const clientFree = new Array<number>(clients).fill(0);
  const written = new Map<string, string[]>();
  for (let i = 0; i < n; i++) {
    const c = rnd.int(0, clients - 1);
    const call = clientFree[c]! + rnd.int(1, 5);
    const dur = rnd.int(2, 40);
    const lp = call + rnd.int(1, dur - 1);
    const ret = call + dur;
    const key = `k${rnd.int(0, keys - 1)}`;
    // Written values are unique (as in Jepsen's workloads); cas expects a recently written one.
    const v = opts.valueRange ? String(rnd.int(0, opts.valueRange - 1)) : `v${i}`;
    const recent = written.get(key) ?? [];
    const expected = rnd.next() < 0.15 || recent.length === 0 ? null : recent[Math.max(0, recent.length - rnd.int(1, 3))]!;
    const roll = rnd.next();
    const input: KvInput = roll < 0.4 ? get(key) : roll < 0.7 ? put(key, v) : roll < 0.8 ? del(key) : cas(key, expected, v);
    if (input.f === 'put' || input.f === 'cas') written.set(key, [...recent.slice(-5), v]);
    const r = rnd.next();
    const status: OpStatus = r < unknownRate ? 'unknown' : r < unknownRate + failRate ? 'fail' : 'ok';
    const applied = status === 'ok' || (status === 'unknown' && rnd.next() < 0.5);
    pend.push({ client: c, input, call, lp, ret, status, applied });
    // A client whose op is unknown moves on (like a timed out client); its op may still land.
    clientFree[c] = ret;
  }
  const state = new Map<string, KvState>();
  for (const p of [...pend].sort((a, b) => a.lp - b.lp)) {
    if (!p.applied) continue;
    const cur = state.get(p.input.key) ?? null;
    const { state: next } = kvModel.step(cur, p.input, undefined);
    const i = p.input;
    p.output = i.f === 'get' ? { value: cur } : i.f === 'cas' ? { ok: cur === i.expected } : i.f === 'delete' ? { existed: cur !== null } : {};
    state.set(p.input.key, next);
  }
  // Distinct logical times: scale by 2 and break ties by index.
  return pend.map((p, id) => ({
    id,
    client: p.client,
    input: p.input,
    output: p.status === 'ok' ? p.output : undefined,
    status: p.status,
    call: p.call * 4 + 1,
    return: p.status === 'unknown' ? Infinity : p.ret * 4 + 2,
    callTime: p.call,
    returnTime: p.status === 'unknown' ? Infinity : p.ret,
  }));
}

/** Exhaustive reference: tries every subset of unknown ops and every order consistent with real time. */
function bruteForce(h: KvOperation[]): boolean {
  const ops = h.filter((o) => o.status !== 'fail');
  const unknown = ops.filter((o) => o.status === 'unknown');
  for (let mask = 0; mask < 1 << unknown.length; mask++) {
    const chosen = ops.filter((o) => o.status === 'ok' || (unknown.indexOf(o) >= 0 && mask & (1 << unknown.indexOf(o))));
    const used = new Array<boolean>(chosen.length).fill(false);
    const states = new Map<string, KvState>();
    const rec = (done: number): boolean => {
      if (done === chosen.length) return true;
      for (let i = 0; i < chosen.length; i++) {
        if (used[i]) continue;
        const o = chosen[i]!;
        // o may go next only if no unused op returned before o was called.
        if (chosen.some((p, j) => !used[j] && j !== i && p.return < o.call)) continue;
        const cur = states.get(o.input.key) ?? null;
        const r = kvModel.step(cur, o.input, o.status === 'ok' ? o.output : undefined);
        if (!r.ok) continue;
        used[i] = true;
        states.set(o.input.key, r.state);
        if (rec(done + 1)) return true;
        states.set(o.input.key, cur);
        used[i] = false;
      }
      return false;
    };
    if (rec(0)) return true;
  }
  return false;
}

describe('checkLinearizability: generated histories', () => {
  it('accepts every history that is linearizable by construction (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 200 }), (seed, n) => {
        expect(checkLinearizability(kvModel, generateHistory(seed, n)).outcome).toBe('ok');
      }),
      { numRuns: 200 },
    );
  });

  it('agrees with an exhaustive search on small corrupted histories (property)', () => {
    let illegal = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 4 }), (seed, victim, value) => {
        const h = generateHistory(seed, 7, { clients: 3, keys: 1, unknownRate: 0.2, failRate: 0.1, valueRange: 4 });
        // Corrupt one output: a read sees another value, or a cas flips.
        const v = h[victim]!;
        if (v.status === 'ok' && v.input.f === 'get') h[victim] = { ...v, output: { value: value === 0 ? null : String(value - 1) } };
        if (v.status === 'ok' && v.input.f === 'cas') h[victim] = { ...v, output: { ok: !v.output!.ok } };
        const expected = bruteForce(h);
        if (!expected) illegal++;
        expect(checkLinearizability(kvModel, h).outcome).toBe(expected ? 'ok' : 'illegal');
      }),
      { numRuns: 400 },
    );
    // The corruption must have produced both verdicts, or the property tested little.
    expect(illegal).toBeGreaterThan(20);
  });

  it('checks a 10,000-operation history and finds one corrupted read in it', () => {
    const h = generateHistory(42, 10_000, { clients: 10, keys: 5, unknownRate: 0.01 });
    expect(h.length).toBe(10_000);
    expect(checkLinearizability(kvModel, h).outcome).toBe('ok');
    // Corrupt the last successful read of a key that was written: it now sees a value never written.
    let idx = h.length - 1;
    while (!(h[idx]!.status === 'ok' && h[idx]!.input.f === 'get')) idx--;
    const bad = h.slice();
    bad[idx] = { ...h[idx]!, output: { value: 'never-written' } };
    const r = checkLinearizability(kvModel, bad);
    expect(r.outcome).toBe('illegal');
    expect(r.failure?.candidates.some((o) => o.id === h[idx]!.id)).toBe(true);
  });
});

describe('HistoryRecorder', () => {
  it('records invocations and completions in logical order; pending ops become unknown', () => {
    const rec = new HistoryRecorder<KvInput, KvOutput>();
    const a = rec.invoke(0, put('x', '1'), 10, 'n1');
    const b = rec.invoke(1, get('x'), 10, 'n2');
    rec.ok(a, {}, 12);
    rec.ok(a, { value: 'ignored' }, 13); // first completion wins
    const c = rec.invoke(2, put('x', '3'), 14);
    rec.fail(c, 15, 'NotLeaderError');
    const h = rec.history();
    expect(h[a]).toMatchObject({ status: 'ok', call: 1, return: 3, callTime: 10, returnTime: 12, node: 'n1' });
    expect(h[b]).toMatchObject({ status: 'unknown', return: Infinity });
    expect(h[c]).toMatchObject({ status: 'fail', error: 'NotLeaderError' });
    expect(rec.pending).toBe(1);
  });

  it('settles unknown outcomes (resolve: took effect by then; discard: never happened) and round-trips through JSON', () => {
    const rec = new HistoryRecorder<KvInput, KvOutput>();
    const a = rec.invoke(0, put('x', '1'), 1);
    rec.unknown(a, 'TimeoutError');
    const b = rec.invoke(1, put('x', '2'), 2);
    rec.unknown(b, 'TimeoutError');
    const seen = rec.mark();
    rec.resolve(a, seen, 9);
    rec.discard(b, 'never applied');
    const r = rec.invoke(2, get('x'), 10);
    rec.ok(r, { value: '1' }, 11);
    const h = rec.history();
    expect(h[a]).toMatchObject({ status: 'unknown', return: seen, returnTime: 9 });
    expect(h[b]).toMatchObject({ status: 'fail', error: 'never applied' });
    expect(checkLinearizability(kvModel, h).outcome).toBe('ok');
    const back = historyFromJson<KvInput, KvOutput>(historyToJson(h));
    expect(back).toEqual(h);
    expect(back[b]!.return).toBe(Infinity);
  });
});
