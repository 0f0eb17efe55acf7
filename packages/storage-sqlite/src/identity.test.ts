/**
 * The file's identity (cluster, protocol, node): stored on first open, checked on every later
 * open, and a refusal writes nothing.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EntryType, InvalidArgumentError, utf8Encode } from '@synod/log';
import { afterEach, describe, expect, it } from 'vitest';
import { APPLICATION_ID, SqliteStorage, SqliteStorageError, type SqliteStorageIdentity } from './sqlite-storage.js';

const dirs: string[] = [];
function tempPath(name = 'n1.db'): string {
  const d = mkdtempSync(join(tmpdir(), 'synod-sqlite-id-'));
  dirs.push(d);
  return join(d, name);
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const ID: SqliteStorageIdentity = { clusterId: 'cluster-a', protocol: 'raft', nodeId: 'n1' };
const entry = (index: number, term: number) => ({ index, term, type: EntryType.Normal, data: utf8Encode(`e${index}`) });

/** A replica's file with some state, closed (WAL folded into the main file). */
function populated(path: string, identity?: SqliteStorageIdentity): void {
  const s = SqliteStorage.open(path, identity ? { identity } : {});
  s.persist({ hardState: { term: 7, vote: 'n2', commit: 3 }, entries: [1, 2, 3].map((i) => entry(i, 7)) });
  s.close();
}

function metaRows(path: string): Record<string, string> {
  const db = new Database(path, { readonly: true });
  const rows = db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[];
  db.close();
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

function openError(fn: () => unknown): SqliteStorageError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SqliteStorageError);
    return err as SqliteStorageError;
  }
  throw new Error('expected the open to fail');
}

describe('SqliteStorage identity', () => {
  it('a new file stores the given identity in its meta table and exposes it', () => {
    const path = tempPath();
    const s = SqliteStorage.open(path, { identity: ID });
    expect(s.identity).toEqual(ID);
    s.close();
    expect(metaRows(path)).toEqual({ cluster_id: 'cluster-a', protocol: 'raft', node_id: 'n1' });
  });

  it('reopens with the same identity, with a subset of it, or without one (exposing what is stored)', () => {
    const path = tempPath();
    populated(path, ID);
    for (const identity of [ID, { clusterId: 'cluster-a' }, { nodeId: 'n1', protocol: 'raft' }, undefined]) {
      const s = SqliteStorage.open(path, { create: false, ...(identity ? { identity } : {}) });
      expect(s.identity).toEqual(ID);
      expect(s.load().hardState).toEqual({ term: 7, vote: 'n2', commit: 3 });
      s.close();
    }
  });

  for (const [field, other] of [
    ['clusterId', 'cluster-b'],
    ['protocol', 'paxos'],
    ['nodeId', 'n3'],
  ] as const) {
    it(`refuses another ${field} with reason mismatch, naming the field and both values, and leaves the file byte for byte`, () => {
      const path = tempPath();
      populated(path, ID);
      const before = readFileSync(path);
      expect(existsSync(`${path}-wal`)).toBe(false);
      const err = openError(() => SqliteStorage.open(path, { identity: { ...ID, [field]: other } }));
      expect(err.reason).toBe('mismatch');
      expect(err.code).toBe('STORAGE_FAILED');
      expect(err.message).toContain(field);
      expect(err.message).toContain(JSON.stringify(ID[field]));
      expect(err.message).toContain(JSON.stringify(other));
      // Also with create: false and with only that field given.
      expect(openError(() => SqliteStorage.open(path, { create: false, identity: { [field]: other } })).reason).toBe('mismatch');
      expect(Buffer.compare(readFileSync(path), before)).toBe(0);
      expect(existsSync(`${path}-wal`)).toBe(false);
      // The refusal released the file: its owner opens it with its state.
      const s = SqliteStorage.open(path, { identity: ID });
      const st = s.load();
      expect(st.hardState).toEqual({ term: 7, vote: 'n2', commit: 3 });
      expect(st.entries.map((e) => e.index)).toEqual([1, 2, 3]);
      s.close();
    });
  }

  it('a file without an identity adopts the given one; stored fields are kept and missing ones added', () => {
    const path = tempPath();
    populated(path); // opened without identity: nothing stored
    const s0 = SqliteStorage.open(path);
    expect(s0.identity).toEqual({});
    s0.close();
    const s1 = SqliteStorage.open(path, { identity: { clusterId: 'cluster-a' } });
    expect(s1.identity).toEqual({ clusterId: 'cluster-a' });
    s1.close();
    const s2 = SqliteStorage.open(path, { identity: { protocol: 'raft', nodeId: 'n1' } });
    expect(s2.identity).toEqual(ID);
    expect(s2.load().entries.length).toBe(3);
    s2.close();
    expect(metaRows(path)).toEqual({ cluster_id: 'cluster-a', protocol: 'raft', node_id: 'n1' });
    expect(openError(() => SqliteStorage.open(path, { identity: { clusterId: 'cluster-b' } })).reason).toBe('mismatch');
  });

  it('a file from before identities and checksums (no meta table, no crc columns) opens, adopts the identity and keeps its state', () => {
    const path = tempPath();
    // The schema version 1 layout as the first release wrote it.
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL);
      CREATE TABLE hard_state (id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL, vote TEXT, commit_index INTEGER NOT NULL);
      CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), idx INTEGER NOT NULL, term INTEGER NOT NULL, config BLOB NOT NULL, data BLOB NOT NULL);
      INSERT INTO hard_state VALUES (0, 4, 'n1', 2);
      INSERT INTO entries VALUES (1, 4, 1, x''), (2, 4, 0, x'616263');
    `);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma('user_version = 1');
    db.close();
    const s = SqliteStorage.open(path, { create: false, identity: ID });
    expect(s.identity).toEqual(ID);
    const st = s.load();
    expect(st.hardState).toEqual({ term: 4, vote: 'n1', commit: 2 });
    expect(st.entries.map((e) => [e.index, e.term, Array.from(e.data)])).toEqual([
      [1, 4, []],
      [2, 4, [0x61, 0x62, 0x63]],
    ]);
    // New rows get checksums next to the old ones without.
    s.persist({ entries: [entry(3, 5)], hardState: { term: 5, vote: null, commit: 2 } });
    s.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT idx, crc IS NOT NULL AS has FROM entries ORDER BY idx').raw(true).all()).toEqual([
      [1, 0],
      [2, 0],
      [3, 1],
    ]);
    raw.close();
    expect(metaRows(path)).toEqual({ cluster_id: 'cluster-a', protocol: 'raft', node_id: 'n1' });
    const again = SqliteStorage.open(path, { identity: ID });
    expect(again.load().entries.map((e) => e.index)).toEqual([1, 2, 3]);
    again.close();
  });

  it('the identity is stored in the same transaction as the schema: an in-memory database has one too', () => {
    const s = SqliteStorage.open(':memory:', { identity: { nodeId: 'n9' } });
    expect(s.identity).toEqual({ nodeId: 'n9' });
    s.close();
  });

  it('rejects an identity that is not an object of 1..256-character strings with InvalidArgumentError', () => {
    const path = tempPath();
    for (const identity of [{ clusterId: '' }, { nodeId: 7 }, { protocol: 'x'.repeat(257) }, 'cluster-a', null]) {
      expect(() => SqliteStorage.open(path, { identity: identity as never })).toThrow(InvalidArgumentError);
    }
    expect(existsSync(path)).toBe(false);
  });
});
