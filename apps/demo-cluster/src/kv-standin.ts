/**
 * A minimal key-value {@link StateMachine} used by the demo until `@synod/kv` lands. Commands:
 * `op u8 (1 put, 2 delete) | key string | value bytes (put)`. Results: `{ index, existed }`.
 * Queries: `{ key }` → value or `null`. Deterministic; snapshots sort keys.
 */
import { BinaryReader, BinaryWriter, type ApplyContext, type StateMachine } from '@synod/log';
import type { KvOperation, ProposeResult } from './ipc.js';

/** Encodes a KV operation as a command. */
export function encodeKvOperation(op: KvOperation): Uint8Array {
  const w = new BinaryWriter(16 + op.key.length + (op.type === 'put' ? op.value.length : 0));
  if (op.type === 'put') w.u8(1).string(op.key).bytes(op.value);
  else w.u8(2).string(op.key);
  return w.finish();
}

/** The stand-in KV state machine. */
export class StandinKv implements StateMachine<ProposeResult, { key: string }, Uint8Array | null> {
  private readonly map = new Map<string, Uint8Array>();

  get size(): number {
    return this.map.size;
  }

  apply(command: Uint8Array, ctx: ApplyContext): ProposeResult {
    try {
      const r = new BinaryReader(command);
      const op = r.u8();
      const key = r.string();
      if (op === 1) {
        const value = r.bytes().slice();
        const existed = this.map.has(key);
        this.map.set(key, value);
        return { index: ctx.index, existed };
      }
      if (op === 2) {
        const existed = this.map.delete(key);
        return { index: ctx.index, existed };
      }
    } catch {
      // malformed command: an error result, never a throw
    }
    return { index: ctx.index, existed: false };
  }

  query(q: { key: string }): Uint8Array | null {
    return this.map.get(q.key) ?? null;
  }

  snapshot(): Uint8Array {
    const w = new BinaryWriter();
    const keys = [...this.map.keys()].sort();
    w.uvarint(keys.length);
    for (const k of keys) w.string(k).bytes(this.map.get(k)!);
    return w.finish();
  }

  restore(data: Uint8Array): void {
    this.map.clear();
    const r = new BinaryReader(data);
    const n = r.uvarint();
    for (let i = 0; i < n; i++) {
      const k = r.string();
      this.map.set(k, r.bytes().slice());
    }
  }

  encodeResult(result: ProposeResult): Uint8Array {
    return new BinaryWriter(16).uvarint(result.index).u8(result.existed ? 1 : 0).finish();
  }

  decodeResult(bytes: Uint8Array): ProposeResult {
    const r = new BinaryReader(bytes);
    return { index: r.uvarint(), existed: r.u8() === 1 };
  }
}
