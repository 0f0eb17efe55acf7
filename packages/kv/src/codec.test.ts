import { InvalidArgumentError, MalformedMessageError } from '@synod/log';
import { describe, expect, it } from 'vitest';
import {
  decodeKvCommand,
  decodeKvResult,
  encodeKvCommand,
  encodeKvResult,
  type KvCommand,
  type KvResult,
  sameValue,
  toBytes,
  toText,
} from './codec.js';

const b = (s: string) => toBytes(s);

describe('command codec', () => {
  const commands: KvCommand[] = [
    { type: 'get', key: 'a' },
    { type: 'get', key: '' },
    { type: 'put', key: 'k', value: b('v') },
    { type: 'put', key: 'ключ-🔑', value: new Uint8Array(0) },
    { type: 'put', key: 'big', value: new Uint8Array(5_000).fill(3) },
    { type: 'delete', key: 'k' },
    { type: 'delete', key: 'x'.repeat(64) },
    { type: 'delete', key: 'y'.repeat(65) },
    { type: 'get', key: 'z'.repeat(300) },
    { type: 'get', key: 'ü'.repeat(40) },
    { type: 'put', key: 'mixed-ascii-then-ü', value: new Uint8Array(200).fill(1) },
    { type: 'cas', key: 'k', expected: null, value: b('new') },
    { type: 'cas', key: 'k', expected: b('old'), value: null },
    { type: 'cas', key: 'k', expected: new Uint8Array(0), value: new Uint8Array(0) },
  ];
  for (const cmd of commands) {
    it(`round-trips ${cmd.type} ${JSON.stringify(cmd.key).slice(0, 20)}`, () => {
      const bytes = encodeKvCommand(cmd);
      expect(decodeKvCommand(bytes)).toEqual(cmd);
    });
  }

  it('is compact: a small put is a few bytes more than its key and value', () => {
    expect(encodeKvCommand({ type: 'put', key: 'key', value: b('value') }).length).toBe(1 + 1 + 3 + 1 + 5);
  });

  it('decodes values as views into the command (no copy)', () => {
    const bytes = encodeKvCommand({ type: 'put', key: 'k', value: b('vvv') });
    const cmd = decodeKvCommand(bytes) as Extract<KvCommand, { type: 'put' }>;
    expect(cmd.value.buffer).toBe(bytes.buffer);
  });

  it('rejects what it cannot encode faithfully with InvalidArgumentError', () => {
    expect(() => encodeKvCommand({ type: 'get', key: 7 as unknown as string })).toThrow(InvalidArgumentError);
    expect(() => encodeKvCommand({ type: 'get', key: 'a\ud800b' })).toThrow(InvalidArgumentError);
    expect(() => encodeKvCommand({ type: 'get', key: 'tail\udc00' })).toThrow(InvalidArgumentError);
    expect(() => encodeKvCommand({ type: 'put', key: 'k', value: 'v' as unknown as Uint8Array })).toThrow(InvalidArgumentError);
    expect(() => encodeKvCommand({ type: 'cas', key: 'k', expected: [1] as unknown as Uint8Array, value: null })).toThrow(InvalidArgumentError);
    expect(() => encodeKvCommand({ type: 'scan', key: 'k' } as unknown as KvCommand)).toThrow(InvalidArgumentError);
    expect(() => encodeKvCommand(null as unknown as KvCommand)).toThrow(InvalidArgumentError);
    // A valid surrogate pair is fine.
    expect(decodeKvCommand(encodeKvCommand({ type: 'get', key: '😀' }))).toEqual({ type: 'get', key: '😀' });
  });

  const malformed: [string, number[]][] = [
    ['empty', []],
    ['unknown op', [9, 1, 97]],
    ['op 0', [0]],
    ['truncated key', [1, 5, 97]],
    ['missing value', [2, 1, 97]],
    ['trailing bytes', [1, 1, 97, 0]],
    ['bad cas tag', [4, 1, 97, 2]],
    ['invalid UTF-8 key', [1, 2, 0xc3, 0x28]],
    ['overlong varint', [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
  ];
  for (const [name, bytes] of malformed) {
    it(`decode throws MalformedMessageError on ${name}`, () => {
      expect(() => decodeKvCommand(new Uint8Array(bytes))).toThrow(MalformedMessageError);
    });
  }
});

describe('result codec', () => {
  const results: KvResult[] = [
    { type: 'get', value: null },
    { type: 'get', value: b('x') },
    { type: 'put', previous: null },
    { type: 'put', previous: b('old') },
    { type: 'delete', deleted: false, previous: null },
    { type: 'delete', deleted: true, previous: b('gone') },
    { type: 'cas', ok: true, current: b('n') },
    { type: 'cas', ok: false, current: null },
    { type: 'error', code: 'malformed', message: 'malformed command: truncated input at byte 3' },
    { type: 'error', code: 'unknown-op', message: 'unknown op 9 — ü' },
  ];
  for (const r of results) {
    it(`round-trips ${JSON.stringify(r).slice(0, 60)}`, () => {
      expect(decodeKvResult(encodeKvResult(r))).toEqual(r);
    });
  }

  it('decode throws MalformedMessageError on bad input', () => {
    for (const bytes of [[], [7], [1, 2], [4, 2, 0], [0, 9, 0], [2, 0, 0]]) {
      expect(() => decodeKvResult(new Uint8Array(bytes))).toThrow(MalformedMessageError);
    }
  });
});

describe('helpers', () => {
  it('toBytes / toText convert UTF-8 and pass bytes through', () => {
    const u = new Uint8Array([1, 2]);
    expect(toBytes(u)).toBe(u);
    expect(toText(toBytes('héllo'))).toBe('héllo');
    expect(toText(null)).toBeNull();
    expect(() => toText(new Uint8Array([0xff]))).toThrow(MalformedMessageError);
    expect(() => toBytes(5 as unknown as string)).toThrow(InvalidArgumentError);
  });

  it('sameValue compares bytes, null only equal to null', () => {
    expect(sameValue(null, null)).toBe(true);
    expect(sameValue(null, new Uint8Array(0))).toBe(false);
    expect(sameValue(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(sameValue(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(sameValue(new Uint8Array([1]), new Uint8Array([1, 0]))).toBe(false);
  });
});
