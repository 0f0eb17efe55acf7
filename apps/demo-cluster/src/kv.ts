/**
 * The demo's state machine: `@synod/kv`'s {@link KvStateMachine}, with each result tagged with
 * the log index it was applied at (so the gateway can show where a write landed). Sessions
 * cache the tagged result, so an exactly-once retry answers the original index.
 */
import { BinaryReader, BinaryWriter, InvalidArgumentError, type ApplyContext, type StateMachine } from '@synod/log';
import { encodeKvCommand, KvStateMachine, type KvQuery, type KvQueryResult, type KvResult } from '@synod/kv';
import type { KvOperation, ProposeResult } from './ipc.js';

/** A KV result and the index of the entry that produced it. */
export interface IndexedKvResult {
  readonly index: number;
  readonly result: KvResult;
}

/** Encodes a gateway operation as a `@synod/kv` command (throws InvalidArgumentError for a bad key). */
export function encodeKvOperation(op: KvOperation): Uint8Array {
  return encodeKvCommand(op.type === 'put' ? { type: 'put', key: op.key, value: op.value } : { type: 'delete', key: op.key });
}

/** Converts a state-machine result into the gateway's answer; an error result becomes InvalidArgumentError. */
export function toProposeResult(r: IndexedKvResult): Omit<ProposeResult, 'leader'> {
  const res = r.result;
  switch (res.type) {
    case 'put':
      return { index: r.index, existed: res.previous !== null };
    case 'delete':
      return { index: r.index, existed: res.deleted };
    case 'error':
      throw new InvalidArgumentError(`the state machine refused the command: ${res.message}`);
    default:
      return { index: r.index, existed: false };
  }
}

/** {@link KvStateMachine} with index-tagged results. */
export class IndexedKv implements StateMachine<IndexedKvResult, KvQuery, KvQueryResult> {
  readonly kv = new KvStateMachine();

  apply(command: Uint8Array, ctx: ApplyContext): IndexedKvResult {
    return { index: ctx.index, result: this.kv.apply(command, ctx) };
  }
  query(q: KvQuery): KvQueryResult {
    return this.kv.query(q);
  }
  snapshot(): Uint8Array {
    return this.kv.snapshot();
  }
  restore(data: Uint8Array): void {
    this.kv.restore(data);
  }
  encodeResult(r: IndexedKvResult): Uint8Array {
    return new BinaryWriter(32).uvarint(r.index).bytes(this.kv.encodeResult(r.result)).finish();
  }
  decodeResult(bytes: Uint8Array): IndexedKvResult {
    const rd = new BinaryReader(bytes);
    const index = rd.uvarint();
    return { index, result: this.kv.decodeResult(rd.bytes()) };
  }
}
