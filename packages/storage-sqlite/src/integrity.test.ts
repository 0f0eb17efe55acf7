/**
 * What `open` and `load` detect in a file damaged or altered outside synod: a missing table or
 * column (schema still version 1), and a row whose content no longer matches its CRC-32.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { createRandom, EntryType, utf8Encode } from '@synod/log';
import { afterEach, describe, expect, it } from 'vitest';
import { crc32, crc32Js, entryChecksum } from './checksum.js';
import { SqliteStorage, SqliteStorageError } from './sqlite-storage.js';

const dirs: string[] = [];
function tempPath(name = 'n1.db'): string {
  const d = mkdtempSync(join(tmpdir(), 'synod-sqlite-int-'));
  dirs.push(d);
  return join(d, name);
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const text = (i: number) => `entry-${i}-${'-'.repeat(40)}`;
const entry = (index: number, term = 1) => ({ index, term, type: EntryType.Normal, data: utf8Encode(text(index)) });

/** A closed file with 50 entries, commit 50, and a snapshot at 10 (no compaction). */
function populated(path: string): void {
  const s = SqliteStorage.open(path);
  s.persist({ hardState: { term: 3, vote: 'n1', commit: 50 }, entries: Array.from({ length: 50 }, (_, i) => entry(i + 1)) });
  s.persist({ snapshot: { meta: { index: 10, term: 1, config: { voters: ['n1', 'n2', 'n3'], learners: [] } }, data: utf8Encode('snapshot-bytes-0123456789') } });
  s.close();
}

function alter(path: string, sql: string): void {
  const db = new Database(path);
  db.exec(sql);
  db.close();
}

function failure(fn: () => unknown): SqliteStorageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SqliteStorageError);
    return err as SqliteStorageError;
  }
  throw new Error('expected a SqliteStorageError');
}

const tables = (path: string): string[] => {
  const db = new Database(path, { readonly: true });
  const names = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all() as string[];
  db.close();
  return names;
};

describe('schema check on open', () => {
  const damage: [string, string, RegExp][] = [
    ['the entries table dropped', 'DROP TABLE entries', /without its table entries/],
    ['the hard_state table dropped', 'DROP TABLE hard_state', /without its table hard_state/],
    ['the snapshot table dropped', 'DROP TABLE snapshot', /without its table snapshot/],
    ['entries.data renamed', 'ALTER TABLE entries RENAME COLUMN data TO d', /table entries has no column data/],
    ['hard_state.commit_index renamed', 'ALTER TABLE hard_state RENAME COLUMN commit_index TO c', /table hard_state has no column commit_index/],
    ['snapshot.config renamed', 'ALTER TABLE snapshot RENAME COLUMN config TO cfg', /table snapshot has no column config/],
    ['meta.value renamed', 'ALTER TABLE meta RENAME COLUMN value TO v', /table meta has no column value/],
    [
      'entries recreated without its primary key',
      'DROP TABLE entries; CREATE TABLE entries (idx INTEGER, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER)',
      /primary key of table entries/,
    ],
  ];
  for (const [what, sql, message] of damage) {
    it(`refuses a file with ${what} (schema version still 1) as corrupt, and does not repair it`, () => {
      const path = tempPath();
      populated(path);
      alter(path, sql);
      const names = tables(path);
      for (const create of [true, false]) {
        const err = failure(() => SqliteStorage.open(path, { create }));
        expect(err.reason).toBe('corrupt');
        expect(err.message).toMatch(message);
      }
      // Nothing was recreated (CREATE TABLE IF NOT EXISTS would have made an empty log).
      expect(tables(path)).toEqual(names);
    });
  }
});

describe('checksums', () => {
  it('crc32 (native or fallback) equals the JavaScript CRC-32, chained or not, on random data', () => {
    const rnd = createRandom(11);
    expect(crc32Js(utf8Encode('123456789'))).toBe(0xcbf43926); // the standard check value
    for (let i = 0; i < 200; i++) {
      const data = new Uint8Array(rnd.int(0, 3000));
      for (let j = 0; j < data.length; j++) data[j] = rnd.int(0, 255);
      const cut = rnd.int(0, data.length);
      const whole = crc32Js(data);
      expect(crc32(data)).toBe(whole);
      expect(crc32(data.subarray(cut), crc32(data.subarray(0, cut)))).toBe(whole);
      expect(crc32Js(data.subarray(cut), crc32Js(data.subarray(0, cut)))).toBe(whole);
      if (typeof (zlib as { crc32?: unknown }).crc32 === 'function' && data.length > 0) expect(zlib.crc32(data)).toBe(whole);
    }
    // Empty input never changes a CRC (zlib answers 0 for an empty buffer without memory).
    expect(crc32(new Uint8Array(0), 1234)).toBe(1234);
  });

  it('stores a checksum with every row', () => {
    const path = tempPath();
    populated(path);
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM entries WHERE crc IS NULL').pluck().get()).toBe(0);
    expect(db.prepare('SELECT crc FROM entries WHERE idx = 7').pluck().get()).toBe(entryChecksum(7, 1, EntryType.Normal, utf8Encode(text(7))));
    expect(db.prepare('SELECT crc IS NOT NULL FROM hard_state').pluck().get()).toBe(1);
    expect(db.prepare('SELECT crc IS NOT NULL FROM snapshot').pluck().get()).toBe(1);
    db.close();
  });

  it('detects one bit flipped in an entry payload on disk (SQLite itself does not)', () => {
    const path = tempPath();
    populated(path);
    const buf = readFileSync(path);
    const at = buf.indexOf(Buffer.from(text(17)));
    expect(at).toBeGreaterThan(0);
    buf[at + 3] = buf[at + 3]! ^ 0x01; // "entry" -> "enury"
    writeFileSync(path, buf);
    const s = SqliteStorage.open(path, { create: false });
    expect(s.integrityCheck()).toEqual([]); // SQLite's own check sees nothing
    const err = failure(() => s.load());
    expect(err.reason).toBe('corrupt');
    expect(err.message).toMatch(/entry 17 does not match its checksum/);
    s.close();
  });

  const edits: [string, string, RegExp][] = [
    ['an entry term', 'UPDATE entries SET term = 2 WHERE idx = 30', /entry 30 does not match/],
    ['an entry type', 'UPDATE entries SET type = 2 WHERE idx = 31', /entry 31 does not match/],
    ['an entry index', 'UPDATE entries SET idx = 60 WHERE idx = 50', /entry 60 does not match/],
    ['the vote', "UPDATE hard_state SET vote = 'n2'", /the hard state does not match/],
    ['the commit index', 'UPDATE hard_state SET commit_index = 49', /the hard state does not match/],
    ['the snapshot bytes', "UPDATE snapshot SET data = x'00'", /the snapshot at index 10 does not match/],
    ['the snapshot term', 'UPDATE snapshot SET term = 2', /the snapshot at index 10 does not match/],
    ['a checksum itself', 'UPDATE entries SET crc = crc + 1 WHERE idx = 12', /entry 12 does not match/],
    ['a checksum into text', "UPDATE entries SET crc = 'x' WHERE idx = 12", /checksum of entry 12 is invalid/],
  ];
  for (const [what, sql, message] of edits) {
    it(`load() reports ${what} changed outside synod as corrupt`, () => {
      const path = tempPath();
      populated(path);
      alter(path, sql);
      const s = SqliteStorage.open(path);
      const err = failure(() => s.load());
      expect(err.reason).toBe('corrupt');
      expect(err.message).toMatch(message);
      s.close();
    });
  }

  it('rows without a checksum (written before checksums) load unchecked; rewritten rows get one', () => {
    const path = tempPath();
    populated(path);
    alter(path, 'UPDATE entries SET crc = NULL, data = x\'00\' WHERE idx = 20; UPDATE hard_state SET crc = NULL');
    const s = SqliteStorage.open(path);
    const st = s.load();
    expect(Array.from(st.entries.find((e) => e.index === 20)!.data)).toEqual([0]);
    expect(st.hardState.commit).toBe(50);
    s.persist({ truncateFrom: 20, entries: [entry(20, 2)], hardState: { term: 3, vote: 'n1', commit: 19 } });
    s.close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM entries WHERE crc IS NULL').pluck().get()).toBe(0);
    expect(db.prepare('SELECT crc IS NOT NULL FROM hard_state').pluck().get()).toBe(1);
    db.close();
  });
});
