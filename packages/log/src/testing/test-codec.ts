/**
 * A tiny message type and codec for transport conformance tests, independent of any protocol.
 */
import { type BinaryReader, type BinaryWriter } from '../binary.js';
import type { Message, MessageCodec } from '../core.js';
import { MalformedMessageError } from '../errors.js';

/** A test message: a sequence number and an opaque payload. */
export interface TestMessage extends Message {
  readonly type: 1;
  readonly seq: number;
  readonly payload: Uint8Array;
}

/** Codec for {@link TestMessage}. Rejects any other type tag with MalformedMessageError. */
export const testCodec: MessageCodec<TestMessage> = {
  write(w: BinaryWriter, m: TestMessage) {
    w.u8(m.type).string(m.from).string(m.to).uvarint(m.seq).bytes(m.payload);
  },
  read(r: BinaryReader): TestMessage {
    const type = r.u8();
    if (type !== 1) throw new MalformedMessageError(`unknown test message type ${type}`);
    return { type: 1, from: r.string(), to: r.string(), seq: r.uvarint(), payload: r.bytes() };
  },
};

/** Builds a {@link TestMessage}. */
export function testMessage(from: string, to: string, seq: number, payload: Uint8Array = new Uint8Array(0)): TestMessage {
  return { type: 1, from, to, seq, payload };
}
