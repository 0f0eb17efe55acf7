import { describe, expect, it } from 'vitest';
import { CommandKind, decodeCommand, encodeCommand } from './envelope.js';
import { MalformedMessageError } from './errors.js';

describe('runtime command envelope', () => {
  it('round-trips every kind and keeps the payload as a view', () => {
    const payload = new Uint8Array([1, 2, 3]);
    for (const kind of [CommandKind.Plain, CommandKind.Session, CommandKind.OpenSession, CommandKind.CloseSession]) {
      const data = encodeCommand({ kind, origin: 'n1', originTag: 77, request: 9, time: 1_700_000_000_000, session: 5, seq: 3 }, payload);
      const e = decodeCommand(data);
      expect(e.kind).toBe(kind);
      expect(e.origin).toBe('n1');
      expect(e.originTag).toBe(77);
      expect(e.request).toBe(9);
      expect(e.time).toBe(1_700_000_000_000);
      expect(e.session).toBe(kind === CommandKind.Session || kind === CommandKind.CloseSession ? 5 : 0);
      expect(e.seq).toBe(kind === CommandKind.Session ? 3 : 0);
      expect(Array.from(e.payload)).toEqual([1, 2, 3]);
      expect(e.payload.buffer).toBe(data.buffer);
    }
  });

  it('rejects unknown kinds and truncated headers with MalformedMessageError', () => {
    expect(() => decodeCommand(new Uint8Array([9]))).toThrow(MalformedMessageError);
    expect(() => decodeCommand(new Uint8Array([0, 5, 65]))).toThrow(MalformedMessageError);
  });
});
