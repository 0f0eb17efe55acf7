/**
 * The sequential specification of a key-value register map (get / put / delete / cas), for the
 * linearizability checker. Keys are independent, so histories are partitioned per key.
 */
import type { Operation } from './history.js';
import type { Model } from './linearizability.js';

/** A key-value operation as a client asked it. Values are strings; absent is `null`. */
export type KvInput =
  | { readonly f: 'get'; readonly key: string }
  | { readonly f: 'put'; readonly key: string; readonly value: string }
  | { readonly f: 'delete'; readonly key: string }
  /** Compare-and-set: set `value` if the current value is `expected` (`null`: absent). */
  | { readonly f: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string };

/**
 * What a key-value operation answered. Fields a service does not report are left out and not
 * checked.
 * - get: `value` (the value read, `null` if absent);
 * - delete: `existed` (whether the key was present), optional;
 * - cas: `ok` (whether the swap happened).
 */
export interface KvOutput {
  readonly value?: string | null;
  readonly existed?: boolean;
  readonly ok?: boolean;
}

/** A key-value history operation. */
export type KvOperation = Operation<KvInput, KvOutput>;

/** The state of one key: its value or `null`. */
export type KvState = string | null;

const ABSENT = 0; // memo key of an absent value (strings never equal a number)

/**
 * The key-value model: one register per key, partitioned by key (Porcupine's `kvModel`).
 */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.f) {
      case 'get':
        return { ok: output === undefined || output.value === undefined || output.value === state, state };
      case 'put':
        return { ok: true, state: input.value };
      case 'delete':
        return { ok: output?.existed === undefined || output.existed === (state !== null), state: null };
      case 'cas': {
        const swapped = state === input.expected;
        const ok = output?.ok === undefined || output.ok === swapped;
        return { ok, state: swapped ? input.value : state };
      }
    }
  },
  key: (state) => (state === null ? ABSENT : state),
  partition(ops) {
    const byKey = new Map<string, KvOperation[]>();
    for (const o of ops) {
      let list = byKey.get(o.input.key);
      if (!list) byKey.set(o.input.key, (list = []));
      list.push(o);
    }
    return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
  },
  readOnly: (input) => input.f === 'get',
  blindWrite: (input) => input.f === 'put' || input.f === 'delete',
  describe: describeKvOperation,
};

/** A one-line description such as `c3 cas(x, 1→2) = true [ok]`. */
export function describeKvOperation(op: KvOperation): string {
  const i = op.input;
  let call: string;
  switch (i.f) {
    case 'get':
      call = `get(${i.key})`;
      break;
    case 'put':
      call = `put(${i.key}, ${i.value})`;
      break;
    case 'delete':
      call = `delete(${i.key})`;
      break;
    case 'cas':
      call = `cas(${i.key}, ${i.expected ?? '∅'}→${i.value})`;
      break;
  }
  let out = '';
  if (op.status === 'ok' && op.output) {
    if (i.f === 'get') out = ` = ${op.output.value ?? '∅'}`;
    else if (i.f === 'cas' && op.output.ok !== undefined) out = ` = ${op.output.ok}`;
    else if (i.f === 'delete' && op.output.existed !== undefined) out = ` = ${op.output.existed}`;
  }
  return `c${op.client} ${call}${out} [${op.status}]`;
}
